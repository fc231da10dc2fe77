"""How discriminative an embedding is: kNN / linear-probe accuracy, silhouette, k-means NMI.

All functions take ``features`` as an ``(N, D)`` float array and ``labels`` as an ``(N,)`` int
array and return plain Python floats. Everything is sklearn; nothing here is trained beyond the
probes themselves, which are cross-validated so no number is measured on its own training data.
"""
from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import normalized_mutual_info_score, silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler, normalize

__all__ = ["knn_accuracy", "linear_probe_accuracy", "silhouette", "kmeans_nmi", "encoder_report"]


def _check(features, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert: features ``(N, D)`` float64, labels ``(N,)`` int."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D (N, D), got shape {x.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"features has {x.shape[0]} rows but labels has {y.shape[0]} entries")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    return x, y


def _cv(labels: np.ndarray, folds: int, seed: int) -> StratifiedKFold:
    """StratifiedKFold with ``folds`` reduced to the smallest class count (>= 2 required)."""
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes for a cross-validated accuracy, got {len(classes)}")
    if counts.min() < 2:
        bad = classes[counts < 2].tolist()
        raise ValueError(f"every class needs >= 2 samples for cross-validation; classes {bad} have 1")
    n_splits = int(min(folds, counts.min()))
    if n_splits < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def knn_accuracy(features, labels, k: int = 10, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated top-1 accuracy of a cosine k-nearest-neighbour classifier.

    features: (N, D) float; labels: (N,) int. ``folds`` is reduced to the smallest class count
    when needed; ``k`` is capped at the smallest training-fold size. Ties in the vote go to
    the smallest label (sklearn's behaviour). Raises ValueError if a class has < 2 samples.
    """
    x, y = _check(features, labels)
    cv = _cv(y, folds, seed)
    n_train_min = x.shape[0] - int(np.ceil(x.shape[0] / cv.n_splits))
    knn = KNeighborsClassifier(n_neighbors=max(1, min(k, n_train_min)), metric="cosine", algorithm="brute")
    return float(cross_val_score(knn, x, y, cv=cv).mean())


def linear_probe_accuracy(features, labels, folds: int = 5, seed: int = 0, C: float = 1.0) -> float:
    """Cross-validated accuracy of multinomial logistic regression on standardised features.

    features: (N, D) float; labels: (N,) int. The scaler is fitted inside each training fold.
    Same fold rules as :func:`knn_accuracy`.
    """
    x, y = _check(features, labels)
    cv = _cv(y, folds, seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))
    return float(cross_val_score(probe, x, y, cv=cv).mean())


def silhouette(features, labels) -> float:
    """Mean silhouette coefficient under cosine distance, in [-1, 1] (higher = tighter classes).

    features: (N, D) float; labels: (N,) int. Needs 2 <= n_classes <= N - 1.
    """
    x, y = _check(features, labels)
    n_classes = len(np.unique(y))
    if not 2 <= n_classes <= x.shape[0] - 1:
        raise ValueError(f"silhouette needs 2 <= n_classes <= N-1, got {n_classes} classes for N={x.shape[0]}")
    return float(silhouette_score(x, y, metric="cosine"))


def kmeans_nmi(features, labels, seed: int = 0) -> float:
    """NMI between labels and k-means clusters (k = number of classes) of L2-normalised features.

    features: (N, D) float; labels: (N,) int. Returns a value in [0, 1]; 1 = clusters are classes.
    """
    x, y = _check(features, labels)
    n_classes = len(np.unique(y))
    if n_classes < 2 or x.shape[0] <= n_classes:
        raise ValueError(f"k-means NMI needs >= 2 classes and N > n_classes, got {n_classes} for N={x.shape[0]}")
    clusters = KMeans(n_clusters=n_classes, n_init=10, random_state=seed).fit_predict(normalize(x))
    return float(normalized_mutual_info_score(y, clusters))


def _group_report(x: np.ndarray, y: np.ndarray, k: int, seed: int) -> dict:
    """All four metrics for one group, or ``None`` values plus ``"unavailable"`` with the reason."""
    classes, counts = np.unique(y, return_counts=True)
    out = {"n": int(len(y)), "n_classes": int(len(classes)),
           "knn_acc": None, "linear_acc": None, "silhouette": None, "nmi": None}
    if len(classes) < 2:
        out["unavailable"] = f"{len(classes)} class(es) in this group; need >= 2"
        return out
    if counts.min() < 2:
        out["unavailable"] = f"classes {classes[counts < 2].tolist()} have a single sample; need >= 2 each"
        return out
    out.update(knn_acc=knn_accuracy(x, y, k=k, seed=seed), linear_acc=linear_probe_accuracy(x, y, seed=seed),
               silhouette=silhouette(x, y), nmi=kmeans_nmi(x, y, seed=seed))
    return out


def encoder_report(features, labels, is_test_class, k: int = 10, seed: int = 0) -> dict:
    """Encoder metrics for all samples, seen ("train") classes and held-out ("test") classes.

    features: (N, D) float; labels: (N,) int; is_test_class: (N,) bool, True where the sample's
    class is a held-out class. Returns ``{"all": r, "train": r, "test": r}`` where each ``r`` has
    ``knn_acc, linear_acc, silhouette, nmi, n, n_classes``; a group that cannot be scored has
    ``None`` for the four metrics and an ``"unavailable"`` reason string.
    """
    x, y = _check(features, labels)
    test = np.asarray(is_test_class, dtype=bool).reshape(-1)
    if test.shape[0] != y.shape[0]:
        raise ValueError(f"is_test_class has {test.shape[0]} entries but labels has {y.shape[0]}")
    masks = {"all": np.ones_like(test), "train": ~test, "test": test}
    return {name: _group_report(x[m], y[m], k, seed) for name, m in masks.items()}
