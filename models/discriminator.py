"""Matching-aware projection discriminator with spectral normalisation."""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm


def _sn_conv(cin: int, cout: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1))


class Discriminator(nn.Module):
    """(image, text encoding[, source representation]) -> realism-and-match logit.

    img (N, 3, 64, 64) -> four stride-2 SN convs with LeakyReLU (widths d, 2d, 4d, 8d; 64 -> 4 px)
    -> a 3x3 SN conv -> global sum pool h (N, 8d). Logit = linear(h) + <proj(text), h>
    (projection discriminator, Miyato & Koyama 2018), so a real image with a caption of another
    image scores lower than with its own caption. With rep_dim > 0 the source representation r (N, rep_dim)
    is projected the same way and added, <rep_proj(r), h>: D then also judges whether the image fits r.
    """

    def __init__(self, width: int, text_dim: int, rep_dim: int = 0):
        super().__init__()
        d = width
        self.body = nn.Sequential(_sn_conv(3, d), nn.LeakyReLU(0.2), _sn_conv(d, 2 * d), nn.LeakyReLU(0.2),
                                  _sn_conv(2 * d, 4 * d), nn.LeakyReLU(0.2), _sn_conv(4 * d, 8 * d),
                                  nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(8 * d, 8 * d, 3, 1, 1)),
                                  nn.LeakyReLU(0.2))
        self.linear = spectral_norm(nn.Linear(8 * d, 1))
        self.text_proj = spectral_norm(nn.Linear(text_dim, 8 * d))
        self.rep_proj = spectral_norm(nn.Linear(rep_dim, 8 * d)) if rep_dim else None

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """img: (N, 3, 64, 64) -> (N, 8d) pooled image features h (text-independent)."""
        return self.body(img).sum(dim=(2, 3))

    def logits(self, h: torch.Tensor, text: torch.Tensor, rep: torch.Tensor | None = None) -> torch.Tensor:
        """h: (N, 8d) from `features`, text: (N, text_dim), rep: (N, rep_dim) or None -> (N,) logits. One
        `features` pass can be scored against several conditions (matching and mismatched) without re-running
        the conv body. rep is required exactly when the discriminator was built with rep_dim > 0."""
        if (rep is None) != (self.rep_proj is None):
            raise ValueError("Discriminator: pass rep exactly when built with rep_dim > 0")
        out = self.linear(h).squeeze(1) + (self.text_proj(text) * h).sum(1)
        return out if rep is None else out + (self.rep_proj(rep) * h).sum(1)

    def forward(self, img: torch.Tensor, text: torch.Tensor, rep: torch.Tensor | None = None) -> torch.Tensor:
        """img: (N, 3, 64, 64), text: (N, text_dim), rep: (N, rep_dim) or None -> (N,) logits."""
        return self.logits(self.features(img), text, rep)
