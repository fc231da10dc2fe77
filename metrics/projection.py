"""Low-dimensional projections of embeddings for figures: t-SNE (scikit-learn) and UMAP (umap-learn).

Pure functions: (N, D) features in, (N, k) coordinates out, seeded. Used by the end-of-run W&B media
(tracking/media.py) and by the notebook (analysis/loading.py).
"""
from __future__ import annotations

import numpy as np

__all__ = ["tsne", "umap_2d"]


def tsne(features, n_components: int = 3, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """t-SNE of `features` (N, D) -> (N, n_components). The perplexity is lowered for small N
    (it must stay below the number of samples). Raises ValueError for fewer than 3 samples."""
    from sklearn.manifold import TSNE
    x = np.asarray(features, dtype=np.float32)
    if len(x) < 3:
        raise ValueError(f"t-SNE needs >= 3 samples, got {len(x)}")
    perplexity = float(min(perplexity, max(1.0, (len(x) - 1) / 3)))
    return TSNE(n_components=n_components, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto").fit_transform(x)


def umap_2d(features, seed: int = 0, n_neighbors: int = 15) -> np.ndarray | None:
    """2-D UMAP (cosine metric) of `features` (N, D) -> (N, 2); None when umap-learn is not installed."""
    try:
        import umap
    except ImportError:
        return None
    x = np.asarray(features, dtype=np.float32)
    if len(x) < 4:
        raise ValueError(f"UMAP needs >= 4 samples, got {len(x)}")
    n_neighbors = int(max(2, min(n_neighbors, len(x) - 1)))
    return umap.UMAP(n_components=2, n_neighbors=n_neighbors, metric="cosine", random_state=seed,
                     n_jobs=1).fit_transform(x)
