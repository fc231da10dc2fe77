"""Tests of tracking/: sweep.yaml validation, W&B mode selection, the tracker offline/disabled, the local
sweep driver (grid with a crashing trial, bayes continued, hyperband early stopping) and best_run.

Everything runs without network or a W&B account: W&B is `disabled` or `offline`. Trials are the tiny
experiment on the committed fixture cut to one step per stage (~7 s each on a CPU).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from tracking.best_run import BestRunError, best_run
from tracking.sweep import SWEEP_METRIC, SweepError, load_sweep, preflight, validate_sweep
from tracking.tracker import Tracker, TrackingError, flatten_config, has_credentials, resolve_mode
from core.config import REMOVED_KEYS, Config, WandbConfig, build_config, to_dict

REPO = Path(__file__).resolve().parents[1]
FAKE_KEY = "flowersTEST0123456789abcdef0123456789abcd"  # 40 chars like a real key; never valid
SHORT = ["--train.max_steps=1", "--train.encoder_epochs=1", "--train.gan_epochs=1", "--train.threads=1"]


def _child_env(**extra) -> dict:
    """Environment of driver subprocesses: one BLAS/OpenMP thread (2 shared cores), no W&B login."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p), **extra)
    return env


def _sweep(args: list[str], cwd: Path = REPO, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracking.sweep", *args], cwd=cwd, env=_child_env(**env),
                          capture_output=True, text=True, timeout=240)


def _write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


# --------------------------------------------------------------------------- sweep.yaml validation
def test_real_sweep_yaml_validates(monkeypatch):
    from app.run import SWEEP_METRIC as RUNNER_METRIC
    cfg = validate_sweep(load_sweep(REPO / "sweep.yaml"), "sweep.yaml")
    monkeypatch.chdir(REPO)
    cmd = cfg["command"]
    base_config = cmd[cmd.index("--config") + 1]
    preflight(cfg, [] if Path(base_config).is_file() else ["--config", "experiments/tiny.yaml"])
    assert SWEEP_METRIC == RUNNER_METRIC
    assert cfg["program"] == "run_experiment.py" and "${args}" in cfg["command"]
    assert cfg["metric"] == {"name": RUNNER_METRIC, "goal": "maximize"}
    assert cfg["method"] == "bayes" and "early_terminate" not in cfg  # online it would wait for eval/score
    params = cfg["parameters"]
    assert {"train.diffaug", "model.d_width", "train.lr_g", "train.lr_d"} <= set(params)
    assert params["train.lr_g"]["distribution"] == "log_uniform_values"
    assert not set(params) & set(REMOVED_KEYS)  # options measured and removed are not searched
    for policy in params["train.diffaug"]["values"]:  # every DiffAugment variant is one the runner accepts
        build_config(overrides={"train.diffaug": policy})


def test_gan_stage_sweep_validates_and_only_varies_gan_settings(monkeypatch):
    cfg = validate_sweep(load_sweep(REPO / "sweep_gan.yaml"), "sweep_gan.yaml")
    monkeypatch.chdir(REPO)
    preflight(cfg, [])
    params = cfg["parameters"]
    assert params.pop("train.encoders_from") == {"value": "runs/default-s0"}  # one run's encoders for every trial
    encoder_keys = [k for k in params if k.startswith(("model.enc", "train.encoder"))]
    assert not encoder_keys and not set(params) & set(REMOVED_KEYS)
    assert "early_terminate" not in cfg


BASE = {"program": "run_experiment.py", "method": "random",
        "metric": {"name": "eval/score", "goal": "maximize"},
        "parameters": {"train.diffaug": {"values": ["color,translation,cutout", "translation"]}}}


def _variant(**changes) -> dict:
    cfg = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        if value is None:
            cfg.pop(key)
        elif key == "parameters":
            cfg["parameters"].update(value)
        else:
            cfg[key] = value
    return cfg


