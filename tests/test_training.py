"""Tiers 4-5: real training runs on the committed fixture (tiny networks, CPU, a few seconds each).

End-to-end runs go through `run_experiment.py` in a subprocess (exit codes, signals, files on disk);
trainer-level properties (determinism, exact resume, the NaN guard, validation) use `Trainer` in-process.
BLAS/OpenMP pools are pinned to one thread: on a shared 2-core machine a second spinning BLAS thread
slows the evaluation's logistic-regression probe by ~50x.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from threadpoolctl import threadpool_limits

from core.io import load_checkpoint
from core.config import ConfigError, build_config, from_dict
from training.trainer import NonFiniteLoss, Trainer
from training.validation import validate

REPO = Path(__file__).resolve().parents[1]
TINY = "experiments/tiny.yaml"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ---------------------------------------------------------------- helpers
def _env() -> dict:
    env = {**os.environ, **ONE_THREAD, "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}
    env.pop("WANDB_DIR", None)
    env.pop("WANDB_DATA_DIR", None)
    return env


def _common(mini_root: Path, mini_cache: Path, out_dir: Path) -> list[str]:
    return [f"--data.cache={mini_cache}", f"--data.root={mini_root}", f"--run.out_dir={out_dir}",
            "--wandb.mode=disabled", "--train.threads=1", "--train.device=cpu"]


def run_cli(args: list[str], timeout: float = 120, module: str | None = None,
            env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess:
    """`env`: variables to set (a value) or remove (None) on top of _env()."""
    cmd = [sys.executable, *(["-m", module] if module else ["run_experiment.py"]), *args]
    full = _env()
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    return subprocess.run(cmd, cwd=REPO, env=full, capture_output=True, text=True, timeout=timeout)


def one_line(stderr: str) -> str:
    """The only non-empty line of `stderr` (a user error is reported in one line, without a traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def read_stats(run_dir: Path) -> list[dict]:
    lines = (run_dir / "stats.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def dark_pixels(im: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Dark pixels in `box` of a picture (text on its white paper)."""
    return sum(v < 100 for v in im.convert("L").crop(box).getdata())


def loss_rows(rows: list[dict]) -> list[dict]:
    """Everything but wall-clock times."""
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def step_numbers(rows: list[dict]) -> list[int]:
    """`step` of the per-step rows (the ones carrying losses), in file order."""
    return [r["step"] for r in rows if any(k.startswith(("enc/", "gan/")) for k in r)]


def all_finite(ckpt: dict) -> bool:
    sds = [*ckpt["networks"].values(), ckpt["g_ema"]]
    return all(torch.isfinite(v).all() for sd in sds for v in sd.values() if v.is_floating_point())


@pytest.fixture
def one_thread():
    """In-process runs: one torch thread and one BLAS thread, restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)


def tiny_cfg(mini_cache: Path, **overrides):
    o = {"data.cache": str(mini_cache), "wandb.mode": "disabled", "train.device": "cpu", "train.threads": 1}
    o.update(overrides)
    return build_config(str(REPO / TINY), o)


def make_trainer(cfg, run_dir: Path, log=lambda *a, **k: None, resume=None) -> Trainer:
    from data_utils.dataset import load_data
    from data_utils.text import Vocab
    run_dir.mkdir(parents=True, exist_ok=True)
    data = load_data(cfg.data, vocab=Vocab(resume["vocab"]) if resume else None)
    return Trainer(cfg, data, run_dir, torch.device("cpu"), resume=resume, log=log)


# ---------------------------------------------------------------- end to end: the tiny experiment
@pytest.fixture(scope="module")
def smoke_run(mini_root, mini_cache, tmp_path_factory):
    """`run_experiment.py --config experiments/tiny.yaml` as is (1 encoder + 2 GAN epochs)."""
    out = tmp_path_factory.mktemp("runs")
    t0 = time.time()
    proc = run_cli(["--config", TINY, *_common(mini_root, mini_cache, out), "--run.name=smoke"])
    (out / "smoke.stdout").write_text(proc.stdout)
    (out / "smoke.stderr").write_text(proc.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = out / "smoke"
    assert proc.stdout.strip().splitlines()[-1] == str(run_dir)  # the last line names the run directory
    return run_dir, time.time() - t0


def test_smoke_run_directory(smoke_run):
    run_dir, _ = smoke_run
    for rel in ("config.yaml", "split.json", "meta.json", "stats.jsonl", "summary.json",
                "checkpoints/best.pt", "checkpoints/last.pt", "eval/metrics.json", "eval/embeddings.npz",
                "eval/samples.npz", "curves.png", "eval/figures/real_vs_generated.png"):
        assert (run_dir / rel).is_file(), rel
    cfg = from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))  # the resolved config round-trips
    assert (cfg.model.enc_width, cfg.train.gan_epochs, cfg.train.threads, cfg.wandb.mode) == (12, 2, 1, "disabled")
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["device"] == "cpu" and meta["threads"] == 1 and meta["torch"] == torch.__version__
    split = json.loads((run_dir / "split.json").read_text())
    assert len(split["train_classes"]) == 20 and len(split["test_classes"]) == 5
    assert not set(split["train_classes"]) & set(split["test_classes"])

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["epochs"] == cfg.train.encoder_epochs + cfg.train.gan_epochs == 3
    steps_per_epoch = split["n_train"] // cfg.train.batch_size
    assert summary["steps"] == 3 * steps_per_epoch
    assert summary["images_seen"] == summary["steps"] * cfg.train.batch_size
    assert Path(summary["best_checkpoint"]) == run_dir / "checkpoints" / "best.pt"
    assert summary["best_epoch"] in (2, 3) and math.isfinite(summary["best_val_kid"])
    assert summary["eval/judge_test_all"] is None  # tiny.yaml: eval.judge=false (test_evaluate scores the judge)
    assert isinstance(summary["eval/kid"], float) and isinstance(summary["eval/caption_colour"], float)
    judged = json.loads((run_dir / "eval" / "metrics.json").read_text())["generation"]["recognised_by_judge"]
    assert judged == {"unavailable": "skipped (eval.judge=false)"}

    rows = read_stats(run_dir)
    assert rows and all("images_seen" in r and "stage" in r and "epoch" in r for r in rows)
    assert {r["stage"] for r in rows} == {"encoder", "gan"}
    assert step_numbers(rows) == list(range(1, summary["steps"] + 1))  # log_every=1: every step logged once
    seen = [r["images_seen"] for r in rows]
    assert seen == sorted(seen) and seen[-1] == summary["images_seen"]
    gan_epoch_rows = [r for r in rows if r["stage"] == "gan" and "val/kid" in r]
    assert [r["epoch"] for r in gan_epoch_rows] == [2, 3]
    assert all(math.isfinite(r["val/image_text_loss"]) for r in gan_epoch_rows)

    pngs = sorted((run_dir / "samples").glob("*.png"))
    assert [p.name for p in pngs] == ["epoch_002.png", "epoch_003.png"]  # the GAN epochs
    with Image.open(pngs[-1]) as im:  # 8 fixed captions x 8 noises, 2 px padding, each caption under its row
        assert im.size[0] == 8 * 64 + 9 * 2 and im.size[1] >= 8 * (64 + 2 + 14) + 2
        assert dark_pixels(im, (2, 67, im.size[0], 80)) > 50  # text under the first row, where the grid had none
    with Image.open(run_dir / "curves.png") as im:  # losses and validation against images seen, phases marked
        assert min(im.size) > 600 and len(set(im.convert("L").getdata())) > 10

    last, best = load_checkpoint(run_dir / "checkpoints" / "last.pt"), load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert last["state"]["stage"] == "done" and last["state"]["epoch"] == 3
    assert best["state"]["epoch"] == summary["best_epoch"]
    assert all_finite(last) and all_finite(best)


def test_smoke_eval_files(smoke_run):
    run_dir, _ = smoke_run
    split = json.loads((run_dir / "split.json").read_text())
    cfg = from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    params = metrics["params"]
    assert set(params) == {"text_encoder", "encoder", "generator", "discriminator"}
    assert params["generator"] == pytest.approx(0.5 * params["encoder"], rel=0.01)
    assert [r["network"] for r in metrics["param_table"]] == list(params)
    trainable = {r["network"]: r["trainable_params"] for r in metrics["param_table"]}  # in the GAN-only epochs
    assert trainable["text_encoder"] == trainable["encoder"] == 0 and trainable["generator"] == params["generator"]
    assert metrics["split"] == split
    assert metrics["generation"]["n_generated"] == 5 * cfg.eval.captions_per_test_class * cfg.eval.samples_per_caption

    with np.load(run_dir / "eval" / "embeddings.npz") as z:
        feats, labels, is_test, names = z["features"], z["labels"], z["is_test_class"], z["image_names"]
    n = split["n_train"] + split["n_val"] + split["n_test"]
    assert feats.shape == (n, cfg.model.embed_dim) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-4)  # the encoder's unit-norm representation
    assert labels.shape == (n,) and labels.min() >= 1 and labels.max() <= 102
    assert set(labels.tolist()) == set(split["train_classes"]) | set(split["test_classes"])
    assert is_test.dtype == bool and set(is_test.tolist()) == {True, False}
    assert is_test.sum() == split["n_test"]
    assert np.array_equal(is_test, np.isin(labels, split["test_classes"]))
    assert names.shape == (n,) and len(set(names.tolist())) == n
    assert all(str(s).startswith("image_") for s in names)

    with np.load(run_dir / "eval" / "samples.npz") as z:
        images, s_labels, captions = z["images"], z["labels"], z["captions"]
    per_class = cfg.eval.captions_per_test_class * cfg.eval.samples_per_caption  # 3 x 2; each test class has 3 images
    m = per_class * len(split["test_classes"])
    assert images.shape == (m, 64, 64, 3) and images.dtype == np.uint8
    assert images.std() > 0
    assert s_labels.shape == (m,) and set(s_labels.tolist()) <= set(split["test_classes"])
    assert {c: int((s_labels == c).sum()) for c in split["test_classes"]} == {c: per_class for c in split["test_classes"]}
    assert captions.shape == (m,) and all(isinstance(c, str) and len(c.split()) >= 2 for c in captions.tolist())
    # samples_per_caption consecutive samples share one caption
    k = cfg.eval.samples_per_caption
    assert all(len(set(captions[i:i + k].tolist())) == 1 for i in range(0, m, k))


def test_dry_run_prints_yaml_and_creates_nothing(tmp_path):
    out = tmp_path / "runs"
    proc = run_cli(["--config", TINY, "--dry-run", f"--run.out_dir={out}", "--train.gan_epochs=7"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["model"]["enc_width"] == 12 and cfg["train"]["gan_epochs"] == 7
    assert cfg["run"]["out_dir"] == str(out)
    assert set(cfg) == {"data", "model", "train", "eval", "wandb", "run"}
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("arg, key", [("--train.nope=1", "train.nope"), ("--data.seed=abc", "data.seed"),
                                      ("--nope.x=1", "nope.x")])
def test_bad_override_exits_2_naming_the_key(arg, key, tmp_path):
    proc = run_cli(["--config", TINY, arg, f"--run.out_dir={tmp_path / 'runs'}"], timeout=60)
    assert proc.returncode == 2
    assert f"'{key}'" in proc.stderr and "config error" in proc.stderr
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- user errors: one line, exit 2, no run folder left
@pytest.mark.parametrize("damage", ["truncated", "not hdf5"])
def test_corrupt_cache_is_one_line_and_removes_only_the_folder_it_made(damage, mini_cache, tmp_path):
    bad = tmp_path / "flowers.h5"
    whole = mini_cache.read_bytes()
    bad.write_bytes(whole[:len(whole) // 2] if damage == "truncated" else b"not an HDF5 file\n" * 64)
    out = tmp_path / "runs"
    args = ["--config", TINY, f"--data.cache={bad}", f"--run.out_dir={out}", "--wandb.mode=disabled",
            "--train.threads=1", "--train.device=cpu"]  # no data.root: the cache is used as it is
    proc = run_cli([*args, "--run.name=c"], env={"OXFORD102_DIR": None})
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert line.startswith(f"error: {bad}: not a readable HDF5 cache") and "python -m data_utils.prepare --force" in line
    assert out.is_dir() and not (out / "c").exists()  # the run folder it had made is removed
    mine = out / "mine"  # a folder that existed before the run is never removed
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    proc = run_cli([*args, "--run.name=mine"], env={"OXFORD102_DIR": None})
    assert proc.returncode == 2 and "not a readable HDF5 cache" in one_line(proc.stderr)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_online_without_credentials_is_one_line_exit_2(mini_root, mini_cache, tmp_path):
    out = tmp_path / "runs"
    no_login = {"HOME": str(tmp_path), "WANDB_API_KEY": None, "WANDB_IDENTITY_TOKEN_FILE": None, "NETRC": None,
                "WANDB_CONFIG_DIR": None, "WANDB_BASE_URL": None}
    proc = run_cli(["--config", TINY, *_common(mini_root, mini_cache, out), "--run.name=w", "--wandb.mode=online"],
                   env=no_login)
    assert proc.returncode == 2
    assert one_line(proc.stderr).startswith("error: --wandb.mode=online needs W&B credentials")
    assert not (out / "w").exists()


def test_existing_run_name_is_one_line_exit_2_and_keeps_that_run(smoke_run, mini_root, mini_cache):
    run_dir, _ = smoke_run
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    proc = run_cli(["--config", TINY, *_common(mini_root, mini_cache, run_dir.parent), "--run.name=smoke"])
    assert proc.returncode == 2
    assert one_line(proc.stderr) == (f"error: {run_dir} already holds a run; pick another --run.name or use "
                                     "--run.resume")
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before


@pytest.mark.parametrize("n", [0, -3])
def test_generate_needs_at_least_one_image_per_caption(n, smoke_run, tmp_path, capsys):
    from app.generate import main
    from models.inference import generate_captions
    run_dir, _ = smoke_run
    out = tmp_path / "x.png"
    assert main(["--checkpoint", str(run_dir), "--caption", "pink petals with a yellow center", "-n", str(n),
                 "--out", str(out)]) == 2
    assert one_line(capsys.readouterr().err) == f"error: -n must be at least 1 (images per caption), got {n}"
    assert not out.exists()
    with pytest.raises(ValueError, match=f"n must be at least 1 .*got {n}"):
        generate_captions(run_dir, ["pink petals with a yellow center"], n=n)


# ---------------------------------------------------------------- the checkpoint rebuilds the models
def test_load_models_and_generate_captions(smoke_run, one_thread):
    from models.inference import generate_captions, load_models
    run_dir, _ = smoke_run
    best = run_dir / "checkpoints" / "best.pt"
    nets, vocab, cfg, ckpt = load_models(best)
    assert cfg.model.enc_width == 12 and len(vocab) == ckpt["split"]["vocab_size"]
    for name, m in nets.items():
        assert not m.training, name
    g_sd = nets.generator.state_dict()
    assert all(torch.equal(g_sd[k], v) for k, v in ckpt["g_ema"].items())  # samples come from the EMA weights
    caps = ["this flower has large pink petals with a yellow center", "a purple flower with long thin petals"]
    imgs = generate_captions(best, caps, n=3, seed=5)
    assert imgs.shape == (2, 3, 3, 64, 64)
    assert imgs.min() >= -1 and imgs.max() <= 1 and torch.isfinite(imgs).all()
    assert torch.equal(imgs, generate_captions(best, caps, n=3, seed=5))  # seeded: reproducible
    assert not torch.equal(imgs, generate_captions(best, caps, n=3, seed=6))
    assert not torch.allclose(imgs[0], imgs[1])  # the caption changes the images
    with pytest.raises(ValueError, match="fewer than 2 words"):
        generate_captions(best, ["rose", caps[0]], n=1)


def test_generate_from_tokens_with_given_representations(smoke_run, one_thread):
    from models.inference import generate_from_tokens, load_models
    nets, vocab, cfg, _ = load_models(smoke_run[0] / "checkpoints" / "best.pt")
    tokens, lengths = vocab.encode(["pink petals with a yellow center", "a white flower with thin petals"],
                                   cfg.data.max_caption_len)
    z = torch.randn(2, 3, cfg.model.noise_dim, generator=torch.Generator().manual_seed(0))
    rep = torch.nn.functional.normalize(torch.randn(2, cfg.model.embed_dim), dim=1)
    out = generate_from_tokens(nets.text_encoder, nets.generator, tokens, lengths, z, "cpu", True, rep=rep)
    with torch.no_grad():
        c = nets.generator.condition(nets.text_encoder(tokens, lengths))[1]
        expect = nets.generator.synthesize(z.flatten(0, 1), c.repeat_interleave(3, 0), rep.repeat_interleave(3, 0))
    assert torch.allclose(out.flatten(0, 1), expect, atol=1e-5)  # rep replaces the prior's guess, caption by caption
    prior = generate_from_tokens(nets.text_encoder, nets.generator, tokens, lengths, z, "cpu", True)
    assert not torch.allclose(out, prior)


def test_generate_captions_truncation(smoke_run, one_thread):
    from models.inference import generate_captions
    best = smoke_run[0] / "checkpoints" / "best.pt"
    caps = ["this flower has large pink petals with a yellow center"]
    full = generate_captions(best, caps, n=3, seed=5)
    assert torch.equal(full, generate_captions(best, caps, n=3, seed=5, truncation=1.0))  # the run's default is 1
    zero = generate_captions(best, caps, n=3, seed=5, truncation=0.0)  # no noise: one image per caption
    assert torch.allclose(zero[0, 0], zero[0, 1]) and torch.allclose(zero[0, 0], zero[0, 2])
    half = generate_captions(best, caps, n=3, seed=5, truncation=0.5)
    assert not torch.allclose(half[0, 0], half[0, 1])  # still varied, and not the untruncated images
    assert not torch.allclose(half, full) and not torch.allclose(half, zero)
    with pytest.raises(ValueError, match=r"truncation must be in \[0, 1\], got 1.5"):
        generate_captions(best, caps, n=1, truncation=1.5)


def test_generate_cli_writes_png(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    out = tmp_path / "grid.png"
    proc = run_cli(["--checkpoint", str(run_dir), "--caption", "pink petals with a yellow center",
                    "--caption", "white flower with many small petals", "-n", "3", "--out", str(out)],
                   module="app.generate", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1] == str(out)
    with Image.open(out) as im:  # 3 columns (noises) x 2 rows (captions), each caption under its row
        assert im.size[0] == 3 * 64 + 4 * 2 and im.size[1] >= 2 * (64 + 2 + 14) + 2
        assert dark_pixels(im, (2, 67, im.size[0], 80)) > 30 and dark_pixels(im, (2, 147, im.size[0], 160)) > 30


def test_generate_from_a_photo_uses_its_representation(smoke_run, mini_root, tmp_path, capsys, one_thread):
    """--photo FILE: the generator gets E(photo) instead of the text prior's guess (the second test-time route):
    the images differ from the caption-only ones and from another photo's, and equal generate_from_tokens given
    that representation; a file that is not an image is one error line, exit 2, nothing written."""
    from app.generate import main
    from models.inference import embed_images, generate_captions, generate_from_tokens, load_models, read_photo
    from models.inference import sample_noise
    run_dir, _ = smoke_run
    photos = sorted((mini_root / "jpg").glob("*.jpg"))[:2]
    cap = ["pink petals with a yellow center"]
    text_only = generate_captions(run_dir, cap, n=2, seed=3)
    a, b = (generate_captions(run_dir, cap, n=2, seed=3, photo=p) for p in photos)
    assert a.shape == text_only.shape == (1, 2, 3, 64, 64)
    assert not torch.allclose(a, text_only) and not torch.allclose(a, b)
    nets, vocab, cfg, _ = load_models(run_dir)
    r = torch.from_numpy(embed_images(nets.encoder, read_photo(photos[0])[None], cfg.data.image_size, "cpu"))
    tokens, lengths = vocab.encode(cap, cfg.data.max_caption_len)
    z = sample_noise(2, cfg.model.noise_dim, seed=3, truncation=cfg.eval.truncation)
    assert torch.allclose(a, generate_from_tokens(nets.text_encoder, nets.generator, tokens, lengths, z, "cpu",
                                                  rep=r), atol=1e-6)
    out = tmp_path / "photo.png"
    assert main(["--checkpoint", str(run_dir), "--caption", cap[0], "-n", "2", "--photo", str(photos[0]),
                 "--out", str(out)]) == 0 and out.is_file()
    bad = tmp_path / "not-a-photo.jpg"
    bad.write_text("hello")
    capsys.readouterr()
    assert main(["--checkpoint", str(run_dir), "--caption", cap[0], "--photo", str(bad),
                 "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and str(bad) in err and "\n" not in err and not (tmp_path / "x.png").exists()


def test_generate_cli_one_word_caption_exits_2(smoke_run, tmp_path, capsys, one_thread):
    from app.generate import main
    run_dir, _ = smoke_run
    out = tmp_path / "x.png"
    assert main(["--checkpoint", str(run_dir), "--caption", "tulip", "-n", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "fewer than 2 words" in err and "tulip" in err
    assert not out.exists()


def test_generate_names_unknown_and_cut_words_and_refuses_unreadable_captions(smoke_run, tmp_path, capsys,
                                                                               one_thread):
    from app.generate import main
    from models.inference import generate_captions, load_models
    run_dir, _ = smoke_run
    best = run_dir / "checkpoints" / "best.pt"
    _, vocab, cfg, _ = load_models(best)
    known = [w for w in vocab.itos[2:] if w.isalpha()][:2]
    lines = []
    long = " ".join([known[0]] * (cfg.data.max_caption_len + 3))
    imgs = generate_captions(best, [f"{known[0]} qqzzx {known[1]}", long], n=1, log=lines.append)
    assert imgs.shape[:2] == (2, 1)
    assert len(lines) == 2 and "caption 0" in lines[0] and "read as <unk>: qqzzx" in lines[0]
    assert "caption 1" in lines[1] and f"first {cfg.data.max_caption_len} of {cfg.data.max_caption_len + 3} words" \
        in lines[1]
    with pytest.raises(ValueError, match=r"no word of caption\(s\) \['qqzzx wwvvk'\] is in the run's vocabulary"):
        generate_captions(best, [f"{known[0]} {known[1]}", "qqzzx wwvvk"], n=1)
    out = tmp_path / "x.png"
    assert main(["--checkpoint", str(run_dir), "--caption", "qqzzx wwvvk", "-n", "2", "--out", str(out)]) == 2
    assert "no word of caption" in capsys.readouterr().err and not out.exists()
    assert main(["--checkpoint", str(run_dir), "--caption", f"{known[0]} qqzzx", "-n", "2", "--out", str(out)]) == 0
    assert "read as <unk>: qqzzx" in capsys.readouterr().out and out.is_file()


def test_spectrum_cli_on_a_run(smoke_run, capsys, one_thread, tmp_path):
    from app.spectrum import main
    from evaluation.spectrum import gradient_spectra
    from metrics.spectrum import PERIODS
    run_dir, _ = smoke_run
    spectra = gradient_spectra(run_dir / "checkpoints" / "best.pt", n_images=8)
    assert list(spectra) == ["adversarial", "adversarial, DiffAugment", "distillation", "generated images",
                             "real images"]
    for name, row in spectra.items():
        assert list(row) == list(PERIODS) and all(v > 0 and math.isfinite(v) for pair in row.values() for v in pair)
    assert spectra["adversarial"] != spectra["distillation"]
    out = tmp_path / "spectrum.png"
    assert main(["--run", str(run_dir), "--images", "8", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines.pop() == str(out)  # the picture of the spectra, named last
    with Image.open(out) as im:
        assert im.size[0] > 600 and len(set(im.convert("L").getdata())) > 10
    assert len(lines) == 2 + len(spectra) + 1 + 5 and lines[1 + len(spectra)].startswith("real images")
    assert lines[2 + len(spectra)].startswith("2-px upsampling-grid contrast")
    assert [line.split()[0] for line in lines[-5:]] == ["adversarial", "adversarial,", "distillation", "white",
                                                       "smoothed"]
    assert main(["--run", str(run_dir), "--out", str(tmp_path / "spectrum.txt")]) == 2
    assert "--out" in capsys.readouterr().err and not (tmp_path / "spectrum.txt").exists()
    assert main(["--run", str(run_dir / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert str(run_dir / "nowhere") in err and "not found" in err


# ---------------------------------------------------------------- SIGTERM, then resume
@pytest.mark.parametrize("phase", ["encoder", "gan"])
def test_sigterm_saves_resumable_checkpoint_and_resume_finishes(phase, mini_root, mini_cache, tmp_path):
    """SIGTERM in either phase saves a resumable last.pt in that phase; the resumed run finishes every step."""
    out = tmp_path / "runs"
    run_dir = out / "term"
    log = tmp_path / "term.log"
    enc_epochs, gan_epochs = (20, 1) if phase == "encoder" else (1, 20)
    cmd = [sys.executable, "run_experiment.py", "--config", TINY, *_common(mini_root, mini_cache, out),
           "--run.name=term", f"--train.encoder_epochs={enc_epochs}", f"--train.gan_epochs={gan_epochs}",
           "--train.eval_every=100"]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=f, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 90
            while time.time() < deadline and proc.poll() is None:
                if (run_dir / "checkpoints" / "last.pt").is_file() and (run_dir / "stats.jsonl").is_file() \
                        and any(r["stage"] == phase for r in read_stats(run_dir)):
                    break
                time.sleep(0.02)
            assert proc.poll() is None, "the run ended before it could be interrupted:\n" + log.read_text()[-3000:]
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rc == 0, log.read_text()[-3000:]
    assert "received signal" in log.read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert not (run_dir / "eval").exists()  # no evaluation of an unfinished run
    ckpt = load_checkpoint(run_dir)  # a run directory resolves to checkpoints/last.pt
    st = ckpt["state"]
    assert st["stage"] == phase and 1 <= st["epoch"] < 21
    assert st["epoch"] == (0 if phase == "encoder" else 1) + st["stage_epoch"] and summary["epochs"] == st["epoch"]
    assert st["step"] == summary["steps"] == max(step_numbers(read_stats(run_dir)))
    assert all_finite(ckpt)

    proc = run_cli([f"--run.resume={run_dir}"], timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["epochs"] == 1 + 20  # encoder_epochs + gan_epochs, read back from the checkpoint's config
    split = json.loads((run_dir / "split.json").read_text())
    assert summary["steps"] == 21 * (split["n_train"] // 16)
    rows = read_stats(run_dir)
    assert step_numbers(rows) == list(range(1, summary["steps"] + 1))  # no step lost, none repeated
    assert (run_dir / "eval" / "metrics.json").is_file()
    last = load_checkpoint(run_dir)
    assert last["state"]["stage"] == "done" and last["state"]["epoch"] == 21


# ---------------------------------------------------------------- determinism and exact resume (in-process)
@pytest.fixture(scope="module")
def reference_run(mini_cache, tmp_path_factory):
    """The tiny experiment trained in-process once: (config, run_dir, summary)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            cfg = tiny_cfg(mini_cache)
            run_dir = tmp_path_factory.mktemp("reference") / "run"
            summary = make_trainer(cfg, run_dir).fit()
    finally:
        torch.set_num_threads(n)
    return cfg, run_dir, summary


def test_same_seed_same_losses(reference_run, mini_cache, tmp_path, one_thread):
    cfg, ref_dir, ref_summary = reference_run
    assert ref_summary["status"] == "finished" and ref_summary["epochs"] == 3
    again = make_trainer(tiny_cfg(mini_cache), tmp_path / "again")
    assert again.fit()["steps"] == ref_summary["steps"]
    ref = loss_rows(read_stats(ref_dir))
    assert loss_rows(read_stats(tmp_path / "again")) == ref  # bit-identical on CPU
    a, b = load_checkpoint(ref_dir), load_checkpoint(tmp_path / "again")
    assert all(torch.equal(v, b["g_ema"][k]) for k, v in a["g_ema"].items())
    # and the seed matters (so the equality above is not vacuous)
    other = make_trainer(tiny_cfg(mini_cache, **{"train.seed": 1, "train.max_steps": 1}), tmp_path / "other")
    other.fit()
    first = lambda rows: next(r for r in rows if "enc/image_text" in r)  # noqa: E731
    assert first(read_stats(tmp_path / "other"))["enc/image_text"] != first(ref)["enc/image_text"]


def test_max_steps_caps_the_steps(mini_cache, tmp_path, one_thread):
    cfg = tiny_cfg(mini_cache, **{"train.max_steps": 1})
    summary = make_trainer(cfg, tmp_path / "capped").fit()
    full_steps_per_epoch = 2  # 40 training images // batch 16
    assert summary["status"] == "finished" and summary["epochs"] == 3
    assert 2 <= summary["steps"] < 3 * full_steps_per_epoch  # at least one step per stage, fewer than uncapped
    assert step_numbers(read_stats(tmp_path / "capped")) == list(range(1, summary["steps"] + 1))


def test_interrupted_then_resumed_matches_uninterrupted(reference_run, mini_cache, tmp_path, one_thread):
    """Stop requested after the first GAN epoch (the trainer then stops one step into the next epoch, mid-epoch),
    resume from last.pt: the losses of every step and the final weights equal the uninterrupted run's."""
    cfg, ref_dir, ref_summary = reference_run
    run_dir = tmp_path / "split"
    box = {}

    def log(msg, *a, **k):
        if msg.startswith("[gan] epoch 2 "):
            box["trainer"].stop_requested = True

    box["trainer"] = make_trainer(tiny_cfg(mini_cache), run_dir, log=log)
    s = box["trainer"].fit()
    assert s["status"] == "interrupted"
    ckpt = load_checkpoint(run_dir)
    st = ckpt["state"]
    assert (st["stage"], st["epoch"], st["stage_epoch"], st["step_in_epoch"]) == ("gan", 2, 1, 1)
    assert st["perm"] is not None  # the epoch's order is saved for a mid-epoch resume

    resumed = make_trainer(tiny_cfg(mini_cache), run_dir, resume=ckpt)
    assert resumed.state["step"] == st["step"]
    s2 = resumed.fit()
    assert (s2["status"], s2["epochs"], s2["steps"]) == ("finished", ref_summary["epochs"], ref_summary["steps"])
    assert s2["train_seconds"] > st["train_seconds"] > 0  # the resumed run's time adds the first part's
    assert loss_rows(read_stats(run_dir)) == loss_rows(read_stats(ref_dir))
    a, b = load_checkpoint(ref_dir), load_checkpoint(run_dir)
    for name in a["networks"]:
        assert all(torch.equal(v, b["networks"][name][k]) for k, v in a["networks"][name].items()), name


# ---------------------------------------------------------------- NaN guard
def _poison_generator(trainer: Trainer) -> None:
    with torch.no_grad():
        trainer.nets.generator.to_rgb.weight.fill_(float("nan"))


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(mini_cache, tmp_path, one_thread):
    cfg = tiny_cfg(mini_cache)
    run_dir = tmp_path / "nan"
    trainer = make_trainer(cfg, run_dir)
    trainer.run_stage("encoder", cfg.train.encoder_epochs)  # one good stage: checkpoints/last.pt
    last = run_dir / "checkpoints" / "last.pt"
    good_bytes = last.read_bytes()
    _poison_generator(trainer)
    with pytest.raises(NonFiniteLoss, match=r"non-finite gan/\w+ = nan") as err:
        trainer.fit()
    assert "Checkpoints written before this point are kept" in str(err.value)
    assert last.read_bytes() == good_bytes  # nothing written after the NaN
    assert not (run_dir / "checkpoints" / "best.pt").exists()
    ckpt = load_checkpoint(last)
    assert all_finite(ckpt) and (ckpt["state"]["stage"], ckpt["state"]["epoch"]) == ("encoder", 1)


def test_nan_guard_with_max_steps_and_sparse_logging(mini_cache, tmp_path, one_thread):
    cfg = tiny_cfg(mini_cache, **{"train.max_steps": 1, "train.log_every": 100, "train.eval_every": 100})
    run_dir = tmp_path / "nan_capped"
    trainer = make_trainer(cfg, run_dir)
    trainer.run_stage("encoder", cfg.train.encoder_epochs)
    _poison_generator(trainer)
    try:
        with pytest.raises(NonFiniteLoss):
            trainer.fit()
    finally:
        assert all_finite(load_checkpoint(run_dir / "checkpoints" / "last.pt"))


def test_run_reports_failed_status_on_nan(mini_root, mini_cache, tmp_path, monkeypatch, one_thread):
    """An absurd encoder learning rate overflows the weights at step 1: the run ends with status failed, exit 1."""
    import run_experiment
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_SILENT"):  # the tracker sets these; keep them per-test
        monkeypatch.setenv(var, str(tmp_path / "wandb") if var != "WANDB_SILENT" else "true")
    out = tmp_path / "runs"
    rc = run_experiment.main(["--config", str(REPO / TINY), *_common(mini_root, mini_cache, out),
                              "--run.name=bad", "--train.lr_encoder=1e30"])
    assert rc == 1
    summary = json.loads((out / "bad" / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["error"].startswith("non-finite enc/") and "= nan" in summary["error"]
    assert not (out / "bad" / "eval").exists()


# ---------------------------------------------------------------- validation
def test_validate_metrics_per_stage(mini_cache, tmp_path, one_thread):
    cfg = tiny_cfg(mini_cache)
    trainer = make_trainer(cfg, tmp_path / "val")
    enc_val = validate(trainer, trainer.g_ema)
    # stage 1: no generator metrics yet, but the label-free encoder's kNN monitor
    assert set(enc_val) == {"val/image_text_loss", "monitor/knn_all", "monitor/knn_test"}
    assert all(0 <= enc_val[k] <= 1 for k in ("monitor/knn_all", "monitor/knn_test"))
    assert math.isfinite(enc_val["val/image_text_loss"]) and enc_val["val/image_text_loss"] > 0
    trainer.run_stage("encoder", cfg.train.encoder_epochs)
    trainer.state.update(stage="gan", stage_epoch=0)
    trainer.nets.text_encoder.train(), trainer.nets.encoder.eval()
    out = validate(trainer, trainer.g_ema)
    assert {"val/kid", "val/image_text_loss", "val/distill", "val/grid_contrast"} <= set(out)
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    assert 0 <= out["val/distill"] <= 2  # a cosine distance
    assert out["val/grid_contrast"] > 0  # a ratio of mean absolute differences
    assert out["val/image_text_loss"] != enc_val["val/image_text_loss"]  # stage 1 trained the encoders
    assert trainer.nets.text_encoder.training and not trainer.nets.encoder.training  # modes restored
    again = validate(trainer, trainer.g_ema)
    assert again == out  # fixed noise and seeded KID subsets: validation is repeatable


# ---------------------------------------------------------------- mixed precision / memory layout
@pytest.mark.parametrize("amp,channels_last", [("bf16", True), ("fp16", False)])
def test_mixed_precision_steps_train(amp, channels_last, mini_cache, tmp_path, one_thread):
    cfg = tiny_cfg(mini_cache, **{"train.amp": amp, "train.channels_last": channels_last, "train.r1_every": 1})
    trainer = make_trainer(cfg, tmp_path / amp)
    idx = torch.arange(trainer.encoder.bs)
    state = lambda: {f"{n}.{k}": v.clone() for n, m in trainer.nets.items() for k, v in m.state_dict().items()}  # noqa: E731
    before = state()
    for _ in range(2 if amp == "bf16" else 8):  # fp16: the scalers skip the first steps while finding a scale
        enc = trainer.encoder.step(idx)
        gan = trainer.gan.step(idx)
    assert all(math.isfinite(float(v.detach())) for v in [*enc.values(), *gan.values()])
    assert "gan/r1" in gan  # the float32 double backward ran beside the autocast passes
    after = state()
    for net in ("encoder.", "generator.", "discriminator.", "text_encoder."):
        assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith(net)), net
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())


def test_bad_amp_value_is_rejected(mini_cache, tmp_path):
    with pytest.raises(ConfigError, match="config key 'train.amp' must be one of off, .*got 'fp8'"):
        tiny_cfg(mini_cache, **{"train.amp": "fp8"})  # by the config check, before any data are loaded


def test_amp_auto_is_float32_on_the_cpu_and_named_dtypes_elsewhere():
    from training.trainer import amp_dtype
    cpu = torch.device("cpu")
    assert amp_dtype("auto", cpu) is None and amp_dtype("off", cpu) is None
    assert amp_dtype("bf16", cpu) == torch.bfloat16 and amp_dtype("fp16", cpu) == torch.float16


def test_ema_decay_warms_up_then_caps():
    from training.gan_stage import ema_decay
    d = [ema_decay(0.995, n) for n in range(5000)]
    assert d[0] == pytest.approx(0.1) and d[90] == pytest.approx(0.91)
    assert all(a <= b for a, b in zip(d, d[1:])) and max(d) == 0.995
    # after 900 steps the random initialisation keeps a negligible weight (0.999 without warm-up kept ~41 %)
    assert float(np.prod(d[:900])) < 1e-6 and 0.999 ** 900 > 0.4


def test_condition_uses_the_text_prior(mini_cache, tmp_path, one_thread):
    """The GAN conditions on the text prior's guess of r from the caption (the test-time path), not on E(image)."""
    trainer = make_trainer(tiny_cfg(mini_cache), tmp_path / "c")
    text, enc = trainer.nets.text_encoder.eval(), trainer.nets.encoder.eval()
    idx = torch.arange(trainer.encoder.bs)
    real, t, r = trainer.gan.condition(idx)
    assert real.shape == (len(idx), 3, 64, 64) and t.shape[0] == r.shape[0] == len(idx)
    with torch.no_grad():
        torch.testing.assert_close(r, text.predict_representation(t), atol=1e-5, rtol=0)
        assert not torch.allclose(r, enc(real), atol=1e-3)


@pytest.mark.parametrize("d_rep", [False, True])
def test_generator_step_leaves_discriminator_and_encoder_weights_without_gradients(d_rep, mini_cache, tmp_path,
                                                                                   one_thread):
    trainer = make_trainer(tiny_cfg(mini_cache, **{"train.r1_every": 1, "model.d_rep": d_rep}), tmp_path / "g")
    assert (trainer.nets.discriminator.rep_proj is not None) == d_rep
    trainer.state.update(stage="gan")
    trainer.set_stage_modes("gan")
    D = trainer.nets.discriminator
    calls = []
    for p in D.parameters():  # fires each time a backward computes this weight's gradient
        p.register_hook(lambda g, calls=calls: calls.append(1))
    out = trainer.gan.step(torch.arange(trainer.encoder.bs))
    # once each (with d_rep, rep_proj too: r reaches D's loss): the D step's backward, not the G step's
    assert len(calls) == len(list(D.parameters()))
    assert all(p.requires_grad for p in D.parameters())  # restored after the G step
    assert all(p.grad is None for p in trainer.nets.encoder.parameters())
    assert all(math.isfinite(float(v.detach())) for v in out.values())


def test_conditional_norm_generator_trains(mini_cache, tmp_path, one_thread):
    """Conditional BatchNorm (always on): a GAN step moves every block's condition-to-scale/shift map away from
    its zero start."""
    trainer = make_trainer(tiny_cfg(mini_cache), tmp_path / "cbn")
    trainer.state.update(stage="gan")
    trainer.set_stage_modes("gan")
    out = trainer.gan.step(torch.arange(trainer.encoder.bs))
    assert all(math.isfinite(float(v.detach())) for v in out.values())
    for i, block in enumerate(trainer.nets.generator.blocks):
        assert block.affine.weight.abs().sum() > 0, f"block {i} did not learn from the condition"


def test_compiled_steps_match_eager(mini_cache, tmp_path, one_thread):
    """train.compile=true (torch.compile of the encoder and the generator's synthesis, real inductor
    backend) trains and gives the eager losses for the same seed."""
    results = {}
    for compiled in (False, True):
        cfg = tiny_cfg(mini_cache, **{"train.compile": compiled})
        trainer = make_trainer(cfg, tmp_path / str(compiled))
        idx = torch.arange(trainer.encoder.bs)
        torch.manual_seed(5)
        enc = trainer.encoder.step(idx)
        trainer.state.update(stage="gan")
        trainer.set_stage_modes("gan")
        gan = trainer.gan.step(idx)
        results[compiled] = {k: float(v.detach()) for k, v in {**enc, **gan}.items()}
    assert all(math.isfinite(v) for v in results[True].values())
    for k, v in results[False].items():
        assert results[True][k] == pytest.approx(v, rel=1e-2, abs=1e-3), k  # fused kernels round differently


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_compiled_steps_train_and_match_eager(mini_cache, tmp_path):
    """On CUDA, train.compile=true compiles the fixed-shape forward passes with mode "reduce-overhead" (CUDA
    graphs) and train.amp=auto picks bf16 or fp16 (with gradient scaling) by GPU: several steps of both stages
    stay finite, and the first steps' losses match the eager float32 ones within mixed-precision rounding."""
    from data_utils.dataset import load_data
    results = {}
    for compiled in (False, True):
        cfg = tiny_cfg(mini_cache, **{"train.device": "cuda", "train.compile": compiled,
                                      "train.amp": "auto" if compiled else "off", "train.gan_batch_size": 8})
        trainer = Trainer(cfg, load_data(cfg.data), tmp_path / f"compiled-{compiled}", torch.device("cuda"),
                          log=lambda *a, **k: None)
        idx = torch.arange(trainer.gan.bs)
        torch.manual_seed(5)
        trainer.state.update(stage="gan")
        trainer.set_stage_modes("gan")
        losses_ = [{k: float(v.detach()) for k, v in trainer.gan.step(idx).items()} for _ in range(4)]
        for row in losses_:
            assert all(math.isfinite(v) for v in row.values()), row
        results[compiled] = losses_[0]
    for k in ("gan/d_loss", "gan/g_adv", "gan/distill"):
        assert results[True][k] == pytest.approx(results[False][k], rel=0.05, abs=0.02), k


def test_reuse_freed_memory_is_applied_with_glibc():
    import platform
    import sys
    from core.runtime import reuse_freed_memory
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert reuse_freed_memory() is glibc


# ---------------------------------------------------------------- stage 2 from another run's encoders
def test_encoders_from_skips_stage_one_and_keeps_those_encoders(smoke_run, mini_root, mini_cache, tmp_path):
    src_dir, _ = smoke_run
    out = tmp_path / "runs"
    proc = run_cli(["--config", TINY, *_common(mini_root, mini_cache, out), "--run.name=gan-only",
                    f"--train.encoders_from={src_dir}", "--model.g_width=12", "--train.gan_epochs=1"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = out / "gan-only"
    assert "stage 1 skipped" in proc.stdout
    cfg = from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    assert cfg.train.encoders_from == str(src_dir / "checkpoints" / "best.pt") and cfg.train.encoder_epochs == 1
    rows = read_stats(run_dir)
    assert not any("enc/image_text" in r for r in rows)  # no encoder step ran
    assert {r["stage"] for r in rows if "time/epoch_seconds" in r} == {"gan"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs"] == 1 + 1  # the source's encoder epoch counts
    src, new = load_checkpoint(src_dir / "checkpoints" / "best.pt"), load_checkpoint(run_dir / "checkpoints" / "last.pt")
    for name in ("encoder", "text_encoder"):
        for k, v in src["networks"][name].items():
            assert torch.equal(v, new["networks"][name][k]), f"{name}.{k} changed"
    assert new["vocab"] == src["vocab"]
    g_src, g_new = (sum(v.numel() for v in c["networks"]["generator"].values()) for c in (src, new))
    assert g_src != g_new  # the other generator width was built
    a = np.load(src_dir / "eval" / "embeddings.npz")["features"]
    b = np.load(run_dir / "eval" / "embeddings.npz")["features"]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # same encoder -> same embeddings


def test_encoders_from_refuses_what_does_not_fit(smoke_run, mini_root, mini_cache, tmp_path, one_thread):
    from core.io import CheckpointError
    from app.run import adopt_encoder_stage
    src_dir, _ = smoke_run
    out = tmp_path / "runs"
    proc = run_cli(["--config", TINY, *_common(mini_root, mini_cache, out), "--run.name=x",
                    f"--train.encoders_from={src_dir}", "--model.embed_dim=16"])
    assert proc.returncode == 2 and "model.embed_dim = 32 (here 16)" in proc.stderr and "best.pt" in proc.stderr
    assert not (out / "x").exists()  # nothing written
    proc = run_cli(["--config", TINY, *_common(mini_root, mini_cache, out), "--run.name=x",
                    f"--train.encoders_from={tmp_path / 'nothing'}"])
    assert proc.returncode == 2 and "nothing" in proc.stderr and "not found" in proc.stderr

    cfg = tiny_cfg(mini_cache)
    cfg.train.gan_epochs = 200  # + the source's 1 encoder epoch
    with pytest.raises(CheckpointError, match="200-epoch budget"):
        adopt_encoder_stage(cfg, src_dir)
    half = make_trainer(tiny_cfg(mini_cache, **{"train.encoder_epochs": 2}), tmp_path / "half")
    half.run_stage("encoder", 1)  # stage 1 cut after one of its two epochs
    with pytest.raises(CheckpointError, match="not finished"):
        adopt_encoder_stage(tiny_cfg(mini_cache), tmp_path / "half")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_best_checkpoint_loaded_onto_the_gpu_restores_rng(smoke_run):
    """run() loads best.pt with map_location=cuda before evaluating; the RNG states must still restore."""
    from core.io import set_rng_state
    ckpt = load_checkpoint(smoke_run[0] / "checkpoints" / "best.pt", map_location="cuda")
    set_rng_state(ckpt["rng"])
    a = torch.rand(3)
    set_rng_state(ckpt["rng"])
    assert torch.equal(a, torch.rand(3))


def test_gan_stage_takes_its_own_batch_size(mini_cache, tmp_path, one_thread):
    cfg = tiny_cfg(mini_cache, **{"train.gan_batch_size": 8, "train.gan_epochs": 1, "train.eval_every": 5})
    trainer = make_trainer(cfg, tmp_path / "gb")
    n = len(trainer.data.train)
    assert (trainer.encoder.bs, trainer.gan.bs) == (16, 8)
    summary = trainer.fit()
    enc_steps, gan_steps = n // 16, n // 8
    assert summary["steps"] == enc_steps + gan_steps and trainer.state["gan_steps"] == gan_steps
    assert summary["images_seen"] == enc_steps * 16 + gan_steps * 8
    ends = {r["stage"]: r for r in read_stats(tmp_path / "gb") if "time/epoch_seconds" in r}
    assert ends["encoder"]["step"] == enc_steps and ends["gan"]["step"] == enc_steps + gan_steps


@pytest.mark.parametrize("key,value,match", [("train.gan_batch_size", -1, "train.gan_batch_size' must be >= 0"),
                                             ("train.batch_size", 0, "train.batch_size' must be >= 1"),
                                             ("train.wd_encoder", -0.1, "train.wd_encoder' must be >= 0"),
                                             ("train.whiten_eps", -0.01, "train.whiten_eps' must be >= 0"),
                                             ("model.enc_depth", 0, "model.enc_depth' must be >= 1"),
                                             ("train.text_weight", -1, "train.text_weight' must be >= 0"),
                                             ("train.ssl_weight", -0.5, "train.ssl_weight' must be >= 0"),
                                             ("train.semantic_weight", -2, "train.semantic_weight' must be >= 0"),
                                             ("train.affinity_alpha", 1.5, r"affinity_alpha' must be in \[0, 1\]")])
def test_bad_batch_decay_whitening_and_loss_settings_are_rejected(key, value, match, mini_cache):
    from core.config import ConfigError
    with pytest.raises(ConfigError, match=match):
        tiny_cfg(mini_cache, **{key: value})


@pytest.mark.parametrize("images_only", [True, False])
def test_images_only_encoder_stage_ignores_the_captions(images_only, mini_cache, tmp_path, one_thread):
    """text_weight = semantic_weight = affinity_alpha = 0: the source encoder's update does not depend on the
    captions (other caption statistics and another text encoder give the same weights); by default it does."""
    o = {"train.text_weight": 0, "train.semantic_weight": 0, "train.affinity_alpha": 0} if images_only else {}
    weights = []
    for k in range(2):
        trainer = make_trainer(tiny_cfg(mini_cache, **o), tmp_path / f"io{k}")
        if k:  # other caption statistics, another random text encoder
            trainer.encoder.semantics = torch.nn.functional.normalize(torch.randn_like(trainer.encoder.semantics), dim=1)
            torch.manual_seed(123)
            for p in trainer.nets.text_encoder.parameters():
                p.data.normal_(0, 0.1)
        torch.manual_seed(7)
        trainer.encoder.step(torch.arange(trainer.encoder.bs))
        weights.append(torch.cat([p.detach().flatten() for p in trainer.nets.encoder.parameters()]))
    assert torch.equal(weights[0], weights[1]) == images_only


def test_encoder_weight_decay_reaches_the_encoder_optimizer(mini_cache, tmp_path):
    trainer = make_trainer(tiny_cfg(mini_cache, **{"train.wd_encoder": 0.05}), tmp_path / "wd")
    assert [g["weight_decay"] for g in trainer.encoder.opt.param_groups] == [0.05]
    ids = {id(p) for g in trainer.encoder.opt.param_groups for p in g["params"]}
    assert ids == {id(p) for m in (trainer.nets.encoder, trainer.nets.text_encoder) for p in m.parameters()}


def test_encoder_learning_rate_warms_up_over_one_epoch_then_decays_to_zero():
    from training.encoder_stage import warmup_cosine
    lr = [warmup_cosine(2e-3, k, 10, 100) for k in range(101)]
    assert lr[0] == pytest.approx(2e-3 * 0.1 * 0.5 * (1 + math.cos(0)))  # 1/10 of the way through the warm-up
    assert all(a < b for a, b in zip(lr[:9], lr[1:10]))  # rising during the first epoch
    assert all(a >= b for a, b in zip(lr[9:], lr[10:])) and lr[100] == pytest.approx(0.0, abs=1e-12)
    assert max(lr) < 2e-3


# ---------------------------------------------------------------- end of stage 1: whitening
def test_end_of_encoder_stage_whitens_the_encoder_and_the_text_prior(mini_cache, tmp_path, one_thread):
    from models.inference import embed_images
    trainer = make_trainer(tiny_cfg(mini_cache, **{"train.whiten_eps": 0.05}), tmp_path / "w")
    trainer.run_stage("encoder", 1)
    enc, text = trainer.nets.encoder, trainer.nets.text_encoder
    assert not bool(enc.whiten.fitted)  # stage 1 trains the plain representation
    raw = torch.from_numpy(embed_images(enc, trainer.data.train.images, 64, "cpu")).double()
    trainer.encoder.finish()
    assert bool(enc.whiten.fitted) and bool(text.whiten.fitted)
    # fitted on the training images
    torch.testing.assert_close(enc.whiten.mean.double(), raw.mean(0), atol=1e-5, rtol=0)
    for k, v in enc.whiten.state_dict().items():
        assert torch.equal(v, text.whiten.state_dict()[k]), k  # the caption's prior lands in the same space
    white = embed_images(enc, trainer.data.train.images, 64, "cpu")
    unwhitened = embed_images(enc, trainer.data.train.images, 64, "cpu", whitened=False)  # the image-text space
    np.testing.assert_allclose(unwhitened, raw.numpy(), atol=1e-6)
    assert not np.allclose(white, unwhitened, atol=1e-3)
    assert np.abs(white.mean(0)).max() < raw.mean(0).abs().max().item()  # centred
    row = read_stats(tmp_path / "w")[-1]
    assert {"monitor/knn_all_whitened", "monitor/knn_test_whitened"} <= set(row)
    ckpt_nets = trainer.state_dict()["networks"]
    assert bool(ckpt_nets["encoder"]["whiten.fitted"]) and bool(ckpt_nets["text_encoder"]["whiten.fitted"])


def test_whitening_off_and_encoders_saved_before_it_existed(smoke_run, mini_cache, tmp_path, one_thread):
    trainer = make_trainer(tiny_cfg(mini_cache, **{"train.whiten_eps": 0}), tmp_path / "off")
    trainer.run_stage("encoder", 1)
    trainer.encoder.finish()
    assert not bool(trainer.nets.encoder.whiten.fitted) and not bool(trainer.nets.text_encoder.whiten.fitted)
    # a finished stage 1 saved before whitening existed: stage 2 starts by fitting it
    ckpt = load_checkpoint(smoke_run[0] / "checkpoints" / "best.pt")
    for name in ("encoder", "text_encoder"):
        ckpt["networks"][name] = {k: v for k, v in ckpt["networks"][name].items() if not k.startswith("whiten.")}
    later = make_trainer(tiny_cfg(mini_cache), tmp_path / "later")
    later.start_from_encoders(ckpt, "old.pt")
    assert bool(later.nets.encoder.whiten.fitted) and later.state["stage"] == "gan"
    # stage 2 takes this run's setting, whatever the source had: off here, though the smoke run whitened
    plain = make_trainer(tiny_cfg(mini_cache, **{"train.whiten_eps": 0}), tmp_path / "plain")
    plain.start_from_encoders(load_checkpoint(smoke_run[0] / "checkpoints" / "best.pt"), "best.pt")
    assert not bool(plain.nets.encoder.whiten.fitted) and not bool(plain.nets.text_encoder.whiten.fitted)


# ---------------------------------------------------------------- the schedule: encoder epochs, then GAN epochs
def test_phase_epochs_and_passes():
    from training.schedule import describe, passes, phase_epochs
    plan = phase_epochs(100, 100)
    assert plan == {"encoder": 100, "gan": 100} and passes(plan) == 200
    assert describe(plan) == "100 encoder + 100 GAN = 200 passes"
    with pytest.raises(ValueError, match="train.gan_epochs"):
        phase_epochs(10, -1)
    with pytest.raises(ValueError, match="train.encoder_epochs"):
        phase_epochs(-2, 10)


@pytest.mark.parametrize("overrides,match", [
    ({"train.encoder_epochs": 100, "train.gan_epochs": 101}, "200-epoch budget"),
    ({"train.encoder_epochs": -1}, "train.encoder_epochs"),
    ({"train.gan_epochs": -1}, "train.gan_epochs")])
def test_schedule_is_validated(overrides, match, mini_cache):
    with pytest.raises(ConfigError, match=match):
        tiny_cfg(mini_cache, **overrides)


def test_default_experiment_uses_the_200_epochs():
    from training.schedule import passes, phase_epochs
    tc = build_config(str(REPO / "experiments" / "default.yaml")).train
    assert passes(phase_epochs(tc.encoder_epochs, tc.gan_epochs)) == 200


# ---------------------------------------------------------------- the progress display (training/progress.py)
def test_progress_eta_arithmetic():
    from training.progress import done_epochs, format_seconds, images_per_second, phase_remaining, run_remaining
    assert [format_seconds(s) for s in (None, 0, 42, 59.6, 185, 3599, 3725)] == \
        ["?", "0s", "42s", "1m00s", "3m05s", "59m59s", "1h02m"]
    plan = {"encoder": 40, "gan": 100}
    assert done_epochs(plan, "encoder", 10) == {"encoder": 10, "gan": 0}
    assert done_epochs(plan, "gan", 7) == {"encoder": 40, "gan": 7}
    assert done_epochs(plan, "gan", 100) == plan
    assert phase_remaining(40, 10, [10, 12], 0.5) == 29.5 * 11  # 29.5 epochs left at their mean of 11 s
    assert phase_remaining(40, 40, [], 0.0) == 0.0 and phase_remaining(5, 1, []) is None
    assert images_per_second(10, 64, 4.0) == 160.0 and images_per_second(0, 64, 1.0) is None
    cost = {"encoder": 1.0, "gan": 2.0}  # (PHASE_COST holds the default's measured ratio)
    # in the encoder phase: its own epochs for it; the GAN's (cost 2) by ratio to it
    per, total = run_remaining(plan, done_epochs(plan, "encoder", 10), {"encoder": [10, 12]}, "encoder", 0.5,
                               cost=cost)
    assert per == {"encoder": (324.5, "measured"), "gan": (100 * 22.0, "ratio")}
    assert total == 324.5 + 2200
    # in the GAN phase: the encoder phase is done, the GAN's from its own epochs
    per, total = run_remaining(plan, done_epochs(plan, "gan", 20), {"encoder": [10] * 40, "gan": [25, 27]},
                               "gan", 0.25, cost=cost)
    assert per == {"encoder": (0.0, "done"), "gan": (79.75 * 26, "measured")}
    assert total == 79.75 * 26
    # in the GAN phase everything is measured; before any epoch ends nothing is known
    per, total = run_remaining(plan, done_epochs(plan, "gan", 99), {"gan": [8.0]}, "gan", 0.5)
    assert per["gan"] == (4.0, "measured") and total == 4.0
    per, total = run_remaining({"encoder": 1, "gan": 2}, {"encoder": 0, "gan": 0}, {}, "encoder", 0.3)
    assert per == {"encoder": (None, "unknown"), "gan": (None, "unknown")} and total is None
    per, total = run_remaining({"encoder": 0, "gan": 2}, {"encoder": 0, "gan": 0}, {}, "gan", 0.0)
    assert per["encoder"] == (0.0, "done") and total is None  # a GAN-only run (train.encoders_from)


def test_progress_draws_on_a_terminal_and_is_silent_otherwise(mini_cache, tmp_path):
    import io

    from rich.console import Console

    from training.progress import TrainingProgress
    buf = io.StringIO()
    shown = TrainingProgress({"encoder": 2, "gan": 1}, True,
                             console=Console(file=buf, force_terminal=True, width=140))
    shown.start_epoch("encoder", 0, 0, 10)
    time.sleep(0.01)
    shown.update("encoder", 5, 16, {"enc/image_text": 1.25, "enc/prior": 3.0})
    shown.end_epoch("encoder", 1)
    shown.start_epoch("encoder", 1, 0, 10)
    shown.update("encoder", 4, 16, {})
    text = buf.getvalue()
    shown.close()
    assert "\x1b[" in text  # drawn in place on a terminal
    for part in ("encoder", "epoch 2/2 step 4/10", "img/s", "ETA", "(by ratio)", "run: 1/3 epochs",
                 "latest enc/image_text=1.25"):
        assert part in text, part
    assert "enc/prior" not in text  # only the key losses
    quiet = TrainingProgress({"encoder": 2, "gan": 1}, False)
    quiet.start_epoch("encoder", 0, 0, 10)
    quiet.update("encoder", 5, 16, {"enc/image_text": 1.0})
    quiet.end_epoch("encoder", 1)
    quiet.close()
    assert quiet.live is None and quiet.measured["encoder"] == []
    # the Trainer draws only for rank 0 on a terminal: never under pytest's captured stdout
    assert not make_trainer(tiny_cfg(mini_cache), tmp_path / "t").progress.enabled


def test_smoke_run_output_has_no_escape_codes(smoke_run):
    """stdout is a pipe: the one-line epoch logs, no bar and no ANSI codes; evaluation announces its parts."""
    run_dir, _ = smoke_run
    out, err = (run_dir.parent / "smoke.stdout").read_text(), (run_dir.parent / "smoke.stderr").read_text()
    assert "\x1b" not in out and "\x1b" not in err and "\r" not in out
    assert "[encoder] epoch 1 (1/1)" in out and "[gan] epoch 3 (2/2)" in out
    assert "evaluation: encoder metrics, baselines, evaluation network, judge, generation metrics" in out
    assert "evaluation: fid_kid ..." in out
    assert "evaluator: training the evaluation network" in out


def test_ema_decay_spans_the_same_images_at_any_batch():
    """train.ema_decay is per 32 images: at batch 8 the per-step decay is its 4th root, so 4 steps of 8
    images keep as much of the old average as one step of 32."""
    from training.gan_stage import ema_decay
    n = 100_000  # past the warm-up
    assert ema_decay(0.995, n, 32) == pytest.approx(0.995)
    assert ema_decay(0.995, n, 8) ** 4 == pytest.approx(0.995)
    assert ema_decay(0.995, n, 8) > ema_decay(0.995, n, 32)
    assert ema_decay(0.995, 0, 8) == pytest.approx(0.1)  # the warm-up is per step, as before


# ---------------------------------------------------------------- publishing a run's results
def test_publish_copies_what_rescoring_needs_atomically(smoke_run, tmp_path):
    from app.publish import FILES, main
    run_dir, _ = smoke_run
    out = tmp_path / "results"
    assert main([str(run_dir), "--out", str(out), "--machine", "a 2-core CPU"]) == 0
    dest = out / run_dir.name
    for f in FILES:
        assert (dest / f).read_bytes() == (run_dir / f).read_bytes(), f
    machine = json.loads((dest / "machine.json").read_text())
    assert machine["machine"] == "a 2-core CPU" and machine["device"] == "cpu"
    with np.load(dest / "eval" / "samples.npz") as z:
        assert len(z.files) > 0
    assert [p.name for p in out.iterdir()] == [run_dir.name]  # no temporary folder left behind


def test_publish_refuses_an_unfinished_or_incomplete_run(tmp_path, capsys):
    from app.publish import main
    run_dir = tmp_path / "runs" / "half"
    (run_dir / "eval").mkdir(parents=True)
    for f in ("config.yaml", "stats.jsonl", "eval/metrics.json", "eval/samples.npz"):
        (run_dir / f).write_text("x")
    (run_dir / "summary.json").write_text(json.dumps({"status": "interrupted"}))
    assert main([str(run_dir), "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "interrupted" in err and "\n" not in err
    (run_dir / "eval" / "samples.npz").unlink()
    assert main([str(run_dir), "--out", str(tmp_path / "results")]) == 2
    assert "eval/samples.npz" in capsys.readouterr().err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
