"""End-of-run figures, written into the run folder and logged to W&B.

After the evaluation (`runs/<id>/eval/`), `write_run_media` draws from the run's own files:

    eval/figures/real_vs_generated.png   per unseen test class: a row of generated images (text only)
                                         above a row of real photos of that class (torchvision grid)
    eval/figures/tsne_3d.png             3-D t-SNE of the source encoder's embeddings of all images
    eval/figures/umap_2d.png             2-D UMAP of the same embeddings (when umap-learn is installed)

`log_run_media` logs these images and a `wandb.Table` of the embeddings (one row per image: name,
class, test-class flag, the embedding vector) so W&B's embedding projector panel works online.
Figures are files first: an offline user without W&B sees the same pictures in the run folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid, save_image

from data_utils.classes import class_name

__all__ = ["real_vs_generated_grid", "write_run_media", "log_run_media"]


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
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from analysis.figures import plot_embedding_2d, plot_embedding_3d
    from data_utils.augment import center_crop_hwc
    from metrics.projection import tsne, umap_2d
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


def log_run_media(tracker, eval_dir: Path, written: dict[str, Path]) -> None:
    """Log the written figures and the embeddings table to the run's tracker (no-op when tracking is off)."""
    if tracker is None or not tracker.active:
        return
    for key, path in written.items():
        tracker.log_image(key, path, [])
    with np.load(Path(eval_dir) / "embeddings.npz") as z:
        rows = [{"image": str(n), "class": int(c), "class_name": class_name(c), "test_class": bool(t),
                 "embedding": [round(float(v), 5) for v in f]}
                for n, c, t, f in zip(z["image_names"], z["labels"], z["is_test_class"], z["features"])]
    tracker.log_table("eval/embeddings", rows)