@pytest.mark.parametrize("cfg, problem", [
    (_variant(method="hyperopt"), "unknown method 'hyperopt'"),
    (_variant(method="grid", parameters={"train.lr_g": {"distribution": "log_uniform_values", "min": 1e-5,
                                                        "max": 1e-3}}), "continuous range of 'train.lr_g'"),
    (_variant(method="grid", parameters={"train.ssl_weight": {"min": 0.0, "max": 1.0}}),
     "continuous range of 'train.ssl_weight'"),
    (_variant(method="bayes", metric=None), "'bayes' needs a metric"),
    (_variant(metric={"goal": "maximize"}), "metric must be a mapping with a name"),
    (_variant(metric={"name": "eval/score", "goal": "maximise"}), "goal 'maximise'"),
    (_variant(parameters={"train.lr_gg": {"values": [1e-4]}}), "unknown config key 'train.lr_gg'"),
    (_variant(parameters={"optim.lr": {"values": [1e-4]}}), "unknown config key 'optim.lr'"),
    (_variant(parameters={"model.enc_width": {"values": [32, "wide"]}}), "'model.enc_width' expects int"),
    (_variant(parameters={"model.enc_width": {"min": 16.0, "max": 64.0}}), "'model.enc_width' expects int"),
    (_variant(parameters={"train.r1_every": {"values": [None]}}), "parameter 'train.r1_every'"),
    (_variant(parameters={"run.name": {"values": ["a", "b"]}}), "parameter 'run.name' is set by the sweep"),
    (_variant(parameters={"train": {"parameters": {"lr_g": {"values": [1e-4]}}}}), "use flat dotted names"),
    (_variant(parameters={"train.lr_g": {"distribution": "log_uniform_values", "min": 1e-3, "max": 1e-5}}),
     "train.lr_g"),
    (_variant(command=["${env}", "${interpreter}", "${program}", "${args_json}"]), "not ${args_json}"),
    (_variant(early_terminate={"type": "hyperband", "min_iter": 3}, metric=None), "early_terminate needs a metric"),
    (_variant(early_terminate={"type": "median"}), "type must be hyperband"),
    (_variant(early_terminate={"type": "hyperband", "max_iter": 1, "s": 2}), "Bands must be"),
    (_variant(parameters=None), "'parameters' must map"),
])
def test_malformed_sweeps_are_rejected(cfg, problem):
    with pytest.raises(SweepError) as e:
        validate_sweep(cfg, "bad.yaml")
    assert problem in str(e.value) and "bad.yaml" in str(e.value)


