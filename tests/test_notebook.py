"""The end-of-run figures (files + offline W&B) and `analysis.ipynb`, executed end to end on a tiny real run.

The notebook is executed top to bottom (nbclient, this Python as the kernel) as on a fresh runtime: with no run
to analyse it trains one first (experiments/tiny.yaml on the committed fixture, offline W&B, figures on), then
analyses it; that run's `eval/figures/` and offline W&B media are checked too.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.figures import real_vs_generated_grid

REPO = Path(__file__).resolve().parents[1]


def test_real_vs_generated_grid_layout():
    from data_utils.classes import class_name
    fake = np.zeros((6, 8, 8, 3), np.uint8)
    fake[:3] = 255  # class 2: white fakes; class 1: black fakes
    labels_fake = np.array([2, 2, 2, 1, 1, 1])
    real = np.full((4, 8, 8, 3), 128, np.uint8)
    labels_real = np.array([1, 1, 2, 2])
    rows, labels = real_vs_generated_grid(fake, labels_fake, real, labels_real, per_class=3)
    assert rows.shape == (4, 3, 3, 8, 8)  # 2 classes x (generated row, real row), 3 columns
    assert rows[0].max() == 0  # class 1 (sorted first): generated row is black
    assert abs(float(rows[1, 0].mean()) - 128 / 255) < 1e-6 and rows[1, 2].max() == 0  # 2 real photos, 1 empty
    assert rows[2].min() == 1  # class 2 generated: white
    assert labels == [f"{class_name(1)}:\ngenerated from captions", f"{class_name(1)}:\nreal photos",
                      f"{class_name(2)}:\ngenerated from captions", f"{class_name(2)}:\nreal photos"]
    with pytest.raises(ValueError, match="no generated images"):
        real_vs_generated_grid(fake[:0], labels_fake[:0], real, labels_real)


def _dark(im: Image.Image, box: tuple[int, int, int, int]) -> int:
    """How many pixels of `box` are dark (text on the white paper)."""
    return sum(v < 100 for v in im.convert("L").crop(box).getdata())


def test_captioned_grid_puts_the_text_beside_its_row(tmp_path):
    from PIL import ImageFont
    from core.pictures import FONT_SIZE, LINE, captioned_grid, save_picture, wrap
    font = ImageFont.load_default(size=FONT_SIZE)
    lines = wrap("a flower with thin white petals and a yellow centre " * 3, 120, font)
    assert 1 < len(lines) <= 3 and lines[-1].endswith("...") and all(font.getlength(t) <= 120 for t in lines)
    assert wrap("first line\nsecond", 500, font) == ["first line", "second"]
    assert len(wrap("word " * 10_000, 100, font)) == 3  # a huge caption stays three lines
    images = torch.full((2, 3, 3, 32, 32), -1.0)  # black cells on white paper
    plain = captioned_grid(images)
    assert plain.size == (3 * 32 + 4 * 2, 2 * (32 + 2) + 2)  # no text: the grid alone, 2 px padding
    pic = captioned_grid(images, captions=["red petals", "blue petals"], labels=["seen", "unseen"], label_width=60)
    w, h = pic.size
    row = 32 + 2 + LINE + 4  # a row of cells, then its one-line caption
    assert w == 60 + 2 + 3 * 32 + 4 * 2 and h == 2 + 2 * row
    assert _dark(pic, (0, 2, 58, 34)) > 5 and _dark(pic, (0, 2 + row, 58, 34 + row)) > 5  # the labels
    assert _dark(pic, (64, 35, w, 34 + LINE)) > 5  # the caption under the first row, on white
    assert _dark(plain, (0, 35, plain.size[0], 36)) == 0  # between the rows of the plain grid: paper only
    path = save_picture(pic, tmp_path / "grid.png")
    with Image.open(path) as im:
        assert im.size == (w, h)


@pytest.fixture(scope="module")
def notebook_run(mini_root, mini_cache, tmp_path_factory):
    """The notebook executed top to bottom as on a fresh Colab runtime: ANALYSIS_SOURCE is an empty folder, so
    its 1.3 trains a run first (here experiments/tiny.yaml on the fixture, offline W&B, figures on: the
    ANALYSIS_TRAIN_* variables) and analyses it. Returns (executed notebook, the run folder it trained)."""
    from analysis.execute import execute_notebook
    out = tmp_path_factory.mktemp("nb_runs")
    flags = [f"--data.cache={mini_cache}", f"--data.root={mini_root}", "--run.name=nb", "--wandb.mode=offline",
             "--eval.figures=true", "--train.threads=1", "--train.device=cpu"]
    env = {"OMP_NUM_THREADS": "1", "WANDB_SILENT": "true", "ANALYSIS_SOURCE": str(out),
           "ANALYSIS_TRAIN_CONFIG": "experiments/tiny.yaml", "ANALYSIS_TRAIN_ARGS": " ".join(flags)}
    for k in ("WANDB_MODE", "WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_API_KEY"):
        env[k] = None  # removed: the run's own W&B flags decide
    nb = execute_notebook(timeout=900, env=env)  # raises on any cell error
    return nb, out / "nb"


@pytest.fixture(scope="module")
def analysed_run(notebook_run) -> Path:
    return notebook_run[1]


def test_run_writes_figures_and_logs_them_offline(analysed_run):
    figs = analysed_run / "eval" / "figures"
    assert sorted(p.name for p in figs.glob("*.png")) == ["real_vs_generated.png", "tsne_3d.png", "umap_2d.png"]
    with Image.open(figs / "real_vs_generated.png") as im:  # 5 columns beside the row labels; 2 rows per class
        assert im.size[0] == 150 + 2 + 5 * 66 + 2 and im.size[1] > 10 * 66
        assert _dark(im, (0, 30, 150, im.size[1])) > 100  # the labels: the class and which row is real
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


def test_notebook_run_all_trains_a_run_when_there_is_none_and_completes(notebook_run):
    nb, run_dir = notebook_run
    assert (run_dir / "summary.json").is_file() and (run_dir / "eval" / "metrics.json").is_file()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") + json.dumps(o.get("data", {})) for o in outputs)
    assert "no finished run to analyse" in text and "experiments/tiny.yaml" in text  # 1.3 said it trains
    assert "[gan] epoch" in text  # and streamed the run's log
    assert "nb" in text and "generator / encoder" in text
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 5  # curves, sample grid, test-class grid, t-SNE, UMAP, own caption
    assert (REPO / "analysis.ipynb").stat().st_size < 5_000_000


def test_colab_install_keeps_a_cuda_torch_and_installs_the_rest():
    from analysis.colab import requirement_name, requirements_to_install
    lines = (REPO / "requirements.txt").read_text().splitlines()
    assert requirement_name("torch==2.14.1  # pinned") == "torch"
    assert requirement_name("import-linter>=2.1") == "import-linter" and requirement_name("  # x") is None
    everything = requirements_to_install(lines, keep_torch=False)
    kept = requirements_to_install(lines, keep_torch=True)
    assert "torch==2.14.1" in everything and "torchvision==0.29.1" in everything
    assert {requirement_name(s) for s in everything} - {requirement_name(s) for s in kept} == {"torch", "torchvision"}
    assert "h5py>=3.10" in kept and not [s for s in kept if "#" in s or not s]


def test_colab_trains_only_into_a_local_folder(tmp_path, monkeypatch):
    from analysis.colab import can_train_into
    monkeypatch.chdir(tmp_path)
    (tmp_path / "summary.json").write_text("{}")
    assert can_train_into(tmp_path) and can_train_into("runs") and can_train_into("runs/mine")
    assert not can_train_into("nobody/flower-t2i-gan/abc123")  # a W&B sweep path: downloaded, never trained into
    assert not can_train_into(tmp_path / "summary.json")  # a file


def test_hero_figure_of_a_run(analysed_run, tmp_path):
    import subprocess
    import sys
    out = tmp_path / "assets" / "hero.png"
    proc = subprocess.run([sys.executable, "-m", "analysis.hero", str(analysed_run), "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Image.open(out) as im:
        assert im.size[0] > im.size[1] > 300 and len(set(im.convert("L").getdata())) > 50  # two 5 x 5 panels
    bad = subprocess.run([sys.executable, "-m", "analysis.hero", str(tmp_path / "nowhere")], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nowhere" in bad.stderr
