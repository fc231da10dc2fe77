"""Residual target generator with its parameters at low resolution: (noise, text condition, source
representation) -> 64x64 image. The network of `model.arch: resnet`."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import UPSAMPLE_MODES, block_modes


class CondBatchNorm(nn.Module):
    """BatchNorm2d whose scale and shift are 1 + gamma(s) and beta(s), linear in a condition s (N, cond_dim)
    (BigGAN's conditional BN): x (N, C, H, W), s (N, cond_dim) -> (N, C, H, W). The linear map starts at zero, so
    the layer starts as a plain BatchNorm with unit scale and zero shift."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.affine = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(s)[:, :, None, None].chunk(2, dim=1)  # (N, C, 1, 1) each
        return self.bn(x) * (1 + gamma) + beta


class ResUpBlock(nn.Module):
    """BigGAN's generator block with `convs` 3x3 convolutions: (N, cin, H, W), s -> (N, cout, sH, sW), s = 2 when
    `mode` is an upsampling mode, 1 when it is "" (a block at the same resolution).

    main:     CBN, ReLU, upsample, 3x3 conv cin -> cout [, CBN, ReLU, 3x3 conv cout -> cout]
    shortcut: upsample, then a 1x1 conv when cin != cout (else the identity); out = main + shortcut.
    """

    def __init__(self, cin: int, cout: int, convs: int, mode: str, cond_dim: int):
        super().__init__()
        if mode and mode not in UPSAMPLE_MODES:
            raise ValueError(f"upsampling mode must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
        if convs not in (1, 2):
            raise ValueError(f"a generator block has 1 or 2 convolutions, got {convs}")
        self.norms = nn.ModuleList([CondBatchNorm(cin if i == 0 else cout, cond_dim) for i in range(convs)])
        self.convs = nn.ModuleList([nn.Conv2d(cin if i == 0 else cout, cout, 3, 1, 1, bias=False)
                                    for i in range(convs)])
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()
        self.mode = mode

    def up(self, x: torch.Tensor) -> torch.Tensor:
        if not self.mode:
            return x
        align = None if self.mode == "nearest" else False  # nearest takes no align_corners
        return F.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=align)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x: (N, cin, H, W), s: (N, cond_dim) -> (N, cout, 2H, 2W) (or (N, cout, H, W) without upsampling)."""
        h = x
        for i, (norm, conv) in enumerate(zip(self.norms, self.convs)):
            h = F.relu(norm(h, s))
            h = conv(self.up(h) if i == 0 else h)
        return h + self.skip(self.up(x))


def res_generator_channels(width: int, init_width: int = 0) -> list[int]:
    """Channels at 4, 8, 16, 32 and 64 px for width w: [init_width or 16w, 8w, 4w, 2w, w]."""
    w = width
    return [init_width or 16 * w, 8 * w, 4 * w, 2 * w, w]


class ResGenerator(nn.Module):
    """Conditional residual generator; channels halve at every doubling of the resolution, so most of its
    parameters sit at 4-8 px, where a parameter costs 16-64 multiply-adds per image.

    The text encoding t (N, text_dim) goes through conditioning augmentation (StackGAN): a linear layer gives
    mu, logvar (N, cond_dim) and c = mu + eps * exp(logvar / 2). s = (c, r) (N, cond_dim + embed_dim) conditions
    every BatchNorm (CondBatchNorm); with `z_norm`, s = (z, c, r) (N, noise_dim + cond_dim + embed_dim), so the
    noise reaches every resolution too (BigGAN's hierarchical latent, with the whole z at every layer).
    Channels C = res_generator_channels(width, init_width):

        (z, c, r) (N, noise_dim + cond_dim + embed_dim) -> Linear -> (N, C4, 4, 4)
        -> ResUpBlock, 1 conv, no upsampling      (N, C4, 4, 4)
        -> ResUpBlock, 2 convs                    (N, 8w, 8, 8)
        -> ResUpBlock, 1 conv                     (N, 4w, 16, 16)
        -> ResUpBlock, 1 conv                     (N, 2w, 32, 32)
        -> ResUpBlock, 1 conv                     (N, w, 64, 64)
        -> CBN, ReLU, 3x3 conv w -> 3, tanh       (N, 3, 64, 64) in [-1, 1]

    `upsample`: nearest | bilinear for every x2 block, or four comma-separated modes (`core.config.block_modes`).
    `width` (coarse) and `init_width` (fine) are chosen by `models.build.generator_size` so that the network
    has model.g_ratio times the source encoder's parameters.
    """

    def __init__(self, width: int, noise_dim: int, cond_dim: int, embed_dim: int, text_dim: int,
                 init_width: int = 0, img_resolution: int = 64, upsample: str = "nearest", z_norm: bool = False):
        super().__init__()
        if img_resolution != 64:
            raise ValueError(f"ResGenerator produces 64x64 images, got img_resolution={img_resolution}")
        if width < 4:
            raise ValueError(f"generator width must be >= 4, got {width}")
        chans = res_generator_channels(width, init_width)
        s_dim = cond_dim + embed_dim + (noise_dim if z_norm else 0)
        self.ca = nn.Linear(text_dim, 2 * cond_dim)
        self.fc = nn.Linear(noise_dim + cond_dim + embed_dim, 16 * chans[0])
        self.block4 = ResUpBlock(chans[0], chans[0], 1, "", s_dim)
        self.blocks = nn.ModuleList([ResUpBlock(cin, cout, convs, mode, s_dim) for cin, cout, convs, mode in
                                     zip(chans[:-1], chans[1:], (2, 1, 1, 1), block_modes(upsample))])
        self.out_norm = CondBatchNorm(chans[-1], s_dim)
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, 1, 1)
        self.width, self.init_width, self.noise_dim, self.z_norm = width, chans[0], noise_dim, z_norm

    def condition(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """t: (N, text_dim) -> c, mu, logvar, each (N, cond_dim); c is sampled (reparameterised)."""
        mu, logvar = self.ca(t).chunk(2, dim=1)
        logvar = logvar.clamp(-10, 10)
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp(), mu, logvar

    def synthesize(self, z: torch.Tensor, c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """z: (N, noise_dim), c: (N, cond_dim), r: (N, embed_dim) -> (N, 3, 64, 64) in [-1, 1]."""
        s = torch.cat([z, c, r] if self.z_norm else [c, r], dim=1)  # (N, [noise_dim +] cond_dim + embed_dim)
        h = self.fc(torch.cat([z, c, r], dim=1)).view(z.shape[0], self.init_width, 4, 4)  # (N, C4, 4, 4)
        h = self.block4(h, s)
        for block in self.blocks:
            h = block(h, s)
        return torch.tanh(self.to_rgb(F.relu(self.out_norm(h, s))))

    def forward(self, z: torch.Tensor, t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """z: (N, noise_dim), t: (N, text_dim) text encoding, r: (N, embed_dim) -> (N, 3, 64, 64)."""
        return self.synthesize(z, self.condition(t)[0], r)
