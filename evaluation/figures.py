"""End-of-run figures, written into the run folder (tracking/media.py logs them to W&B).

After the evaluation (`runs/<id>/eval/`), `write_run_media` draws from the run's own files:

    eval/figures/real_vs_generated.png   per unseen test class: a row of generated images (text only)
                                         above a row of real photos of that class, each row labelled
    eval/figures/tsne_3d.png             3-D t-SNE of the source encoder's embeddings of all images
    eval/figures/umap_2d.png             2-D UMAP of the same embeddings (when umap-learn is installed)

At the end of every run (also one that stopped), `write_curves` draws `runs/<id>/curves.png`: the losses and
validation numbers of stats.jsonl against images seen, the encoder and GAN phases marked.

Figures are files first: an offline user without W&B sees the same pictures in the run folder.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

from core.files import atomic_write, read_stats
from core.pictures import captioned_grid, save_picture
from data_utils.augment import center_crop_hwc
from data_utils.classes import class_name
from metrics.projection import tsne, umap_2d


TEST_MARKERS = ("^", "s", "D", "P", "*", "X", "v", "p")
TEST_COLORS = ("#000000", "#d62728", "#1f3ab4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")


def class_styles(labels: np.ndarray, is_test: np.ndarray) -> dict:
    """label -> dict(color, marker, size, test): train classes small circles in 20 colours,
    test classes large outlined markers, one shape and colour each."""
    train = sorted(set(labels[~is_test].tolist()))
    test = sorted(set(labels[is_test].tolist()))
    cmap = plt.get_cmap("tab20")
    styles = {c: {"color": cmap(i % 20), "marker": "o", "size": 10, "test": False} for i, c in enumerate(train)}
    styles.update({c: {"color": TEST_COLORS[i % len(TEST_COLORS)], "marker": TEST_MARKERS[i % len(TEST_MARKERS)],
                       "size": 46, "test": True} for i, c in enumerate(test)})
    return styles


def _scatter_classes(ax, xyz: np.ndarray, labels: np.ndarray, styles: dict) -> list:
    handles = []
    for c, st in sorted(styles.items(), key=lambda kv: kv[1]["test"]):  # test classes drawn last (on top)
        m = labels == c
        pts = [xyz[m, i] for i in range(xyz.shape[1])]
        extra = {"depthshade": False} if xyz.shape[1] == 3 else {}
        h = ax.scatter(*pts, c=[st["color"]], marker=st["marker"], s=st["size"],
                       alpha=0.95 if st["test"] else 0.55, edgecolors="black" if st["test"] else "none",
                       linewidths=0.6, label=class_name(c) if st["test"] else None, **extra)
        if st["test"]:
            handles.append(h)
    return handles


def _legend(fig, handles) -> None:
    from matplotlib.lines import Line2D
    train = Line2D([], [], marker="o", ls="", color="grey", alpha=0.6, label="train classes (one colour each)")
    fig.legend(handles=[train, *handles], title="unseen test classes: large markers", loc="outside right center",
               fontsize=9, title_fontsize=9)


def plot_embedding_3d(xyz: np.ndarray, labels: np.ndarray, is_test: np.ndarray, title: str = "",
                      views=((20, -60), (20, 30))) -> plt.Figure:
    """3-D scatter (e.g. t-SNE) coloured by class, test classes with their own large markers; one panel
    per (elevation, azimuth) view so the depth can be read."""
    styles = class_styles(labels, is_test)
    fig = plt.figure(figsize=(6.2 * len(views) + 2.8, 6.2), layout="constrained")
    handles = []
    for i, (elev, azim) in enumerate(views):
        ax = fig.add_subplot(1, len(views), i + 1, projection="3d")
        handles = _scatter_classes(ax, xyz, labels, styles)
        ax.view_init(elev=elev, azim=azim)
        ax.set_title(f"view {i + 1}: elevation {elev}°, azimuth {azim}°", fontsize=10)
        ax.set_xlabel("t-SNE 1"), ax.set_ylabel("t-SNE 2"), ax.set_zlabel("t-SNE 3")
        ax.tick_params(labelsize=7)
    _legend(fig, handles)
    if title:
        fig.suptitle(title)
    return fig


def plot_embedding_2d(xy: np.ndarray, labels: np.ndarray, is_test: np.ndarray, title: str = "",
                      axis_name: str = "UMAP") -> plt.Figure:
    """2-D scatter (e.g. UMAP) with the same class styles as `plot_embedding_3d`."""
    styles = class_styles(labels, is_test)
    fig, ax = plt.subplots(figsize=(9.5, 6.2), layout="constrained")
    handles = _scatter_classes(ax, xy, labels, styles)
    ax.set_xlabel(f"{axis_name} 1"), ax.set_ylabel(f"{axis_name} 2")
    _legend(fig, handles)
    if title:
        ax.set_title(title)
    return fig


CURVE_PANELS = (
    ("Encoders: losses (enc/*)", lambda k: k.startswith("enc/")),
    ("GAN: discriminator (gan/d_*, gan/r1)", lambda k: k.startswith(("gan/d_", "gan/r1"))),
    ("GAN: generator (gan/g_adv, kl, distill)", lambda k: k.startswith("gan/") and
     not k.startswith(("gan/d_", "gan/r1"))),
    ("Validation (held-out train-class images)", lambda k: k in ("val/kid", "val/image_text_loss")),
    ("Validation: distillation and 2-px grid contrast", lambda k: k in ("val/distill", "val/grid_contrast")),
    ("Encoder monitor: kNN accuracy", lambda k: k.startswith("monitor/")),
    ("Seconds per epoch", lambda k: k == "time/epoch_seconds"),
)
TWIN = {"val/image_text_loss": "val/kid", "val/grid_contrast": "val/distill"}  # right axis when both are drawn


def _series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["images_seen"], r[key]) for r in rows if isinstance(r.get(key), (int, float))
           and math.isfinite(r[key]) and "images_seen" in r]
    return (np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float))


def _mark_phases(ax, boundary: float, end: float) -> None:
    """The encoder and GAN phases on a panel: a dashed line where they meet, the GAN phase shaded, both named."""
    ax.axvline(boundary, color="grey", ls="--", lw=1)
    ax.axvspan(boundary, end, color="#f4ecd8", alpha=0.6, zorder=0, lw=0)
    top = ax.get_xaxis_transform()  # x in data, y in axes units
    ax.text(boundary, 0.98, "encoder phase  ", transform=top, ha="right", va="top", fontsize=8, color="dimgrey")
    ax.text(boundary, 0.98, "  GAN phase", transform=top, ha="left", va="top", fontsize=8, color="dimgrey")


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Moving average with a shrinking window at the edges (same length as y)."""
    if window <= 1 or len(y) < 3:
        return y
    k = np.ones(window)
    return np.convolve(y, k, "same") / np.convolve(np.ones_like(y), k, "same")


