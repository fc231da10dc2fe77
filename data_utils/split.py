"""Seeded class split (20 train / 5 test of the 102) and the validation hold-out of train-class images.

Both use numpy's PCG64 generator, so the same seed gives the same split on every machine; a test pins
the split of seed 0 so a change in behaviour cannot go unnoticed.
"""
from __future__ import annotations

import numpy as np

N_CLASSES = 102


def split_classes(seed: int, n_train: int = 20, n_test: int = 5) -> tuple[list[int], list[int]]:
    """Draw disjoint train and test class ids (1..102), each list sorted."""
    if n_train < 1 or n_test < 1 or n_train + n_test > N_CLASSES:
        raise ValueError(f"cannot draw {n_train} train + {n_test} test classes from {N_CLASSES}")
    perm = np.random.default_rng(seed).permutation(np.arange(1, N_CLASSES + 1))
    return sorted(perm[:n_train].tolist()), sorted(perm[n_train:n_train + n_test].tolist())


def holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified hold-out: per class, round(fraction * n) images (at least 1 when fraction > 0 and n > 1).

    Returns sorted index arrays (train_idx, val_idx) into `labels`.
    """
    rng = np.random.default_rng(seed + 1_000_003)  # a stream distinct from the class split's
    train, val = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(fraction * len(idx)))
        if fraction > 0 and len(idx) > 1:
            k = min(max(k, 1), len(idx) - 1)
        val.extend(idx[:k].tolist())
        train.extend(idx[k:].tolist())
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(val), dtype=np.int64)
