"""FID / KID computed from feature matrices of a network trained in this project (nothing pretrained).

Implementation: torchmetrics' ``FrechetInceptionDistance`` and ``KernelInceptionDistance`` with a
custom ``feature`` module that passes precomputed features straight through (with a custom module
torchmetrics feeds ``update``'s input to it unchanged, so no uint8 images are needed). Everything
runs in float64. FID uses torchmetrics' eigenvalue form ``Tr(sqrt(S1 S2))``; KID is the unbiased
MMD^2 with the polynomial kernel ``(x.y / D + 1)^3`` averaged over random subsets, with the subset
draw seeded locally (the global torch RNG is restored afterwards).

Too few samples: FID needs >= 2 per set (else ValueError). KID needs >= 2 per set; if
``subset_size`` exceeds the smaller set it is shrunk to that size with a ``UserWarning`` (the
value then has a larger variance, which the returned std shows).
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

__all__ = ["fid", "kid", "fid_kid_from_images", "real_floor", "disjoint_halves"]


class _Precomputed(nn.Module):
    """Identity 'feature extractor': (B, D) features in, the same (B, D) float64 features out."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.double()


def _as_features(x, name: str) -> torch.Tensor:
    """np.ndarray or torch.Tensor (N, D) -> float64 CPU tensor, validated."""
    t = torch.as_tensor(np.asarray(x.detach().cpu() if torch.is_tensor(x) else x), dtype=torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def _pair(real, fake) -> tuple[torch.Tensor, torch.Tensor]:
    r, f = _as_features(real, "real_features"), _as_features(fake, "fake_features")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature dims differ: real {r.shape[1]} vs fake {f.shape[1]}")
    if r.shape[0] < 2 or f.shape[0] < 2:
        raise ValueError(f"need >= 2 samples per set, got real={r.shape[0]}, fake={f.shape[0]}")
    return r, f


def fid(real_features, fake_features) -> float:
    """Frechet distance between Gaussians fitted to two feature sets.

    real_features: (N_r, D), fake_features: (N_f, D), np or torch; N_r, N_f >= 2.
    ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^{1/2})``. Biased upwards for small N, so only
    compare values computed with the same sample sizes.
    """
    r, f = _pair(real_features, fake_features)
    metric = FrechetInceptionDistance(feature=_Precomputed(r.shape[1]), sync_on_compute=False)  # local data only
    metric.update(r, real=True)
    metric.update(f, real=False)
    return max(float(metric.compute()), 0.0)  # tiny negatives are round-off


def kid(real_features, fake_features, subset_size: int = 100, subsets: int = 50,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: (mean, std) of unbiased poly-kernel MMD^2 over random subsets.

    real_features: (N_r, D), fake_features: (N_f, D), np or torch. Each of ``subsets`` draws takes
    ``subset_size`` rows without replacement from each set. Unbiased, so it can be slightly < 0
    for identical distributions. ``subset_size`` > min(N_r, N_f) is shrunk with a warning.
    """
    r, f = _pair(real_features, fake_features)
    n = min(r.shape[0], f.shape[0])
    if subset_size > n:
        warnings.warn(f"KID subset_size={subset_size} > min(N_real, N_fake)={n}; using {n}", UserWarning,
                      stacklevel=2)
        subset_size = n
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(feature=_Precomputed(r.shape[1]), subsets=subsets, sync_on_compute=False,
                                         subset_size=subset_size)
    metric.update(r, real=True)
    metric.update(f, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def _extract(images, feature_fn: Callable, batch_size: int) -> torch.Tensor:
    """Apply ``feature_fn`` to ``images`` (N, ...) in batches under no_grad -> (N, D) float64."""
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            feats = feature_fn(images[i:i + batch_size])
            out.append(_as_features(feats, "feature_fn output"))
    if not out:
        raise ValueError("no images given")
    return torch.cat(out)


def fid_kid_from_images(real_imgs, fake_imgs, feature_fn: Callable, batch_size: int = 256,
                        kid_subset_size: int = 100, kid_subsets: int = 50, seed: int = 0) -> dict:
    """FID and KID of two image sets in the feature space of ``feature_fn``.

    real_imgs, fake_imgs: anything sliceable along dim 0 that ``feature_fn`` accepts (e.g. torch
    (N, 3, 64, 64)); feature_fn: batch -> (B, D) np or torch. Returns
    ``{"fid", "kid_mean", "kid_std", "n_real", "n_fake"}``.
    """
    r = _extract(real_imgs, feature_fn, batch_size)
    f = _extract(fake_imgs, feature_fn, batch_size)
    k_mean, k_std = kid(r, f, subset_size=kid_subset_size, subsets=kid_subsets, seed=seed)
    return {"fid": fid(r, f), "kid_mean": k_mean, "kid_std": k_std,
            "n_real": int(r.shape[0]), "n_fake": int(f.shape[0])}


def real_floor(real_features, seed: int = 0, kid_subset_size: int = 100, kid_subsets: int = 50) -> dict:
    """FID/KID between two disjoint random halves of the real set: the 'as good as real' floor.

    real_features: (N, D), N >= 4. Each half has N // 2 rows; compare it with generated sets of
    that same size (``n_per_half``), since FID is biased by sample size.
    Returns ``{"fid", "kid_mean", "kid_std", "n_per_half"}``.
    """
    x = _as_features(real_features, "real_features")
    half = x.shape[0] // 2
    if half < 2:
        raise ValueError(f"real_floor needs >= 4 real samples, got {x.shape[0]}")
    ia, ib = disjoint_halves(x.shape[0], seed)
    a, b = x[torch.from_numpy(ia)], x[torch.from_numpy(ib)]
    k_mean, k_std = kid(a, b, subset_size=kid_subset_size, subsets=kid_subsets, seed=seed)
    return {"fid": fid(a, b), "kid_mean": k_mean, "kid_std": k_std, "n_per_half": int(half)}


def disjoint_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The two disjoint random halves (n // 2 indices each, int64) that ``real_floor`` compares.

    Use them to score generated images on the same footing as the floor: FID(real[a], fake) with
    fakes made from the captions of real[b] has the same sample sizes and class mix as the floor.
    """
    perm = np.random.default_rng(seed).permutation(n)
    half = n // 2
    return perm[:half], perm[half:2 * half]
