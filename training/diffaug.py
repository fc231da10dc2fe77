"""DiffAugment (Zhao et al. 2020): differentiable augmentation applied identically in spirit to real
and fake images before the discriminator, so D cannot memorise ~1,300 training images.
Policy is a comma-separated subset of `color,translation,cutout` (`core.config.parse_policy`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from core.config import parse_policy


def _color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = (gy[None] + ty + 1).clamp(0, h + 1)  # (N, H, W) indices into the zero-padded image
    gx = (gx[None] + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # (N, C, H+2, W+2)
    idx = (gy * (w + 2) + gx).flatten(1)  # (N, H*W)
    out = padded.flatten(2).gather(2, idx[:, None].expand(-1, x.shape[1], -1))
    return out.view_as(x)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gy = torch.arange(h, device=x.device)[None, :, None]
    gx = torch.arange(w, device=x.device)[None, None, :]
    inside = ((gy - cy).abs() <= ch // 2) & ((gx - cx).abs() <= cw // 2)  # (N, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """x: (N, C, H, W) -> same shape, augmented with differentiable ops (gradients flow to G). An empty
    policy returns x itself (no copy; a channels-last batch keeps its layout)."""
    names = parse_policy(policy)
    if not names:
        return x
    for name in names:
        x = _OPS[name](x)
    return x.contiguous()
