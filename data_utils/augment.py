"""Batched image augmentation on the training device (no per-item Python work)."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float (N, 3, H, W) in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 (same shape)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size) centre crop."""
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[..., top:top + size, left:left + size]


def center_crop_hwc(x: torch.Tensor, size: int) -> np.ndarray:
    """uint8 (N, C, H, W) -> numpy uint8 (N, size, size, C) centre crops (for plots and image metrics)."""
    return center_crop(x, size).permute(0, 2, 3, 1).numpy()


def random_crop_flip(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float (N, C, size, size) in [-1, 1]: a random crop per image, random h-flip."""
    n, _, h, w = x.shape
    dev = x.device
    oy = torch.randint(0, h - size + 1, (n,), generator=generator).to(dev)
    ox = torch.randint(0, w - size + 1, (n,), generator=generator).to(dev)
    flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
    ar = torch.arange(size, device=dev)
    rows = oy[:, None] + ar  # (N, size)
    cols = ox[:, None] + torch.where(flip[:, None], size - 1 - ar, ar)  # (N, size), reversed when flipped
    out = x[torch.arange(n, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (N, S, S, C)
    return to_float(out.permute(0, 3, 1, 2))


def random_resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float] = (0.25, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3),
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float (N, C, size, size) in [-1, 1]: per image, a crop covering a random
    share `scale` of the area with aspect ratio in `ratio` (log-uniform), a random position and h-flip,
    resampled bilinearly to size x size (SimCLR's view augmentation, batched with one grid_sample)."""
    n = x.shape[0]
    area = torch.empty(n).uniform_(scale[0], scale[1], generator=generator)
    aspect = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator).exp()
    cw, ch = (area * aspect).sqrt().clamp(max=1.0), (area / aspect).sqrt().clamp(max=1.0)  # share of W, H
    cx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - cw)  # crop centre, normalised to [-1, 1]
    cy = (torch.rand(n, generator=generator) * 2 - 1) * (1 - ch)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = cw * flip, cx, ch, cy
    grid = F.affine_grid(theta.to(x.device), [n, x.shape[1], size, size], align_corners=False)
    out = F.grid_sample(to_float(x), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.contiguous(memory_format=torch.channels_last)  # the layout random_crop_flip gives (faster convs)


def color_jitter(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """float (N, 3, H, W) in [-1, 1] -> same: per image, brightness, contrast and saturation scaled by random
    factors in [1 - strength, 1 + strength] (hue is kept: a flower's colour is what tells classes apart)."""
    if strength <= 0:
        return x
    n = x.shape[0]

    def factor():
        return (1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * strength).to(x.device, x.dtype)

    x = (x + 1) * factor() - 1  # brightness (scales [0, 2] intensities)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor() + mean  # contrast
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * factor() + gray  # saturation
    return x.clamp(-1, 1)