def plot_training_curves(rows: list[dict], title: str = "") -> plt.Figure:
    """Seven panels of `stats.jsonl` rows against images seen (epochs on the top axis): encoder losses,
    discriminator and generator losses, validation (KID and the image-text loss; distillation and the grid
    contrast), the encoder's kNN monitor and seconds per epoch. Thin lines are the logged values, thick lines a
    moving average; the dashed line is where the encoders stop learning and the GAN starts (the phases are named
    above it, the GAN phase shaded)."""
    fig, axes = plt.subplots(4, 2, figsize=(13, 14), layout="constrained")
    axes.flat[-1].set_axis_off()
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
            if TWIN.get(k) in chosen:  # another scale: right axis
                target = ax.twinx()
                target.set_ylabel(f"{k} (right)")
                ax.set_ylabel(f"{TWIN[k]} (left)")
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
            _mark_phases(ax, boundary, max(r["images_seen"] for r in gan_rows if "images_seen" in r))
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


def write_curves(run_dir: Path) -> Path | None:
    """RUN/curves.png: `plot_training_curves` of the run's stats.jsonl (None when it has no rows yet)."""
    rows = read_stats(run_dir)
    if not rows:
        return None
    matplotlib.use("Agg", force=False)  # files only, also without a screen
    fig = plot_training_curves(rows, title=f"run {Path(run_dir).name}: losses and validation against images seen")
    path = atomic_write(Path(run_dir) / "curves.png", lambda tmp: fig.savefig(tmp, dpi=72, format="png"))
    plt.close(fig)
    return path


