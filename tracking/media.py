"""End-of-run figures and embeddings to W&B.

`log_run_media` logs the PNGs that evaluation/figures.py wrote into eval/figures and a `wandb.Table` of the
embeddings (one row per image: name, class, test-class flag, the embedding vector) so W&B's embedding projector
panel works online.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data_utils.classes import class_name

__all__ = ["log_run_media"]


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
