"""Target generator: (noise, text condition, source representation) -> 64x64 image."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import UPSAMPLE_MODES, block_modes


class CondBatchNorm(nn.Module):
    """BatchNorm2d whose scale and shift are 1 + gamma(s) and beta(s), linear in a condition s (N, cond_dim)
    (BigGAN's conditional BN): (N, C, H, W), (N, cond_dim) -> (N, C, H, W). The linear map starts at zero, so the
    layer starts as a plain BatchNorm with unit scale and zero shift."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.affine = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.bn(x)
        gamma, beta = self.affine(s)[:, :, None, None].chunk(2, dim=1)
        return h * (1 + gamma) + beta


class UpBlock(nn.Module):
    """x2 upsample (nearest or bilinear), then `convs` x (3x3 conv -> conditional BatchNorm -> ReLU):
    (N, cin, H, W), s (N, cond_dim) -> (N, cout, 2H, 2W). The first conv maps cin -> cout, the others cout -> cout."""

    def __init__(self, cin: int, cout: int, convs: int, mode: str, cond_dim: int):
        super().__init__()
        if mode not in UPSAMPLE_MODES:
            raise ValueError(f"upsampling mode must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
        self.convs = nn.ModuleList([nn.Conv2d(cin if i == 0 else cout, cout, 3, 1, 1, bias=False)
                                    for i in range(convs)])
        self.norms = nn.ModuleList([CondBatchNorm(cout, cond_dim) for _ in range(convs)])
        self.mode = mode

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        align = None if self.mode == "nearest" else False  # nearest takes no align_corners
        h = F.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=align)
        for conv, norm in zip(self.convs, self.norms):
            h = F.relu(norm(conv(h), s))
        return h


class SkipExcitation(nn.Module):
    """FastGAN's skip-layer excitation (Liu et al. 2021): channel gates for a high-resolution map from a
    low-resolution one. small (N, cin, h, w) -> 4x4 adaptive average pool -> 4x4 conv (no padding: one value per
    channel) -> LeakyReLU(0.1) -> 1x1 conv -> sigmoid -> gates (N, cout, 1, 1); forward returns big * gates for
    big (N, cout, H, W)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(cin, cout, 4, 1, 0, bias=False),
                                  nn.LeakyReLU(0.1), nn.Conv2d(cout, cout, 1, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
        """small: (N, cin, h, w) with h, w >= 4; big: (N, cout, H, W) -> (N, cout, H, W)."""
        return big * self.gate(small)


def generator_channels(width: int, init_width: int = 0) -> list[int]:
    """Channels at 4, 8, 16, 32 and 64 px for `width` w: [init_width or 8w, 4w, 2w, w, max(w // 2, 4)]."""
    w = width
    return [init_width or 8 * w, 4 * w, 2 * w, w, max(w // 2, 4)]


class Generator(nn.Module):
    """Conditional generator with its parameters at low resolution and FastGAN skip-layer excitation.

    The text encoding t (N, text_dim) goes through conditioning augmentation (StackGAN): a linear layer gives
    mu, logvar (N, cond_dim) and c = mu + eps * exp(logvar / 2). s = (c, r) (N, cond_dim + embed_dim) is the
    condition of every conditional BatchNorm (scale/shift maps start at zero, see CondBatchNorm).
    Channels (`generator_channels`): C4 = init_width (default 8w), then 4w, 2w, w, w/2 at 8, 16, 32, 64 px.

        (z, c, r) (N, noise_dim + cond_dim + embed_dim) -> one Linear -> (N, C4, 4, 4) -> CBN, ReLU
        -> 3x3 conv C4 -> C4, CBN, ReLU                                              x4   (N, C4, 4, 4)
        -> x2 up, 3x3 conv C4 -> 4w, CBN, ReLU, 3x3 conv 4w -> 4w, CBN, ReLU          x8   (N, 4w, 8, 8)
        -> x2 up, 3x3 conv 4w -> 2w, CBN, ReLU, 3x3 conv 2w -> 2w, CBN, ReLU          x16  (N, 2w, 16, 16)
        -> x2 up, 3x3 conv 2w -> w, CBN, ReLU; x SLE gates from x4                     x32  (N, w, 32, 32)
        -> x2 up, 3x3 conv w -> w/2, CBN, ReLU; x SLE gates from x8                    x64  (N, w/2, 64, 64)
        -> 3x3 conv w/2 -> 3, tanh                                                     (N, 3, 64, 64) in [-1, 1]

    Most parameters sit at 4-8 px, where a parameter costs 16-64 multiply-adds per image, the 32 and 64 px blocks
    are thin (one conv each), and the skip-layer excitations (SkipExcitation) let the coarse maps gate the fine
    ones' channels. `upsample`: nearest | bilinear, for every block or as four comma-separated modes
    (`core.config.block_modes`).
    `width` (coarse) and `init_width` (fine: each unit of C4 adds 16 (noise + cond + embed) + 18 C4 + 52 w
    + 4 (cond + embed + 1) parameters, ~0.4 % of the default generator) are chosen by
    `models.build.generator_widths` so that this network has half the parameters of the source encoder.
    """

    def __init__(self, width: int, noise_dim: int, cond_dim: int, embed_dim: int, text_dim: int,
                 init_width: int = 0, img_resolution: int = 64, upsample: str = "nearest"):
        super().__init__()
        if img_resolution != 64:
            raise ValueError(f"Generator produces 64x64 images, got img_resolution={img_resolution}")
        if width < 4:
            raise ValueError(f"generator width must be >= 4, got {width}")
        chans = generator_channels(width, init_width)
        d_in = noise_dim + cond_dim + embed_dim
        s_dim = cond_dim + embed_dim
        self.ca = nn.Linear(text_dim, 2 * cond_dim)
        self.fc = nn.Linear(d_in, 16 * chans[0], bias=False)
        self.fc_norm = CondBatchNorm(chans[0], s_dim)
        self.conv4 = nn.Conv2d(chans[0], chans[0], 3, 1, 1, bias=False)
        self.norm4 = CondBatchNorm(chans[0], s_dim)
        modes = block_modes(upsample)
        self.blocks = nn.ModuleList([UpBlock(cin, cout, convs, mode, s_dim) for cin, cout, convs, mode in
                                     zip(chans[:-1], chans[1:], (2, 2, 1, 1), modes)])
        self.sle32 = SkipExcitation(chans[0], chans[3])  # 4 px gates the 32 px map
        self.sle64 = SkipExcitation(chans[1], chans[4])  # 8 px gates the 64 px map
        self.to_rgb = nn.Conv2d(chans[4], 3, 3, 1, 1)
        self.width, self.init_width, self.noise_dim = width, chans[0], noise_dim

    def condition(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """t: (N, text_dim) -> c, mu, logvar, each (N, cond_dim); c is sampled (reparameterised)."""
        mu, logvar = self.ca(t).chunk(2, dim=1)
        logvar = logvar.clamp(-10, 10)
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp(), mu, logvar

    def synthesize(self, z: torch.Tensor, c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """z: (N, noise_dim), c: (N, cond_dim), r: (N, embed_dim) -> (N, 3, 64, 64) in [-1, 1]."""
        s = torch.cat([c, r], dim=1)  # (N, cond_dim + embed_dim)
        x4 = self.fc(torch.cat([z, c, r], dim=1)).view(z.shape[0], self.init_width, 4, 4)
        x4 = F.relu(self.fc_norm(x4, s))
        x4 = F.relu(self.norm4(self.conv4(x4), s))  # (N, C4, 4, 4)
        x8 = self.blocks[0](x4, s)  # (N, 4w, 8, 8)
        x16 = self.blocks[1](x8, s)  # (N, 2w, 16, 16)
        x32 = self.sle32(x4, self.blocks[2](x16, s))  # (N, w, 32, 32)
        x64 = self.sle64(x8, self.blocks[3](x32, s))  # (N, w/2, 64, 64)
        return torch.tanh(self.to_rgb(x64))

    def forward(self, z: torch.Tensor, t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """z: (N, noise_dim), t: (N, text_dim) text encoding, r: (N, embed_dim) -> (N, 3, 64, 64)."""
        return self.synthesize(z, self.condition(t)[0], r)
