"""Text-image alignment: R-precision (AttnGAN protocol) and kNN class consistency."""
from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import normalize

__all__ = ["r_precision", "class_consistency"]


def _emb(x, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {a.shape}")
    return a


def r_precision(img_emb, txt_emb, candidates: int = 100, seed: int = 0) -> float:
    """R-precision (R = 1) of matching each image to its own caption among random distractors.

    img_emb: (N, D), txt_emb: (N, D), np or torch; row i of txt_emb is the caption image i was
    generated from. For each i, the true caption competes with ``candidates - 1`` captions drawn
    without replacement from the other rows (so a distractor can share the class); the score is
    the fraction of images whose true caption has strictly the highest cosine similarity (a tie
    counts as a miss). Chance level is ``1 / candidates``. Raises ValueError if N < candidates.
    """
    img, txt = normalize(_emb(img_emb, "img_emb")), normalize(_emb(txt_emb, "txt_emb"))
    if img.shape != txt.shape:
        raise ValueError(f"img_emb {img.shape} and txt_emb {txt.shape} must have the same shape")
    n = img.shape[0]
    if candidates < 2:
        raise ValueError(f"candidates must be >= 2, got {candidates}")
    if n < candidates:
        raise ValueError(f"r_precision needs N >= candidates; got N={n}, candidates={candidates} "
                         f"(pass candidates<={n} and report it)")
    rng = np.random.default_rng(seed)
    hits = 0
    for i in range(n):
        others = rng.choice(n - 1, size=candidates - 1, replace=False)
        others += others >= i                                   # skip index i
        sims = txt[others] @ img[i]
        hits += bool(txt[i] @ img[i] > sims.max())
    return hits / n


def class_consistency(gen_features, gen_labels, ref_features, ref_labels, k: int = 10) -> float:
    """Fraction of generated images whose cosine-kNN majority class among real images is their caption's class.

    gen_features: (G, D), gen_labels: (G,) int (class of the conditioning caption);
    ref_features: (R, D), ref_labels: (R,) int (real images). ``k`` is capped at R; vote ties go
    to the smallest label (sklearn). Returns a float in [0, 1].
    """
    gx, rx = _emb(gen_features, "gen_features"), _emb(ref_features, "ref_features")
    gy, ry = np.asarray(gen_labels).reshape(-1), np.asarray(ref_labels).reshape(-1)
    if gx.shape[1] != rx.shape[1]:
        raise ValueError(f"feature dims differ: gen {gx.shape[1]} vs ref {rx.shape[1]}")
    if gx.shape[0] != gy.shape[0] or rx.shape[0] != ry.shape[0]:
        raise ValueError("features and labels must have the same number of rows")
    if gx.shape[0] == 0 or rx.shape[0] == 0:
        raise ValueError("class_consistency needs at least one generated and one reference sample")
    knn = KNeighborsClassifier(n_neighbors=min(k, rx.shape[0]), metric="cosine", algorithm="brute")
    pred = knn.fit(rx, ry).predict(gx)
    return float(np.mean(pred == gy))
