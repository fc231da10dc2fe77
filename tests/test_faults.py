"""Faults and bad input, end to end on the committed fixture: a signal during the end-of-run evaluation, a bounded
`app.generate`, a data cache that is already there, resume overrides, one-line user errors, a corrupt checkpoint,
sweep ranges beyond the config's limits and a writer killed mid-write. Each user error is one `error:` line, exit 2,
no traceback, and leaves nothing lost or half-written.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from test_training import REPO, TINY, _common, _env, one_line, run_cli

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False  # root writes into read-only folders


def files_of(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder` (what "nothing lost or changed" compares)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_run(mini_root, mini_cache, tmp_path_factory) -> Path:
    """A finished run of experiments/tiny.yaml (judge off), made once; tests that change a run copy it first."""
    out = tmp_path_factory.mktemp("fault_runs")
    proc = run_cli(["--config", TINY, *_common(mini_root, mini_cache, out), "--run.name=t"], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "t"


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / run_dir.name))


# ---------------------------------------------------------------- 1. a signal during the evaluation
def test_sigint_during_evaluation_stops_at_once_and_app_evaluate_finishes_later(mini_root, mini_cache, tmp_path):
    cache = Path(shutil.copy(mini_cache, tmp_path / "flowers.h5"))  # its own: the judge is trained beside it
    out, log = tmp_path / "runs", tmp_path / "run.log"
    cmd = [sys.executable, "run_experiment.py", "--config", TINY, *_common(mini_root, cache, out), "--run.name=e",
           "--eval.judge=true"]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, env={**_env(), "PYTHONUNBUFFERED": "1"}, stdout=f,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 900  # training takes seconds; a loaded machine may need minutes
            while proc.poll() is None and time.time() < deadline and "training the judge" not in log.read_text():
                time.sleep(0.05)
            assert proc.poll() is None, "the run ended before its evaluation could be stopped:\n" + log.read_text()
            time.sleep(1.0)  # well inside the judge's training (a minute or more on this fixture)
            proc.send_signal(signal.SIGINT)
            t0 = time.time()
            rc = proc.wait(timeout=30)
            stopped_in = time.time() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert stopped_in < 10, text[-3000:]
    assert rc == 0 and "Traceback" not in text, text[-3000:]
    run_dir = out / "e"
    assert f"python -m app.evaluate --run {run_dir}" in text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stopped_in"] == "evaluation"
    assert not (run_dir / "eval" / "metrics.json").exists()  # no evaluation files of a stopped evaluation
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flowers.h5", "run.log", "runs"]  # no judge, no temp file
    proc = subprocess.run([sys.executable, "-m", "app.evaluate", "--run", str(run_dir), "--no-judge", "--no-figures"],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run_dir / "eval" / "metrics.json").read_text())["encoder"]["all"]["knn_acc"] is not None


# ---------------------------------------------------------------- 2. app.generate stays bounded
def test_generate_refuses_more_than_its_limit_and_draws_in_bounded_batches(tiny_run, tmp_path, capsys):
    from app.generate import main
    from models.inference import BATCH, MAX_IMAGES_PER_CAPTION, generate_captions
    png = tmp_path / "g.png"
    assert main(["--checkpoint", str(tiny_run), "--caption", "pink petals", "-n", "100000", "--out", str(png)]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: -n 100000: at most {MAX_IMAGES_PER_CAPTION} images per "
                                                 "caption (one grid row each); draw more with other --seed values")
    assert not png.exists()
    with pytest.raises(ValueError, match="65 captions: at most 64"):
        generate_captions(tiny_run, ["pink petals"] * 65, n=1)
    # 10 captions x 16 images: batches of BATCH // 16 captions; each row as if its caption were drawn alone
    caps = [f"{colour} petals with a yellow center" for colour in ("pink", "white", "red", "purple", "orange")] * 2
    rows = generate_captions(tiny_run, caps, n=16)
    assert rows.shape == (10, 16, 3, 64, 64) and len(caps) * 16 > BATCH
    for i in (0, 9):  # within float rounding (~1e-8); other captions' rows differ by ~1e-4 in the tiny run
        assert torch.allclose(rows[i], generate_captions(tiny_run, [caps[i]], n=16)[0], rtol=0, atol=1e-6)
    assert (rows[0] - rows[1]).abs().max() > 1e-5
    assert main(["--checkpoint", str(tiny_run), "--caption", caps[0], "--caption", caps[1], "-n",
                 str(MAX_IMAGES_PER_CAPTION), "--out", str(png)]) == 0
    width, height = Image.open(png).size
    assert width == MAX_IMAGES_PER_CAPTION * 66 + 2 and height >= 2 * 66 + 2  # a column per image, 2 px apart
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]  # written whole: no temp file beside it


# ---------------------------------------------------------------- 3. an existing cache is used, never downloaded over
def test_prepare_download_uses_a_valid_cache_and_leaves_no_empty_folder(mini_cache, tmp_path, capsys, monkeypatch):
    from data_utils.prepare import main as prepare_main
    from run_experiment import main as run_main
    cache = Path(shutil.copy(mini_cache, tmp_path / "flowers.h5"))
    before = files_of(tmp_path)
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # any download attempt fails at once
        monkeypatch.setenv(k, "http://127.0.0.1:1")
    for k in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(k, raising=False)
    args = ["--download", "--download-dir", str(tmp_path / "oxford102"), "--out", str(cache)]
    assert prepare_main(args) == 0  # what `make run` runs without OXFORD102_DIR
    assert capsys.readouterr().out.startswith(f"cache ready: {cache} (306 images, official source); not downloading")
    assert files_of(tmp_path) == before  # nothing downloaded, nothing rewritten, no empty data folder
    cache.unlink()
    assert prepare_main(args) == 1  # no cache: it tries, and fails offline
    assert capsys.readouterr().err.startswith("error: Could not reach")
    assert list(tmp_path.iterdir()) == []  # the empty download folder is removed again
    # an empty data folder named as the source: the one line naming what is missing, not a FileNotFoundError
    (tmp_path / "oxford102").mkdir()
    assert run_main(["--config", TINY, f"--data.root={tmp_path / 'oxford102'}", f"--data.cache={cache}",
                     f"--run.out_dir={tmp_path / 'runs'}", "--run.name=x", "--train.device=cpu"]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: {tmp_path / 'oxford102' / 'jpg'}: folder missing (expected "
                                                 "the official Oxford-102 layout)")
    assert not (tmp_path / "runs" / "x").exists() and not cache.exists()


# ---------------------------------------------------------------- 4. resume overrides
@pytest.mark.parametrize("arg, key", [("--model.g_width=16", "model.g_width"), ("--train.gan_epochs=5",
                                                                                  "train.gan_epochs")])
def test_resume_refuses_overrides_that_change_the_run(arg, key, tiny_run, tmp_path, capsys):
    from run_experiment import main
    run_dir = copy_run(tiny_run, tmp_path)
    before = files_of(run_dir)
    assert main([f"--run.resume={run_dir}", arg]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"error: config key '{key}' = ") and "differs from the resumed checkpoint's" in line
    assert files_of(run_dir) == before


def test_resume_applies_safe_overrides_and_accepts_its_own_config(tiny_run, mini_root, mini_cache, tmp_path, capsys):
    from run_experiment import main
    run_dir = copy_run(tiny_run, tmp_path)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["threads"] == 1
    best = (run_dir / "checkpoints" / "best.pt").read_bytes()
    threads = torch.get_num_threads()
    try:  # the run's own --config and data paths (the same values) are accepted; threads may change
        assert main(["--config", TINY, f"--data.cache={mini_cache}", f"--data.root={mini_root}",
                     f"--run.resume={run_dir}", "--train.threads=2", "--wandb.mode=disabled"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert "resume: train.threads = 2 (the checkpoint's: 1)" in capsys.readouterr().out
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["threads"] == 2
    assert json.loads((run_dir / "meta.json").read_text())["threads"] == 2
    assert (run_dir / "checkpoints" / "best.pt").read_bytes() == best  # the finished run's model is kept
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"


# ---------------------------------------------------------------- 5. user errors: one line, exit 2
def _bad_yaml(tmp: Path) -> list[str]:
    (tmp / "bad.yaml").write_text("train:\n  gan_epochs: [1\n")
    return ["--config", str(tmp / "bad.yaml")]


def _cache_folder(tmp: Path) -> list[str]:
    (tmp / "cachedir").mkdir()
    return ["--config", TINY, f"--data.cache={tmp / 'cachedir'}"]


def _out_under_a_file(tmp: Path) -> list[str]:
    (tmp / "afile").write_text("keep")
    return ["--config", TINY, f"--run.out_dir={tmp / 'afile' / 'runs'}"]


USER_ERRORS = {
    "malformed YAML": (_bad_yaml, "config error: {tmp}/bad.yaml: malformed YAML at line 3, column 1"),
    "limit_per_class 1": (lambda t: ["--config", TINY, "--data.limit_per_class=1"],
                          "config error: config key 'data.limit_per_class' must be 0 (all images) or >= 2"),
    "amp bogus": (lambda t: ["--config", TINY, "--train.amp=bogus"], "config error: config key 'train.amp' must be"),
    "device name": (lambda t: ["--config", TINY, "--train.device=gpu"], "config error: config key 'train.device'"),
    "cuda without a GPU": (lambda t: ["--config", TINY, "--train.device=cuda"], "error: config key 'train.device': "
                           "device cuda asked for, but CUDA is not available"),
    "cache is a folder": (_cache_folder, "error: {tmp}/cachedir: data.cache is a folder; name the HDF5 cache file"),
    "out_dir under a file": (_out_under_a_file, "error: {tmp}/afile/runs/x: cannot write there ({tmp}/afile is a "
                                                "file, not a folder)"),
}


@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_user_errors_are_one_line_before_any_work(case, mini_cache, tmp_path, capsys):
    from run_experiment import main
    if case == "cuda without a GPU" and torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    make, start = USER_ERRORS[case]
    args = [f"--data.cache={mini_cache}", f"--run.out_dir={tmp_path / 'runs'}", "--train.device=cpu",
            "--run.name=x", *make(tmp_path)]
    before = files_of(tmp_path)
    assert main(args) == 2
    assert one_line(capsys.readouterr().err).startswith(start.format(tmp=tmp_path))
    assert files_of(tmp_path) == before and not (tmp_path / "runs" / "x").exists()  # no file, no run folder
    if case in ("limit_per_class 1", "amp bogus"):  # --dry-run rejects them too
        assert main([*args, "--dry-run"]) == 2 and "config error" in capsys.readouterr().err


def test_output_paths_that_cannot_be_written_are_one_line(tiny_run, mini_root, tmp_path, capsys):
    from app.evaluate import main as evaluate_main
    from app.generate import main as generate_main
    from data_utils.prepare import main as prepare_main
    blocker = tmp_path / "afile"
    blocker.write_text("keep")
    gen = ["--checkpoint", str(tiny_run), "--caption", "pink petals"]
    assert generate_main([*gen, "--out", str(tmp_path / "flowers")]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: --out {tmp_path / 'flowers'}: give an image file name "
                                                 "ending in .png or .jpg (got no extension)")
    assert generate_main([*gen, "--out", str(blocker / "x.png")]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: {blocker}: cannot write there ({blocker} is a file, not a "
                                                 "folder)")
    assert generate_main([*gen, "--out", str(tmp_path / "new" / "x.png")]) == 0  # a missing folder is made
    assert (tmp_path / "new" / "x.png").is_file()
    capsys.readouterr()
    assert evaluate_main(["--run", str(tiny_run), "--out", str(blocker / "eval")]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: {blocker / 'eval'}: cannot write there ({blocker} is a "
                                                 "file, not a folder)")  # one line: no evaluation started
    assert prepare_main(["--source", str(mini_root), "--out", str(blocker / "flowers.h5")]) == 2
    assert one_line(capsys.readouterr().err).startswith(f"error: {blocker}: cannot write there")
    assert blocker.read_text() == "keep"


@pytest.mark.skipif(ROOT, reason="root writes into read-only folders")
def test_read_only_folders_are_one_line(tiny_run, mini_root, mini_cache, tmp_path, capsys):
    from app.evaluate import main as evaluate_main
    from app.generate import main as generate_main
    from run_experiment import main as run_main
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert run_main(["--config", TINY, f"--data.cache={mini_cache}", f"--run.out_dir={ro}", "--run.name=x",
                         "--train.device=cpu"]) == 2
        assert "cannot write there" in one_line(capsys.readouterr().err)
        assert generate_main(["--checkpoint", str(tiny_run), "--caption", "pink petals", "--out",
                              str(ro / "x.png")]) == 2
        assert "cannot write there" in one_line(capsys.readouterr().err)
        assert evaluate_main(["--run", str(tiny_run), "--out", str(ro / "eval")]) == 2
        assert "cannot write there" in one_line(capsys.readouterr().err)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


# ---------------------------------------------------------------- 6. a corrupt checkpoint
def test_corrupt_checkpoint_gets_the_projects_message(tiny_run, tmp_path, capsys):
    from app.evaluate import main as evaluate_main
    from app.generate import main as generate_main
    from run_experiment import main as run_main
    run_dir = copy_run(tiny_run, tmp_path)
    last = run_dir / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:5000])  # truncated
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint\n" * 10)
    before = files_of(run_dir)
    for command, path in ((lambda: run_main([f"--run.resume={run_dir}"]), last),
                          (lambda: evaluate_main(["--checkpoint", str(last)]), last),
                          (lambda: generate_main(["--checkpoint", str(junk), "--caption", "pink petals"]), junk)):
        code, line = command(), one_line(capsys.readouterr().err)
        assert code == 2 and line == (f"error: {path}: not a readable checkpoint of this project (truncated, corrupt "
                                      "or another kind of file); a run folder keeps two, checkpoints/best.pt and "
                                      "checkpoints/last.pt: use the other one, or train again")
    assert files_of(run_dir) == before


# ---------------------------------------------------------------- 7. sweep ranges against the config's limits
@pytest.mark.parametrize("param, spec, value", [
    ("train.affinity_alpha", {"distribution": "uniform", "min": 0.5, "max": 1.5}, "1.5"),
    ("data.limit_per_class", {"values": [0, 1]}, "1"),
    ("train.gan_epochs", {"values": [100, 150]}, "150"),  # with the default's 100 encoder epochs: over 200
])
def test_sweep_ranges_beyond_the_config_limits_are_refused_at_creation(param, spec, value, tmp_path, capsys,
                                                                       monkeypatch):
    from tracking.sweep import main
    monkeypatch.chdir(REPO)  # the sweep's program and --config are relative to the project
    sweep = {"program": "run_experiment.py", "method": "random", "metric": {"name": "eval/score", "goal": "maximize"},
             "command": ["${env}", "${interpreter}", "${program}", "--config", "experiments/default.yaml", "${args}"],
             "parameters": {"train.lr_g": {"values": [1e-4]}, param: spec}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep))
    assert main([str(path), "--validate-only"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"sweep error: parameter '{param}' = {value} breaks the trial config's limits: ")
    assert main([str(path), "--count", "1", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert not (tmp_path / "runs").exists()  # no sweep folder, no trial
    capsys.readouterr()


# ---------------------------------------------------------------- 8. the small ones
def test_a_killed_writers_temp_file_is_removed_by_the_next_write(mini_root, tmp_path):
    from data_utils.prepare import prepare
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".flowers.h5.tmp-{int(done.stdout)}"  # what `prepare` killed mid-write leaves
        busy = tmp_path / f".flowers.h5.tmp-{alive.pid}"  # a writer that still runs
        dead.write_bytes(b"half a cache")
        busy.write_bytes(b"being written")
        lines = []
        prepare(mini_root, tmp_path / "flowers.h5", log=lines.append)
        assert not dead.exists() and busy.read_bytes() == b"being written"
        assert sorted(p.name for p in tmp_path.iterdir()) == [busy.name, "flowers.h5"]
        assert not [line for line in lines if "converted to RGB" in line]  # nothing converted: not printed as {}
    finally:
        alive.kill()
        alive.wait()


def test_a_long_caption_is_echoed_short_and_once(tiny_run, tmp_path, capsys):
    from app.generate import main
    caption = " ".join(["petals"] * 5000 + [f"qq{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}x" for i in range(5000)])
    assert main(["--checkpoint", str(tiny_run), "--caption", caption, "-n", "1", "--out", str(tmp_path / "x.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[-1] == str(tmp_path / "x.png")
    assert out[0].startswith("caption 0 ('petals petals") and "(+9988 words)" in out[0]
    assert "read as <unk>: " in out[0] and " more; cut to its first 32 of 10000 words" in out[0]
    assert out[1].startswith("row 0: petals") and out[1].endswith("(+9988 words)")
    assert max(len(line) for line in out) < 600


def test_the_judge_off_is_one_n_a_row_of_the_evaluation_table(tiny_run, tmp_path):
    from evaluation.report import print_table
    report = json.loads((tiny_run / "eval" / "metrics.json").read_text())
    assert report["generation"]["recognised_by_judge"] == {"unavailable": "skipped (eval.judge=false)"}
    with open(tmp_path / "table.txt", "w") as f:  # not a terminal: the plain-text width
        print_table(report, file=f)
    text = (tmp_path / "table.txt").read_text()
    assert text.count("skipped (eval.judge=false)") == 1 and max(len(line) for line in text.splitlines()) <= 170
