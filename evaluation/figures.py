"""End-of-run figures, written into the run folder (tracking/media.py logs them to W&B).

After the evaluation (`runs/<id>/eval/`), `write_run_media` draws from the run's own files:

    eval/figures/real_vs_generated.png   per unseen test class: a row of generated images (text only)
                                         above a row of real photos of that class (torchvision grid)
    eval/figures/tsne_3d.png             3-D t-SNE of the source encoder's embeddings of all images
    eval/figures/umap_2d.png             2-D UMAP of the same embeddings (when umap-learn is installed)

Figures are files first: an offline user without W&B sees the same pictures in the run folder.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from torchvision.utils import make_grid, save_image

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


def real_vs_generated_grid(fake: np.ndarray, fake_labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray,
                           per_class: int = 5) -> torch.Tensor:
    """uint8 NHWC generated (M, H, W, 3) and real (R, H, W, 3) images with their class labels ->
    a float (3, H', W') grid in [0, 1]: two rows per class (generated, then real), `per_class` columns,
    classes in sorted order; a class with fewer images leaves its cells black."""
    classes = sorted(set(np.asarray(fake_labels).tolist()))
    if not classes:
        raise ValueError("no generated images to show")
    h, w = fake.shape[1:3]
    cells = []
    for c in classes:
        for imgs, labs in ((fake, fake_labels), (real, real_labels)):
            pick = imgs[np.asarray(labs) == c][:per_class]
            row = torch.zeros(per_class, 3, h, w)
            if len(pick):
                t = torch.from_numpy(np.ascontiguousarray(pick)).permute(0, 3, 1, 2).float() / 255
                row[:len(t)] = t[..., :h, :w]
            cells.append(row)
    return make_grid(torch.cat(cells), nrow=per_class, padding=2, pad_value=1.0)


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
        grid = real_vs_generated_grid(z["images"], z["labels"], real, test_set.labels.numpy())
    written["eval/real_vs_generated"] = out / "real_vs_generated.png"
    save_image(grid, written["eval/real_vs_generated"])
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
