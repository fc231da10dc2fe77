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
from evaluation.figures import class_styles, plot_embedding_2d, plot_embedding_3d  # noqa: F401 - for the notebook

CURVE_PANELS = (
    ("Encoders: losses (enc/*)", lambda k: k.startswith("enc/")),
    ("GAN: discriminator (gan/d_*, gan/r1)", lambda k: k.startswith(("gan/d_", "gan/r1"))),
    ("GAN: generator (gan/g_adv, kl, distill)", lambda k: k.startswith("gan/") and
     not k.startswith(("gan/d_", "gan/r1"))),
    ("Validation (held-out train-class images)", lambda k: k in ("val/kid", "val/image_text_loss")),
    ("Encoder monitor: kNN accuracy", lambda k: k.startswith("monitor/")),
    ("Seconds per epoch", lambda k: k == "time/epoch_seconds"),
)


def _series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["images_seen"], r[key]) for r in rows if isinstance(r.get(key), (int, float))
           and math.isfinite(r[key]) and "images_seen" in r]
    return (np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float))


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Moving average with a shrinking window at the edges (same length as y)."""
    if window <= 1 or len(y) < 3:
        return y
    k = np.ones(window)
    return np.convolve(y, k, "same") / np.convolve(np.ones_like(y), k, "same")


def plot_training_curves(rows: list[dict], title: str = "") -> plt.Figure:
    """Six panels of `stats.jsonl` rows against images seen (epochs on the top axis): encoder losses,
    discriminator and generator losses, validation, the encoder's kNN monitor and seconds per epoch.
    Thin lines are the logged values, thick lines a moving average; the dashed line is where the encoders stop
    learning and the GAN starts."""
    fig, axes = plt.subplots(3, 2, figsize=(13, 11), layout="constrained")
    keys = sorted({k for r in rows for k in r})
    epoch_rows = [r for r in rows if "time/epoch_seconds" in r and r.get("epoch")]
    per_epoch = epoch_rows[-1]["images_seen"] / epoch_rows[-1]["epoch"] if epoch_rows else None
    enc_rows = [r["images_seen"] for r in rows if r.get("stage") == "encoder" and "images_seen" in r]
    gan_rows = [r for r in rows if r.get("stage") == "gan"]
    boundary = max(enc_rows) if enc_rows and gan_rows else None
    for ax, (panel, wanted) in zip(axes.flat, CURVE_PANELS):
        ax.set_title(panel, fontsize=11)
        ax.set_xlabel("images seen")
        chosen = [k for k in keys if wanted(k)]
        lines = []
        for i, k in enumerate(chosen):
            x, y = _series(rows, k)
            if not len(x):
                continue
            target = ax
            if k == "val/image_text_loss" and "val/kid" in chosen:  # another scale: right axis
                target = ax.twinx()
                target.set_ylabel(k)
            color = f"C{i}"
            few = len(x) < 30
            if few:
                lines += target.plot(x, y, "o-", color=color, label=k, ms=4)
            else:
                target.plot(x, y, color=color, alpha=0.25, lw=0.8)
                lines += target.plot(x, smooth(y, max(1, len(y) // 40)), color=color, lw=1.8, label=k)
            if k.startswith("val/kid") and (y > 0).all() and y.max() > 20 * y.min():  # spans decades: log scale
                target.set_yscale("log")
                target.set_ylabel("kernel distance (log scale)")
        if boundary is not None:
            ax.axvline(boundary, color="grey", ls="--", lw=1)
        if per_epoch:
            top = ax.secondary_xaxis("top", functions=(lambda x: x / per_epoch, lambda e: e * per_epoch))
            top.set_xlabel("epoch", fontsize=9)
        if lines:
            ax.legend(handles=lines, fontsize=8, loc="best")
        else:
            ax.text(0.5, 0.5, "not logged in this run", ha="center", va="center", transform=ax.transAxes,
                    color="grey")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


# ------------------------------------------------------------------ images
def _frame(ax) -> None:
    """Hide ticks and frame but keep axis labels (an image cell)."""
    ax.set_xticks([]), ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def image_key(row: int, col: int) -> str:
    """Name of a grid cell: row letter + column number ("A1", "B3", ...)."""
    return f"{chr(ord('A') + row)}{col + 1}"


def plot_caption_grid(fake: np.ndarray, real: np.ndarray, picks: list[dict], classes: list[int]) -> plt.Figure:
    """Left: images generated from captions alone (one row per unseen class, one column per caption);
    right: at the same place, the real photo that caption was written for. fake/real: uint8 (M, H, W, 3),
    one per entry of `picks` (see `analysis.loading.pick_test_captions`)."""
    n_rows, n_cols = len(classes), max(p["column"] for p in picks) + 1
    fig = plt.figure(figsize=(2 * n_cols * 1.45 + 1.6, n_rows * 1.6 + 0.9), layout="constrained")
    subs = fig.subfigures(1, 2, wspace=0.04)
    row_of = {c: i for i, c in enumerate(classes)}
    for sub, imgs, title in ((subs[0], fake, "Generated from the caption alone"),
                             (subs[1], real, "Real photo the caption was written for")):
        axes = sub.subplots(n_rows, n_cols, squeeze=False)
        sub.suptitle(title, fontsize=12)
        for ax in axes.flat:
            _frame(ax)
        for p, img in zip(picks, imgs):
            r, c = row_of[p["label"]], p["column"]
            axes[r, c].imshow(img)
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
        axes.flat[i].imshow(img)
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
