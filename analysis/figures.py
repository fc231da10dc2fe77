"""Figures for `analysis.ipynb` (matplotlib only): training curves, image grids, embedding projections.

Each function takes plain numbers/arrays (from `analysis.loading` or the project) and returns a matplotlib
Figure; the notebook shows them with `plt.show()`. Tables: analysis/tables.py.
"""
from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np

from data_utils.classes import class_name
from evaluation.figures import (class_styles, plot_embedding_2d, plot_embedding_3d,  # noqa: F401 - for the notebook
                                plot_training_curves, smooth)

# ------------------------------------------------------------------ images
def _frame(ax) -> None:
    """Hide ticks and frame but keep axis labels (an image cell)."""
    ax.set_xticks([]), ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def image_key(row: int, col: int) -> str:
    """Name of a grid cell: row letter + column number ("A1", "B3", ...)."""
    return f"{chr(ord('A') + row)}{col + 1}"


def plot_caption_grid(fake: np.ndarray, real: np.ndarray, picks: list[dict], classes: list[int],
                      title: str = "Generated from the caption alone") -> plt.Figure:
    """Left (`title`): generated images (one row per unseen class, one column per caption); right: at the same
    place, the real photo that caption was written for. fake/real: uint8 (M, H, W, 3), one per entry of `picks`
    (see `analysis.loading.pick_test_captions`)."""
    n_rows, n_cols = len(classes), max(p["column"] for p in picks) + 1
    fig = plt.figure(figsize=(2 * n_cols * 1.45 + 1.6, n_rows * 1.6 + 0.9), layout="constrained")
    subs = fig.subfigures(1, 2, wspace=0.04)
    row_of = {c: i for i, c in enumerate(classes)}
    for sub, imgs, title in ((subs[0], fake, title), (subs[1], real, "Real photo the caption was written for")):
        axes = sub.subplots(n_rows, n_cols, squeeze=False)
        sub.suptitle(title, fontsize=12)
        for ax in axes.flat:
            _frame(ax)
        for p, img in zip(picks, imgs):
            r, c = row_of[p["label"]], p["column"]
            axes[r, c].imshow(img, interpolation="nearest")  # the true pixels: a grid or noise stays visible
            axes[r, c].set_title(image_key(r, c), fontsize=8, pad=2)
        if sub is subs[0]:
            for r, cls in enumerate(classes):
                axes[r, 0].set_ylabel("\n".join(textwrap.wrap(class_name(cls), 14)), fontsize=9)
    return fig


def plot_images(images: np.ndarray, title: str = "", n_cols: int = 8) -> plt.Figure:
    """A row (or rows) of uint8 images (N, H, W, 3), numbered from 1."""
    n = len(images)
    n_cols = min(n_cols, n)
    n_rows = math.ceil(n / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.6 * n_cols, 1.7 * n_rows + 0.5), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for i, img in enumerate(images):
        axes.flat[i].imshow(img, interpolation="nearest")
        axes.flat[i].set_title(str(i + 1), fontsize=8)
    if title:
        fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=11)
    return fig


def show_png(path, title: str = "", width: float = 7.0) -> plt.Figure:
    """A PNG file (e.g. the trainer's samples/epoch_XXX.png grid) as a figure."""
    img = plt.imread(str(path))
    h, w = img.shape[:2]
    fig, ax = plt.subplots(figsize=(width, width * h / w + 0.4), layout="constrained")
    ax.imshow(img)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return fig


# ------------------------------------------------------------------ embeddings