def real_vs_generated_grid(fake: np.ndarray, fake_labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray,
                           per_class: int = 5) -> tuple[torch.Tensor, list[str]]:
    """uint8 NHWC generated (M, H, W, 3) and real (R, H, W, 3) images with their class labels -> (rows, labels):
    rows (2C, per_class, 3, H, W) floats in [0, 1], two per class (generated, then real), classes in sorted order,
    a class with fewer images leaving its cells black; labels, one per row, naming the class and the row's kind."""
    classes = sorted(set(np.asarray(fake_labels).tolist()))
    if not classes:
        raise ValueError("no generated images to show")
    h, w = fake.shape[1:3]
    rows, labels = [], []
    for c in classes:
        for imgs, labs, kind in ((fake, fake_labels, "generated from captions"), (real, real_labels, "real photos")):
            pick = imgs[np.asarray(labs) == c][:per_class]
            row = torch.zeros(per_class, 3, h, w)
            if len(pick):
                t = torch.from_numpy(np.ascontiguousarray(pick)).permute(0, 3, 1, 2).float() / 255
                row[:len(t)] = t[..., :h, :w]
            rows.append(row)
            labels.append(f"{class_name(c)}:\n{kind}")
    return torch.stack(rows), labels


def write_run_media(eval_dir: Path, test_set, image_size: int, projections: bool = True,
                    log=print) -> dict[str, Path]:
    """Write eval/figures/*.png from eval/samples.npz and eval/embeddings.npz; returns {key: png path}.

    test_set: the test-class ImageSet (its photos, centre-cropped to `image_size`, are the real rows).
    """
    matplotlib.use("Agg", force=False)  # files only, also without a screen
    eval_dir = Path(eval_dir)
    out = eval_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    with np.load(eval_dir / "samples.npz") as z:
        real = center_crop_hwc(test_set.images, image_size)
        rows, labels = real_vs_generated_grid(z["images"], z["labels"], real, test_set.labels.numpy())
    picture = captioned_grid(rows, labels=labels, value_range=(0.0, 1.0), title="Unseen classes: images generated "
                             "from captions alone, each above real photos of its class", group=2)
    written["eval/real_vs_generated"] = save_picture(picture, out / "real_vs_generated.png")
    if not projections:
        return written
    with np.load(eval_dir / "embeddings.npz") as z:
        feats, labels, is_test = z["features"], z["labels"], z["is_test_class"]
    for key, name, fn, plot in (
            ("eval/tsne_3d", "tsne_3d.png", lambda f: tsne(f, 3, seed=0), plot_embedding_3d),
            ("eval/umap_2d", "umap_2d.png", lambda f: umap_2d(f, seed=0), plot_embedding_2d)):
        try:
            xyz = fn(feats)
        except ValueError as e:
            log(f"{name}: skipped ({e})")
            continue
        if xyz is None:
            log(f"{name}: skipped (umap-learn not installed)")
            continue
        method = {"tsne_3d.png": "3-D t-SNE", "umap_2d.png": "2-D UMAP"}[name]
        fig = plot(xyz, labels, is_test, title=f"source-encoder embeddings of {len(labels):,} images, {method}")
        fig.savefig(out / name, dpi=80)
        plt.close(fig)
        written[key] = out / name
    return written
