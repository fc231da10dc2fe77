"""Batched image augmentation on the training device (no per-item Python work)."""
from __future__ import annotations

import numpy as np
import torch


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


def random_resized_crop_flip(x: torch.Tensor, size: int, min_area: float, ratio: tuple[float, float] = (3 / 4, 4 / 3),
                             generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float (N, C, size, size) in [-1, 1]: per image a random crop of `min_area`..1 of the
    image's area with aspect ratio in `ratio` (log-uniform), bilinearly resized to `size`, and a random h-flip
    (Inception-style random resized crop; a side that would exceed the image is clipped to it)."""
    n, dev = x.shape[0], x.device
    u = torch.rand(n, 4, generator=generator)
    area = min_area + (1 - min_area) * u[:, 0]
    r = torch.exp(np.log(ratio[0]) + (np.log(ratio[1]) - np.log(ratio[0])) * u[:, 1])
    sx, sy = (area * r).sqrt().clamp(max=1), (area / r).sqrt().clamp(max=1)  # crop side / image side
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sx * torch.where(u[:, 3] < 0.5, -1.0, 1.0)
    theta[:, 1, 1] = sy
    theta[:, 0, 2] = (2 * u[:, 2] - 1) * (1 - sx)  # the crop's centre, anywhere that keeps it inside
    theta[:, 1, 2] = (2 * torch.rand(n, generator=generator) - 1) * (1 - sy)
    grid = torch.nn.functional.affine_grid(theta.to(dev), [n, x.shape[1], size, size], align_corners=False)
    return torch.nn.functional.grid_sample(to_float(x), grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)
