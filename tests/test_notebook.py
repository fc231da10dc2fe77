"""The end-of-run figures (files + offline W&B) and `analysis.ipynb`, executed end to end on a tiny real run.

One tiny run of `run_experiment.py` (1 encoder + 2 GAN epochs on the committed fixture, offline W&B,
figures on) feeds both: its `eval/figures/` and offline W&B media are checked, then the notebook is
executed top to bottom with `ANALYSIS_SOURCE` pointing at it (nbclient, this Python as the kernel).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.figures import real_vs_generated_grid

REPO = Path(__file__).resolve().parents[1]


def test_real_vs_generated_grid_layout():
    fake = np.zeros((6, 8, 8, 3), np.uint8)
    fake[:3] = 255  # class 2: white fakes; class 1: black fakes
    labels_fake = np.array([2, 2, 2, 1, 1, 1])
    real = np.full((4, 8, 8, 3), 128, np.uint8)
    labels_real = np.array([1, 1, 2, 2])
    g = real_vs_generated_grid(fake, labels_fake, real, labels_real, per_class=3)
    assert g.shape == (3, 4 * 10 + 2, 3 * 10 + 2)  # 2 classes x (generated row, real row), 2 px padding
    cell = lambda r, c: g[:, 2 + 10 * r:10 + 10 * r, 2 + 10 * c:10 + 10 * c]  # noqa: E731
    assert cell(0, 0).max() == 0  # class 1 (sorted first): generated row is black
    assert abs(float(cell(1, 0).mean()) - 128 / 255) < 1e-6 and cell(1, 2).max() == 0  # 2 real photos, 1 empty
    assert cell(2, 2).min() == 1  # class 2 generated: white
    with pytest.raises(ValueError, match="no generated images"):
        real_vs_generated_grid(fake[:0], labels_fake[:0], real, labels_real)


@pytest.fixture(scope="module")
def analysed_run(mini_root, mini_cache, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nb_runs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    for k in ("WANDB_MODE", "WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_API_KEY"):
        env.pop(k, None)
    cmd = [sys.executable, "run_experiment.py", "--config", "experiments/tiny.yaml", f"--data.cache={mini_cache}",
           f"--data.root={mini_root}", f"--run.out_dir={out}", "--run.name=nb", "--wandb.mode=offline",
           "--eval.figures=true", "--train.threads=1", "--train.device=cpu"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "nb"


def test_run_writes_figures_and_logs_them_offline(analysed_run):
    figs = analysed_run / "eval" / "figures"
    assert sorted(p.name for p in figs.glob("*.png")) == ["real_vs_generated.png", "tsne_3d.png", "umap_2d.png"]
    with Image.open(figs / "real_vs_generated.png") as im:
        assert im.size == (5 * 66 + 2, 10 * 66 + 2)  # 5 columns; generated + real row for each of 5 test classes
    with Image.open(figs / "tsne_3d.png") as im:
        assert min(im.size) > 300 and len(set(im.convert("L").getdata())) > 10  # a real drawing, not blank
    summary = json.loads((analysed_run / "summary.json").read_text())
    offline = list((analysed_run.parent / "wandb").glob(f"offline-run-*-{summary['tracker_run_id']}"))
    assert len(offline) == 1
    media = [p.relative_to(offline[0] / "files").as_posix() for p in (offline[0] / "files").rglob("*") if p.is_file()]
    for key in ("eval/tsne_3d", "eval/umap_2d", "eval/real_vs_generated"):
        assert any(m.startswith(f"media/images/{key}_") and m.endswith(".png") for m in media), (key, media)
    tables = [m for m in media if m.startswith("media/table/eval/embeddings_")]
    assert len(tables) == 1
    table = json.loads((offline[0] / "files" / tables[0]).read_text())
    n = sum(json.loads((analysed_run / "split.json").read_text())[k] for k in ("n_train", "n_val", "n_test"))
    assert table["columns"] == ["image", "class", "class_name", "test_class", "embedding"] and len(table["data"]) == n
    assert {len(r[4]) for r in table["data"]} == {32}  # tiny.yaml: embed_dim 32


def test_notebook_runs_end_to_end_on_a_tiny_run(analysed_run, tmp_path):
    from analysis.execute import execute_notebook
    nb = execute_notebook(timeout=600, env={"ANALYSIS_SOURCE": str(analysed_run)})  # raises on any cell error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") + json.dumps(o.get("data", {})) for o in outputs)
    assert "nb" in text and "generator / encoder" in text
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 5  # curves, sample grid, test-class grid, t-SNE, UMAP, own caption
    assert (REPO / "analysis.ipynb").stat().st_size < 5_000_000
