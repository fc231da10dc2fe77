"""Target generator: (noise, text condition, source representation) -> 64x64 image."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import UPSAMPLE_MODES, block_modes


class UpBlock(nn.Module):
    """x2 upsample (nearest | bilinear), 3x3 conv, conditional BatchNorm, ReLU: (N, cin, H, W) -> (N, cout, 2H, 2W).

    The BatchNorm's scale and shift are 1 + gamma(s) and beta(s), linear in a condition s (N, cond_dim) passed to
    forward (BigGAN's conditional BN; DF-GAN's per-block text affine). The linear map starts at zero, so the block
    starts as a plain BatchNorm with unit scale and zero shift.
    """

    def __init__(self, cin: int, cout: int, mode: str, cond_dim: int):
        super().__init__()
        if mode not in UPSAMPLE_MODES:
            raise ValueError(f"upsampling mode must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, affine=False)
        self.affine = nn.Linear(cond_dim, 2 * cout)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)
        self.mode = mode

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x: (N, cin, H, W), s: (N, cond_dim) -> (N, cout, 2H, 2W)."""
        align = None if self.mode == "nearest" else False  # nearest takes no align_corners
        h = self.bn(self.conv(F.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=align)))
        gamma, beta = self.affine(s)[:, :, None, None].chunk(2, dim=1)  # (N, cout, 1, 1) each
        return F.relu(h * (1 + gamma) + beta)


class Generator(nn.Module):
    """DCGAN-style generator conditioned on a source representation and a text condition.

    The text encoding t (N, text_dim) goes through conditioning augmentation (StackGAN): a linear layer gives mu,
    logvar (N, cond_dim) and c = mu + eps * exp(logvar / 2). Then z (N, noise_dim), c (N, cond_dim) and the source
    representation r (N, embed_dim) are concatenated and passed through a 2-layer mapping MLP of width `map_width`
    to a 4x4 x 4w tensor, then upsampled 4 -> 8 -> 16 -> 32 -> 64 with widths 4w, 2w, w, w/2 (UpBlock: every
    block's BatchNorm takes its scale and shift from s = (c, r), so the condition reaches every resolution), and a
    3x3 conv to RGB with tanh: output (N, 3, 64, 64) in [-1, 1]. `upsample` is the x2 upsampling of every block, or
    of each block from the first to the last as four comma-separated modes (`core.config.block_modes`).
    `width` and `map_width` are computed by `models.build.generator_widths` so that this network has half the
    parameters of the source encoder.
    """

    def __init__(self, width: int, map_width: int, noise_dim: int, cond_dim: int, embed_dim: int,
                 text_dim: int, img_resolution: int = 64, upsample: str = "nearest"):
        super().__init__()
        if img_resolution != 64:
            raise ValueError(f"Generator produces 64x64 images, got img_resolution={img_resolution}")
        w = width
        d_in = noise_dim + cond_dim + embed_dim
        self.ca = nn.Linear(text_dim, 2 * cond_dim)
        self.mapping = nn.Sequential(nn.Linear(d_in, map_width), nn.LeakyReLU(0.2),
                                     nn.Linear(map_width, 4 * 4 * 4 * w), nn.BatchNorm1d(4 * 4 * 4 * w),
                                     nn.ReLU())
        chans = [4 * w, 2 * w, w, w, max(w // 2, 8)]
        self.blocks = nn.ModuleList([UpBlock(cin, cout, mode, cond_dim + embed_dim) for cin, cout, mode
                                     in zip(chans[:-1], chans[1:], block_modes(upsample))])
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, 1, 1)
        self.width, self.noise_dim = w, noise_dim

    def condition(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """t: (N, text_dim) -> c, mu, logvar, each (N, cond_dim); c is sampled (reparameterised)."""
        mu, logvar = self.ca(t).chunk(2, dim=1)
        logvar = logvar.clamp(-10, 10)
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp(), mu, logvar

    def synthesize(self, z: torch.Tensor, c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """z: (N, noise_dim), c: (N, cond_dim), r: (N, embed_dim) -> (N, 3, 64, 64) in [-1, 1]."""
        h = self.mapping(torch.cat([z, c, r], dim=1))
        h = h.view(h.shape[0], 4 * self.width, 4, 4)  # (N, 4w, 4, 4)
        s = torch.cat([c, r], dim=1)  # (N, cond_dim + embed_dim)
        for block in self.blocks:
            h = block(h, s)
        return torch.tanh(self.to_rgb(h))

    def forward(self, z: torch.Tensor, t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """z: (N, noise_dim), t: (N, text_dim) text encoding, r: (N, embed_dim) -> (N, 3, 64, 64)."""
        return self.synthesize(z, self.condition(t)[0], r)
