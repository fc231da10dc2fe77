"""Sample diversity per caption: mean pairwise MS-SSIM (lower = more diverse)."""
from __future__ import annotations

from typing import Optional

import numpy as np

import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as _ms_ssim

__all__ = ["ms_ssim_diversity", "MS_SSIM_BETAS_3", "random_pairs"]

# The first three of Wang et al.'s five MS-SSIM exponents, renormalised to sum to 1. torchmetrics'
# default five scales reject 64x64 inputs; with three scales (64, 32, 16 px) an 11x11 kernel fits.
_B = (0.0448, 0.2856, 0.3001)
MS_SSIM_BETAS_3 = tuple(b / sum(_B) for b in _B)


def ms_ssim_diversity(images: torch.Tensor, value_range: Optional[tuple[float, float]] = None,
                      kernel_size: int = 11, sigma: float = 1.5, betas: tuple = MS_SSIM_BETAS_3,
                      batch_size: int = 512) -> float:
    """Mean MS-SSIM over all pairs of samples generated from the same caption.

    images: (G, S, C, H, W) float — G captions x S >= 2 samples each, H, W >= 44 with the defaults
    (64x64 expected). ``value_range`` is (-1, 1) or (0, 1); if None it is (-1, 1) when any value is
    negative, else (0, 1) — pass it explicitly for [-1, 1] images that happen to be non-negative.
    Uses 3-scale MS-SSIM (``betas``), Gaussian kernel ``kernel_size``/``sigma``, torchmetrics'
    default "relu" normalisation of negative contrast terms. Identical samples give 1.0; lower
    means more diverse. Averages over the G * S * (S - 1) / 2 pairs.
    """
    x = torch.as_tensor(images)
    if x.ndim != 5:
        raise ValueError(f"images must be (G, S, C, H, W), got shape {tuple(x.shape)}")
    g, s = x.shape[:2]
    if g == 0:
        raise ValueError("need >= 1 caption group, got G=0")
    if s < 2:
        raise ValueError(f"need >= 2 samples per caption for pairwise MS-SSIM, got S={s}")
    x = x.double()  # float32 gives ~0.9999 for identical low-contrast images; float64 gives 1
    if value_range is None:
        value_range = (-1.0, 1.0) if x.min() < 0 else (0.0, 1.0)
    lo, hi = value_range
    x = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)

    i, j = torch.triu_indices(s, s, offset=1)                    # all pairs within a group
    a = x[:, i].flatten(0, 1)                                    # (G * P, C, H, W)
    b = x[:, j].flatten(0, 1)
    scores = []
    with torch.no_grad():
        for k in range(0, a.shape[0], batch_size):
            scores.append(_ms_ssim(a[k:k + batch_size], b[k:k + batch_size], kernel_size=kernel_size,
                                   sigma=sigma, betas=tuple(float(v) for v in betas),
                                   data_range=1.0, reduction="none"))
    return float(torch.cat(scores).mean())


def random_pairs(labels, n_pairs: int, same_class: bool, seed: int = 0) -> np.ndarray:
    """(P, 2) int64 index pairs of distinct items, seeded; with ``same_class`` both share a label.

    labels: (N,). Pairs are drawn with replacement across draws (a pair may repeat); P = n_pairs,
    or 0 rows when no valid pair exists (fewer than 2 items / no class with 2 items).
    """
    y = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if same_class else [np.arange(len(y))]
    groups = [g for g in groups if len(g) >= 2]
    if not groups:
        return np.zeros((0, 2), np.int64)
    sizes = np.array([len(g) for g in groups], float)
    which = rng.choice(len(groups), size=n_pairs, p=sizes / sizes.sum())
    return np.array([rng.choice(groups[w], size=2, replace=False) for w in which], np.int64).reshape(-1, 2)