def test_malformed_yaml_and_cli(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "method: bayes\nparameters:\n  train.lr_g: {values: [1e-4\n")
    with pytest.raises(SweepError, match="malformed YAML"):
        load_sweep(bad)
    with pytest.raises(SweepError, match="not found"):
        load_sweep(tmp_path / "missing.yaml")
    with pytest.raises(SweepError, match="top level"):
        load_sweep(_write(tmp_path / "list.yaml", "- a\n- b\n"))
    # the CLI names the problem and runs nothing (exit 2, no sweep folder)
    p = _sweep([str(_write(tmp_path / "g.yaml", _variant(method="grid", parameters={
        "train.ssl_weight": {"min": 0.0, "max": 1.0}}))), "--runs-dir", str(tmp_path / "runs")])
    assert p.returncode == 2 and "continuous range of 'train.ssl_weight'" in p.stderr
    assert not (tmp_path / "runs").exists()
    # extra arguments are checked too: a typo, or overriding a swept parameter
    ok = str(_write(tmp_path / "ok.yaml", BASE))
    p = _sweep([ok, "--count", "1", "--runs-dir", str(tmp_path / "runs"), "--", "--train.lr_gg=1"])
    assert p.returncode == 2 and "train.lr_gg" in p.stderr
    p = _sweep([ok, "--count", "1", "--runs-dir", str(tmp_path / "runs"), "--", "--train.diffaug=color"])
    assert p.returncode == 2 and "swept parameter 'train.diffaug'" in p.stderr
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- W&B modes
@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path):
    """No credentials anywhere: no WANDB_* variables, an empty netrc, an empty W&B config folder."""
    for k in list(os.environ):
        if k.startswith("WANDB_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc-none"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    return monkeypatch


def test_resolve_mode_without_credentials(no_wandb_env):
    assert not has_credentials()
    assert resolve_mode("auto") == "offline"
    assert resolve_mode("offline") == "offline" and resolve_mode("disabled") == "disabled"
    with pytest.raises(TrackingError, match="wandb login"):
        resolve_mode("online")
    with pytest.raises(TrackingError, match="unknown W&B mode"):
        resolve_mode("cloud")
    no_wandb_env.setenv("WANDB_MODE", "disabled")  # CI: the environment decides `auto`
    assert resolve_mode("auto") == "disabled" and resolve_mode("offline") == "offline"


def test_resolve_mode_with_credentials(no_wandb_env, tmp_path):
    no_wandb_env.setenv("WANDB_API_KEY", FAKE_KEY)
    assert has_credentials() and resolve_mode("auto") == "online" and resolve_mode("online") == "online"
    assert resolve_mode("offline") == "offline"
    no_wandb_env.delenv("WANDB_API_KEY")
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {FAKE_KEY}\n")
    netrc.chmod(0o600)
    no_wandb_env.setenv("NETRC", str(netrc))
    assert has_credentials() and resolve_mode("auto") == "online"
    no_wandb_env.setenv("WANDB_BASE_URL", "https://wandb.example.org")  # a key for another host is no login
    assert not has_credentials() and resolve_mode("auto") == "offline"
    netrc.write_text(f"machine wandb.example.org\n  login user\n  password {FAKE_KEY}\n")
    assert resolve_mode("auto") == "online"


# --------------------------------------------------------------------------- the tracker
def _all_bytes(root: Path):
    for f in root.rglob("*"):
        if f.is_file() and not f.is_symlink():
            yield f, f.read_bytes()


def test_tracker_disabled_writes_nothing(no_wandb_env, tmp_path):
    no_wandb_env.setenv("WANDB_DIR", str(tmp_path / "wb"))
    t = Tracker(to_dict(Config()), WandbConfig(mode="disabled"), tmp_path / "runs" / "r0")
    assert t.mode == "disabled" and t.run_id == "" and not t.active
    t.log({"stage": "gan", "gan/d_loss": 1.0, "images_seen": 16}, step=16)
    t.log_table("params/table", [{"network": "g", "total_params": 3}])
    t.summary({"eval/score": 0.5})
    t.finish(0)
    assert not (tmp_path / "wb").exists() and not (tmp_path / "runs").exists()


def test_tracker_offline_run_folder_and_no_api_key(no_wandb_env, tmp_path):
    from PIL import Image
    wb = tmp_path / "chosen-wandb-dir"
    no_wandb_env.setenv("WANDB_DIR", str(wb))
    no_wandb_env.setenv("WANDB_API_KEY", FAKE_KEY)  # present, but offline mode never sends or stores it
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    cfg = Config()
    cfg.wandb.mode, cfg.wandb.group, cfg.run.name = "offline", "g1", "r1"
    logs: list[str] = []
    t = Tracker(to_dict(cfg), cfg.wandb, run_dir, log=logs.append)
    assert t.mode == "offline" and t.active and t.run_id
    assert os.environ["WANDB_CACHE_DIR"].startswith(str(wb))  # W&B's cache inside the project while alive
    for i in range(3):
        t.log({"stage": "gan", "epoch": i, "images_seen": 16 * (i + 1), "val/kid": 0.1 / (i + 1)}, step=16 * (i + 1))
    Image.new("RGB", (8, 8)).save(run_dir / "grid.png")
    t.log_image("samples/fixed_grid", run_dir / "grid.png", ["a red flower"], step=48)
    t.log_table("params/table", [{"network": "generator", "total_params": 10}])
    (run_dir / "best.pt").write_bytes(b"not really a checkpoint")
    t.log_artifact(run_dir / "best.pt", "model-r1", ["best"], metadata={"eval/score": 0.5})
    t.summary({"eval/score": 0.5, "status": "finished"})
    t.finish(0)
    assert "WANDB_CACHE_DIR" not in os.environ and "WANDB_CONFIG_DIR" in os.environ  # restored
    runs = list((wb / "wandb").glob(f"offline-run-*-{t.run_id}"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), list(wb.rglob("*"))
    assert Path(t.sync_dir).resolve() == runs[0].resolve()
    assert any("wandb sync" in m for m in logs)
    for f, data in _all_bytes(tmp_path):
        assert FAKE_KEY.encode() not in data, f"API key written to {f}"
    rec = _inspect(runs[0])
    assert rec["run_group"] == "g1" and rec["display_name"] == "r1"
    assert rec["config"]["update"]["train.lr_g"] == cfg.train.lr_g  # flat dotted keys, as sweeps name them


def _inspect(run_folder: Path) -> dict:
    """The run record of an offline run (its group, name and config), read with `wandb leet inspect`."""
    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run([str(wandb_cli), "leet", "inspect", "--json", str(run_folder)], capture_output=True,
                         text=True, timeout=60, env=_child_env()).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return next(r["run"] for r in rows if r.get("type") == "run")


def _offline_summary(run_folder: Path) -> tuple[dict, list[str]]:
    """The run summary of an offline W&B run (every summary update in its .wandb log, in order, nulls kept) and
    its console lines, read back with `wandb leet inspect --json`."""
    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run([str(wandb_cli), "leet", "inspect", "--json", str(run_folder)], capture_output=True,
                         text=True, timeout=60, env=_child_env()).stdout
    summary, console = {}, []
    for rec in (json.loads(line) for line in out.splitlines() if line.startswith("{")):
        summary.update((rec.get("summary") or {}).get("update") or {})
        console += [line for line in (rec.get("output_raw") or rec.get("output") or {}).get("line", "").splitlines()]
    return summary, console


def test_offline_run_summary_holds_the_readme_metrics(tmp_path, mini_root, mini_cache):
    """A tiny run in offline mode: its W&B summary holds every metric of the README's table (the registered eval/*
    keys, null where unavailable), eval/score, the best val/kid under its goal, and the console went to the Logs."""
    from evaluation.report import summary_goals, summary_values
    runs = tmp_path / "runs"
    p = subprocess.run([sys.executable, "run_experiment.py", *_trial_args(mini_root, mini_cache)[:4],
                        "--train.threads=1", f"--run.out_dir={runs}", "--run.name=wb", "--wandb.mode=offline"],
                       cwd=REPO, env=_child_env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    local = json.loads((runs / "wb" / "summary.json").read_text())
    keys = set(summary_values({}))  # the same names whatever the report holds
    assert {"eval/knn_all", "eval/knn_test", "eval/kid", "eval/class_consistency_evaluator", "eval/judge_test_own",
            "eval/judge_test_all", "eval/judge_train_all", "eval/ms_ssim", "eval/grid_contrast",
            "eval/caption_colour"} <= keys
    readme = (REPO / "README.md").read_text()
    assert [k for k in sorted(keys) if f"`{k}`" not in readme] == []  # the README names every summary key
    (folder,) = (runs / "wandb").glob(f"offline-run-*-{local['tracker_run_id']}")
    summary, console = _offline_summary(folder)
    for key in (*keys, "eval/score"):
        assert key in summary and summary[key] == local[key], key
    assert isinstance(summary["eval/kid"], float) and summary["eval/judge_test_all"] is None  # tiny: judge off
    assert summary_goals()["eval/kid"] == "min" and summary_goals()["eval/knn_all"] == "max"
    kids = [r["val/kid"] for r in map(json.loads, (runs / "wb" / "stats.jsonl").read_text().splitlines())
            if "val/kid" in r]
    assert summary["val/kid"] == {"min": min(kids), "last": kids[-1]}  # define_metric: the best, not only the last
    assert any(line.startswith("parameters: ") for line in console), console[:20]  # the Logs tab has the console
    assert (folder / "files" / "output.log").is_file()


def test_tracker_failure_never_raises(no_wandb_env, tmp_path):
    t = Tracker(to_dict(Config()), WandbConfig(mode="disabled"), tmp_path / "r")

    class Broken:
        def log(self, *a, **k):
            raise ConnectionError("W&B is down")
    t.run, t.mode = Broken(), "offline"
    logs = []
    t.log_fn = logs.append
    with pytest.warns(UserWarning, match="W&B is down"):
        t.log({"gan/d_loss": 1.0})
    assert t.run is None and "training continues" in logs[0]
    t.log({"gan/d_loss": 1.0})
    t.summary({"eval/score": 1.0})
    t.finish(1)


def test_flatten_config_matches_sweep_names():
    flat = flatten_config(to_dict(Config()))
    params = load_sweep(REPO / "sweep.yaml")["parameters"]
    assert set(params) <= set(flat)


# --------------------------------------------------------------------------- local sweep driver
def _trial_args(mini_root, mini_cache) -> list[str]:
    return ["--config", "experiments/tiny.yaml", f"--data.cache={mini_cache}", f"--data.root={mini_root}", *SHORT]


def _index(folder: Path) -> dict:
    return json.loads((folder / "index.json").read_text())


@pytest.mark.skipif(torch.cuda.is_available(), reason="the failing trial asks for CUDA on a machine without it")
def test_grid_sweep_with_crashing_trial_and_best_run(tmp_path, mini_root, mini_cache):
    from PIL import Image
    from core.io import load_checkpoint
    sweep_file = _write(tmp_path / "grid.yaml", {
        "program": "run_experiment.py", "method": "grid", "metric": {"name": "eval/score", "goal": "maximize"},
        # the middle value passes the sweep's checks (a valid device name) but the runner rejects it on a machine
        # without CUDA: exit 2, the sweep goes on
        "parameters": {"train.device": {"values": ["cpu", "cuda", "auto"]}}})
    runs = tmp_path / "runs"
    # an API key in the environment (offline runs never use it) must not end up in any file
    p = _sweep([str(sweep_file), "--runs-dir", str(runs), "--", *_trial_args(mini_root, mini_cache)],
               WANDB_API_KEY=FAKE_KEY)
    assert p.returncode == 0, p.stdout + p.stderr
    folder = Path(p.stdout.strip().splitlines()[-1])
    for f, data in _all_bytes(runs):
        assert FAKE_KEY.encode() not in data, f"API key written to {f}"
    assert folder.parent == runs / "sweeps" and folder.is_dir()
    index = _index(folder)
    sid = index["sweep_id"]
    assert folder.name == sid and index["method"] == "grid" and index["metric"]["name"] == "eval/score"
    trials = index["trials"]
    assert [t["params"]["train.device"] for t in trials] == ["cpu", "cuda", "auto"]
    assert [t["status"] for t in trials] == ["finished", "failed", "finished"]
    assert [t["name"] for t in trials] == [f"{sid}-1", f"{sid}-2", f"{sid}-3"]
    bad = trials[1]
    assert bad["returncode"] == 2 and "train.device" in bad["error"] and bad["checkpoint"] is None
    for t in (trials[0], trials[2]):
        assert isinstance(t["metric"], float) and t["returncode"] == 0
        assert (folder / t["checkpoint"]).is_file() and (folder / t["run_dir"] / "summary.json").is_file()
        assert t["run_dir"] == f"trials/{t['name']}"
        assert f"--train.device={t['params']['train.device']}" in t["command"]
        assert len(t["history"]) == 1  # one val/kid per GAN validation
        rec = _inspect(next((folder / "trials" / "wandb").glob(f"offline-run-*-{t['wandb_run_id']}")))
        assert rec["run_group"] == sid and rec["display_name"] == t["name"]
        assert rec["config"]["update"]["train.device"] == t["params"]["train.device"]
    best = max((trials[0], trials[2]), key=lambda t: t["metric"])
    assert index["best"]["name"] == best["name"] and index["best"]["metric"] == best["metric"]

    # best_run: the sweep folder, the winning run folder, and the whole runs folder agree
    res = best_run(folder)
    assert res["run_id"] == best["name"] and res["metric"] == best["metric"] and res["sweep_id"] == sid
    assert res["config"]["train"]["device"] == best["params"]["train.device"]
    assert res["metrics"]["eval/score"] == best["metric"] and Path(res["run_dir"]).is_dir()
    ckpt = load_checkpoint(Path(res["checkpoint"]))
    assert ckpt["config"]["train"]["device"] == best["params"]["train.device"]
    assert best_run(folder / best["run_dir"])["checkpoint"] == res["checkpoint"]
    assert best_run(runs)["checkpoint"] == res["checkpoint"]
    assert (folder / "trials.png").is_file()  # the driver drew its trials when it ended
    (folder / "trials.png").unlink()
    cli = subprocess.run([sys.executable, "-m", "tracking.best_run", str(folder)], cwd=REPO, env=_child_env(),
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    printed = json.loads(cli.stdout)
    assert printed["checkpoint"] == res["checkpoint"] and printed["trials_plot"] == str(folder / "trials.png")
    with Image.open(folder / "trials.png") as im:  # the swept parameter against eval/score
        assert im.size[0] > 300 and len(set(im.convert("L").getdata())) > 10
    # the failed trial (rejected before its run folder existed) is no run to pick
    assert not (folder / "trials" / bad["name"]).exists()
    with pytest.raises(BestRunError):
        best_run(folder / "trials" / bad["name"])


def test_bayes_sweep_continues_by_id(tmp_path, mini_root, mini_cache):
    sweep_file = _write(tmp_path / "bayes.yaml", {
        "program": "run_experiment.py", "method": "bayes", "metric": {"name": "eval/score", "goal": "maximize"},
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3},
        "parameters": {"train.lr_g": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-3},
                       "train.ssl_weight": {"min": 0.5, "max": 1.5},
                       "train.diffaug": {"values": ["color,translation,cutout", ""]}}})
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs), "--poll", "0.5", "--", *_trial_args(mini_root, mini_cache),
              "--wandb.mode=disabled"]
    p = _sweep([str(sweep_file), "--count", "1", "--sweep-id", "bayes-t", *common])
    assert p.returncode == 0, p.stdout + p.stderr
    p = _sweep([str(sweep_file), "--count", "1", "--sweep-id", "bayes-t", *common])
    assert p.returncode == 0, p.stdout + p.stderr
    folder = runs / "sweeps" / "bayes-t"
    assert p.stdout.strip().splitlines()[-1] == str(folder)
    index = _index(folder)
    assert [t["name"] for t in index["trials"]] == ["bayes-t-1", "bayes-t-2"]
    for t in index["trials"]:
        assert t["status"] == "finished" and isinstance(t["metric"], float)
        assert 1e-4 <= t["params"]["train.lr_g"] <= 1e-3 and 0.5 <= t["params"]["train.ssl_weight"] <= 1.5
        assert "--wandb.mode=disabled" in t["command"] and not (folder / "trials" / "wandb").exists()
    assert index["best"]["metric"] == max(t["metric"] for t in index["trials"])
    assert index["stop_metric"] == {"name": "val/kid", "goal": "minimize"}
    # another sweep file under the same id is refused
    other = _write(tmp_path / "other.yaml", dict(load_sweep(sweep_file), method="random"))
    p = _sweep([str(other), "--count", "1", "--sweep-id", "bayes-t", *common])
    assert p.returncode == 2 and "another sweep config" in p.stderr


