"""Matching-aware residual projection discriminator with spectral normalisation. The network of
`model.arch: resnet`."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .discriminator import ProjectionDiscriminator


class DownBlock(nn.Module):
    """Residual x1/2 block with spectral norm: (N, cin, H, W) -> (N, cout, H/2, W/2).

    main: LeakyReLU(0.2), 3x3 conv cin -> cin at H, LeakyReLU, 2x2 average pool, 3x3 conv cin -> cout at H/2;
    shortcut: 2x2 average pool, 1x1 conv cin -> cout; out = main + shortcut. BigGAN's D block with the pooling
    between the two convs, so the second conv runs at the lower resolution.

    `first` (the block on the RGB image): no activation on the input, and the first conv is a 3x3 conv
    4 cin -> cout on the 2x2 space-to-depth image (pixel_unshuffle) instead of a 3x3 conv at H and pooling.
    """

    def __init__(self, cin: int, cout: int, first: bool = False):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(4 * cin, cout, 3, 1, 1) if first else nn.Conv2d(cin, cin, 3, 1, 1))
        self.conv2 = spectral_norm(nn.Conv2d(cout if first else cin, cout, 3, 1, 1))
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1))
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, cin, H, W) -> (N, cout, H/2, W/2)."""
        if self.first:
            h = F.leaky_relu(self.conv1(F.pixel_unshuffle(x, 2)), 0.2)
        else:
            h = F.avg_pool2d(F.leaky_relu(self.conv1(F.leaky_relu(x, 0.2)), 0.2), 2)
        return self.conv2(h) + self.skip(F.avg_pool2d(x, 2))


class ResDiscriminator(ProjectionDiscriminator):
    """(image, text encoding[, source representation]) -> realism-and-match logit.

    img (N, 3, 64, 64) -> DownBlocks of widths d, 2d, 4d, 8d (64 -> 32 -> 16 -> 8 -> 4 px) -> LeakyReLU, 3x3 SN
    conv 8d -> 8d, LeakyReLU -> global sum pool h (N, 8d). Logit = linear(h) + <proj(text), h> (projection
    discriminator), so a real image with another image's caption scores lower than with its own. With
    rep_dim > 0 the source representation r (N, rep_dim) is projected the same way and added.
    """

    def __init__(self, width: int, text_dim: int, rep_dim: int = 0):
        super().__init__()
        d = width
        chans = [3, d, 2 * d, 4 * d, 8 * d]
        self.blocks = nn.Sequential(*[DownBlock(cin, cout, first=i == 0)
                                      for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:]))])
        self.out = spectral_norm(nn.Conv2d(8 * d, 8 * d, 3, 1, 1))
        self.heads(8 * d, text_dim, rep_dim)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """img: (N, 3, 64, 64) -> (N, 8d) pooled image features h (text-independent)."""
        h = self.blocks(img)  # (N, 8d, 4, 4)
        return F.leaky_relu(self.out(F.leaky_relu(h, 0.2)), 0.2).sum(dim=(2, 3))
