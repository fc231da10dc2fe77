"""DiffAugment (Zhao et al. 2020): differentiable augmentation applied identically in spirit to real
and fake images before the discriminator, so D cannot memorise ~1,300 training images.
Policy is a comma-separated subset of `color,translation,cutout`, plus `blur` (a fixed low-pass filter, not an
augmentation of D's inputs: meant for the distillation term, `train.distill_aug`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


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


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A fixed 5x5 binomial blur ([1, 4, 6, 4, 1] / 16 each way; reflect padding), the same for every image. Not
    random: it removes detail finer than ~4 px from what the next network sees, and from the gradient it sends
    back (period 2 px: gain 0; 4 px: 0.25; 8 px: 0.73)."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=x.device, dtype=x.dtype) / 16
    c = x.shape[1]
    x = F.pad(x, [2, 2, 2, 2], mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout, "blur": _blur}


def parse_policy(policy: str) -> list[str]:
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in _OPS]
    if unknown:
        raise ValueError(f"unknown DiffAugment op(s) {unknown}; choose from {sorted(_OPS)}")
    return names


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """x: (N, C, H, W) -> same shape, augmented with differentiable ops (gradients flow to G). An empty
    policy returns x itself (no copy; a channels-last batch keeps its layout)."""
    names = parse_policy(policy)
    if not names:
        return x
    for name in names:
        x = _OPS[name](x)
    return x.contiguous()