FAKE_RUNNER = """
import json, os, signal, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
run_dir = os.path.join(args["run.out_dir"], args["run.name"])
os.makedirs(os.path.join(run_dir, "checkpoints"))
stop = []
signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
bad = args["train.seed"] == "1"
status = "finished"
for i in range(40):
    if stop:
        status = "interrupted"
        break
    with open(os.path.join(run_dir, "stats.jsonl"), "a") as f:
        f.write(json.dumps({"epoch": i, "val/kid": 5.0 if bad else 1.0 / (i + 1)}) + "\\n")
    time.sleep(0.25 if bad else 0.0)
open(os.path.join(run_dir, "checkpoints", "last.pt"), "w").write("resumable")
summary = {"status": status, "run_dir": run_dir}
if status == "finished":
    summary["eval/score"] = 0.1 if bad else 0.9
json.dump(summary, open(os.path.join(run_dir, "summary.json"), "w"))
"""


@pytest.mark.parametrize("where", ["sweep file", "--hyperband"])
def test_hyperband_stops_a_bad_trial(where, tmp_path):
    from PIL import Image
    """A stand-in runner (same arguments, stats.jsonl, SIGTERM -> status interrupted, exit 0): the second
    trial's val/kid stays far above the others', so hyperband stops it at its first band. Hyperband comes from
    the sweep file's early_terminate block, or from the driver's --hyperband (min_iter 3, eta 2: it compares a
    trial with two others; the project's sweep files have no block)."""
    runner = _write(tmp_path / "fake_runner.py", textwrap.dedent(FAKE_RUNNER))
    sweep = {"program": str(runner), "method": "grid", "metric": {"name": "eval/score", "goal": "maximize"},
             "parameters": {"train.seed": {"values": [0, 1] if where == "sweep file" else [0, 2, 1]}}}
    if where == "sweep file":
        sweep["early_terminate"] = {"type": "hyperband", "min_iter": 1, "eta": 3}
    sweep_file = _write(tmp_path / "hb.yaml", sweep)
    flag = ["--hyperband"] if where == "--hyperband" else []
    p = _sweep([str(sweep_file), "--runs-dir", str(tmp_path / "runs"), "--poll", "0.2", *flag], cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    index = _index(Path(p.stdout.strip().splitlines()[-1]))
    *goods, bad = index["trials"]
    for good in goods:
        assert good["status"] == "finished" and good["metric"] == 0.9 and len(good["history"]) == 40
    assert bad["status"] == "stopped" and bad["metric"] is None and "hyperband on val/kid" in bad["stop_reason"]
    assert 2 <= len(bad["history"]) < 40 and bad["checkpoint"].endswith("last.pt")
    assert index["best"]["name"] == goods[0]["name"] and index["early_terminate"]["type"] == "hyperband"
    folder = Path(p.stdout.strip().splitlines()[-1])
    assert (folder / "trials.png").is_file()  # the driver drew its trials when it ended
    (folder / "trials.png").unlink()
    from tracking.best_run import main as best_run_main
    assert best_run_main([str(folder)]) == 1  # the stand-in runner saves no best.pt: no best run to name ...
    with Image.open(folder / "trials.png") as im:  # ... but the trials are drawn, the stopped one among them
        assert im.size[0] > 300 and len(set(im.convert("L").getdata())) > 10


def test_best_run_errors(tmp_path, no_wandb_env):
    with pytest.raises(BestRunError, match="no finished run"):
        best_run(tmp_path)
    with pytest.raises(BestRunError, match="not a local sweep/run/runs folder"):
        best_run(tmp_path / "nope")
    with pytest.raises(BestRunError, match="runs/sweeps/<sweep_id>"):
        best_run("my-team/flower-t2i-gan/abcd1234")  # a W&B sweep path, but no login here
