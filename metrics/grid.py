"""How closely generated images follow a fixed pixel grid: the blocky pattern of nearest-neighbour upsampling.

A generator that doubles its resolution by copying each pixel into a 2x2 cell (nearest-neighbour upsampling) and
does not smooth the copies afterwards leaves edges on the cell borders: at 64 px, 2-px cells from its last
upsampling, 4-px cells from the one before, 8-px from the 16x16 stage. Photographs have no such grid, so the
neighbouring-pixel differences across the grid lines are as large as those between them.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["grid_contrast", "grid_contrasts", "GRID_PERIODS"]

GRID_PERIODS = (2, 4, 8)


def _grey(images) -> np.ndarray:
    """(N, C, H, W) array or tensor, any numeric dtype -> (N, H, W) float64 channel mean."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {x.shape}")
    return x.astype(np.float64).mean(axis=1)


def grid_contrast(images, period: int) -> float:
    """Mean absolute difference between neighbouring pixels across the lines of a `period`-px grid aligned with the
    image's top-left corner (between pixels k*period - 1 and k*period, horizontally and vertically), over the
    mean across all other neighbour pairs.

    images: (N, C, H, W), any range (the ratio is scale-free). ~1 for photographs; above 1 when the images have
    edges on that grid (a blocky pattern from nearest-neighbour upsampling), below 1 when they are smoothed
    across it. Raises ValueError for a period < 2, images smaller than two cells, or images without any
    neighbouring-pixel differences off the grid.
    """
    x = _grey(images)
    if period < 2:
        raise ValueError(f"grid period must be >= 2 px, got {period}")
    if min(x.shape[1:]) < 2 * period:
        raise ValueError(f"images of {x.shape[1]}x{x.shape[2]} px are smaller than two {period}-px cells")
    dh, dv = np.abs(np.diff(x, axis=2)), np.abs(np.diff(x, axis=1))  # pairs (j, j + 1)
    on_h = (np.arange(dh.shape[2]) + 1) % period == 0
    on_v = (np.arange(dv.shape[1]) + 1) % period == 0
    on = np.concatenate([dh[:, :, on_h].ravel(), dv[:, on_v, :].ravel()]).mean()
    off = np.concatenate([dh[:, :, ~on_h].ravel(), dv[:, ~on_v, :].ravel()]).mean()
    if off == 0:
        raise ValueError("images have no neighbouring-pixel differences off the grid (flat or pure cells)")
    return float(on / off)


def grid_contrasts(images, periods=GRID_PERIODS) -> dict[str, float]:
    """{str(period): grid_contrast(images, period)} for the generator's upsampling grids (2, 4, 8 px at 64 px)."""
    return {str(p): grid_contrast(images, p) for p in periods}
