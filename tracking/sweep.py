"""Hyperparameter sweeps: validation of a W&B sweep file and a local (offline) sweep driver.

Online, W&B runs the sweep (`wandb sweep sweep.yaml`, then `wandb agent ENTITY/PROJECT/ID`); its
agent starts `run_experiment.py` with each suggestion as `--section.key=value` arguments.

Offline, this module drives the same sweep file with W&B's open-source engine (`sweeps`):

    python -m tracking.sweep sweep.yaml --count 8 [--hyperband] [--sweep-id ID] [-- --config experiments/tiny.yaml ...]

Trials run one at a time as subprocesses of the sweep's `command` (default
`${interpreter} ${program} ${args}`), with the suggested arguments, then the arguments after `--`
(given to every trial), then `--wandb.group=ID --run.name=ID-N --run.out_dir=RUNS/sweeps/ID/trials`.
W&B runs are offline by default (`--wandb.mode=offline`, which the extra arguments may override),
grouped by the sweep id; upload them later with `wandb sync`.

Early termination (`--hyperband`, or an `early_terminate: hyperband` block in the sweep file) is
decided by the engine's `stop_runs` on each trial's `stats.jsonl` history of the stop metric (default
`val/kid`, minimized, one value per validation in the GAN stage, so hyperband's "iterations" are
validations). The sweep metric (`eval/score`) is only known when a run ends, so it cannot drive early
termination; for the same reason the project's sweep files have no early_terminate block (online, W&B
would apply it to eval/score and never stop a run). A trial to stop gets SIGTERM; the runner saves a
resumable checkpoint and exits 0 (status interrupted): "stopped".

`RUNS/sweeps/ID/index.json` records every trial (parameters, command, status
finished|failed|stopped, metric, checkpoint, run directory, log, stop-metric history) and the best
finished trial, and `trials.png` beside it plots them (tracking/trials.py); `--sweep-id ID` continues a
sweep. The last line printed is the sweep folder.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import signal
import string
import subprocess
import sys
import time
from pathlib import Path


from core.files import atomic_write_text, read_stats

from .sweep_file import (STOP_GOAL, STOP_METRIC, SWEEP_METRIC, SweepError, _engine, _py,  # noqa: F401
                         expand_command, load_sweep, preflight, validate_sweep)
from .trials import write_trials_plot

STATE_OF_STATUS = {"finished": "finished", "failed": "failed", "stopped": "killed", "running": "running"}
HYPERBAND = {"type": "hyperband", "min_iter": 3, "eta": 2}  # --hyperband: compared after 3, 6, 12 ... validations


def read_history(run_dir: Path, metric: str) -> list[float]:
    """Values of `metric` in a run's stats.jsonl, in order (a partly written last line is skipped)."""
    return [float(v) for v in (row.get(metric) for row in read_stats(run_dir))
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def _better(a: float, b: float, goal: str) -> bool:
    return a > b if goal == "maximize" else a < b


def _trial_metric(summary: dict, run_dir: Path, name: str, goal: str) -> float | None:
    v = summary.get(name)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    hist = read_history(run_dir, name)
    if not hist:
        return None
    return max(hist) if goal == "maximize" else min(hist)


class LocalSweep:
    """One local sweep folder `RUNS/sweeps/ID/` (index.json, trials/, logs/)."""

    def __init__(self, config: dict, sweep_id: str | None = None, runs_dir: str | Path = "runs",
                 extra: list[str] | None = None, sweep_file: str = "", stop_metric: str = STOP_METRIC,
                 stop_goal: str = STOP_GOAL, poll: float = 1.0, kill_after: float = 120.0,
                 early_terminate: dict | None = None, log=print):
        self.config, self.extra, self.log = config, list(extra or []), log
        self.early_terminate = config.get("early_terminate") or early_terminate  # the sweep file's block wins
        self.poll, self.kill_after = poll, kill_after
        self.metric = dict(config.get("metric") or {"name": SWEEP_METRIC, "goal": "maximize"})
        self.metric.setdefault("goal", "minimize")  # W&B's default goal
        self.stop = {"name": stop_metric, "goal": stop_goal}
        if sweep_id is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", sweep_id):
            raise SweepError(f"sweep id {sweep_id!r}: use letters, digits, '-' and '_'")
        self.sweep_id = sweep_id or "".join(secrets.choice(string.ascii_lowercase + string.digits)
                                            for _ in range(8))
        self.folder = Path(runs_dir) / "sweeps" / self.sweep_id
        self.index_path = self.folder / "index.json"
        if self.index_path.is_file():
            self.index = json.loads(self.index_path.read_text())
            if self.index.get("config") != json.loads(json.dumps(config)):
                raise SweepError(f"{self.index_path}: sweep {self.sweep_id} was started with another sweep "
                                 "config; start a new sweep (leave out --sweep-id) or restore that file")
            for t in self.index["trials"]:
                if t["status"] == "running":  # a driver that died mid-trial
                    t.update(status="failed", error="the sweep driver exited while this trial ran")
        else:
            self.index = {"sweep_id": self.sweep_id, "sweep_file": sweep_file, "method": config["method"],
                          "metric": self.metric, "early_terminate": self.early_terminate,
                          "stop_metric": self.stop if self.early_terminate else None,
                          "config": config, "extra_args": self.extra,
                          "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "trials": [], "best": None}

    # -- bookkeeping
    def rel(self, path: str | Path | None) -> str | None:
        """A path as stored in index.json: relative to the sweep folder when inside it."""
        if path is None:
            return None
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.folder.resolve()))
        except ValueError:
            return str(p)

    def write_index(self) -> None:
        done = [t for t in self.index["trials"] if t["status"] == "finished" and t.get("metric") is not None]
        best = None
        for t in done:
            if best is None or _better(t["metric"], best["metric"], self.metric["goal"]):
                best = t
        self.index["best"] = None if best is None else {
            k: best.get(k) for k in ("name", "n", "metric", "checkpoint", "run_dir", "params", "wandb_run_id")}
        self.index["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.index_path, json.dumps(self.index, indent=1, default=_py))

    def sweep_runs(self, running: dict | None = None, history: list[float] | None = None) -> list:
        sw = _engine()
        runs = []
        trials = list(self.index["trials"])
        if running is not None and not any(t is running for t in trials):
            trials.append(running)
        for t in trials:
            hist = history if t is running else t.get("history", [])
            summary = {self.metric["name"]: t["metric"]} if t.get("metric") is not None else {}
            # field aliases: sweeps 0.2.0 under pydantic 2 ignores the field names summary_metrics/history
            runs.append(sw.SweepRun(name=t["name"], state=STATE_OF_STATUS.get(t["status"], "failed"),
                                    config={k: {"value": v} for k, v in t["params"].items()},
                                    summaryMetrics=summary,
                                    sampledHistory=[{self.stop["name"]: v} for v in hist or []]))
        return runs

    # -- running
    def suggest(self) -> dict | None:
        suggestion = _engine().next_run(self.config, self.sweep_runs(), validate=True)
        if suggestion is None:
            return None
        return {k: _py(v["value"]) for k, v in suggestion.config.items()}

    def trial_argv(self, params: dict, name: str) -> list[str]:
        argv = expand_command(self.config, params)
        mode_given = any(str(a).startswith("--wandb.mode") for a in argv + self.extra)
        return (argv + ([] if mode_given else ["--wandb.mode=offline"]) + self.extra
                + [f"--wandb.group={self.sweep_id}", f"--run.name={name}",
                   f"--run.out_dir={self.folder / 'trials'}"])

    def run_trial(self, params: dict) -> dict:
        n = len(self.index["trials"]) + 1
        name = f"{self.sweep_id}-{n}"
        run_dir = self.folder / "trials" / name
        log_path = self.folder / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = self.trial_argv(params, name)
        trial = {"n": n, "name": name, "params": params, "command": argv[1:], "status": "running",
                 "metric": None, "checkpoint": None, "run_dir": self.rel(run_dir), "log": self.rel(log_path),
                 "history": [], "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.index["trials"].append(trial)
        self.write_index()
        self.log(f"[{self.sweep_id}] trial {name}: " + " ".join(f"--{k}={v}" for k, v in params.items()))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for k in ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):  # not a W&B agent's run
            env.pop(k, None)
        t0, stop_sent, stop_info, interrupted = time.time(), None, None, False
        stop_cfg = (dict(self.config, metric=self.stop, early_terminate=self.early_terminate)
                    if self.early_terminate else None)
        with open(log_path, "ab") as logf:
            proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=env)
            try:
                while proc.poll() is None:
                    try:
                        proc.wait(timeout=self.poll)
                    except subprocess.TimeoutExpired:
                        pass
                    if proc.poll() is not None:
                        break
                    trial["history"] = read_history(run_dir, self.stop["name"])
                    if stop_cfg is not None and stop_sent is None:
                        to_stop = _engine().stop_runs(stop_cfg, self.sweep_runs(trial, trial["history"]))
                        mine = [r for r in to_stop if r.name == name]
                        if mine:
                            stop_info = ((mine[0].early_terminate_info or {}).get("lines") or [""])[-1]
                            self.log(f"[{self.sweep_id}] early termination of {name} ({self.stop['name']}): "
                                     f"{stop_info}")
                            proc.send_signal(signal.SIGTERM)
                            stop_sent = time.time()
                    if stop_sent is not None and time.time() - stop_sent > self.kill_after:
                        proc.kill()
            except KeyboardInterrupt:
                interrupted = True
                self.log(f"[{self.sweep_id}] interrupted: stopping {name} (it saves a resumable checkpoint)")
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.kill_after)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        rc = proc.returncode
        summary = {}
        if (run_dir / "summary.json").is_file():
            try:
                summary = json.loads((run_dir / "summary.json").read_text())
            except json.JSONDecodeError:
                summary = {}
        trial["history"] = read_history(run_dir, self.stop["name"])
        trial.update(returncode=rc, seconds=round(time.time() - t0, 2),
                     wandb_run_id=summary.get("tracker_run_id") or None)
        status = summary.get("status")
        if rc == 0 and status == "finished":
            trial["status"] = "finished"
            trial["metric"] = _trial_metric(summary, run_dir, self.metric["name"], self.metric["goal"])
            ckpt = run_dir / "checkpoints" / "best.pt"
            trial["checkpoint"] = self.rel(ckpt) if ckpt.is_file() else summary.get("best_checkpoint")
        elif rc == 0 and status == "interrupted":
            trial["status"] = "stopped"
            trial["checkpoint"] = self.rel(run_dir / "checkpoints" / "last.pt")  # resumable: --run.resume
            trial["stop_reason"] = (f"early_terminate hyperband on {self.stop['name']}: {stop_info}" if stop_sent
                                    else "interrupted by the user" if interrupted else "interrupted by a signal")
        else:
            trial["status"] = "failed"
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:] if log_path.is_file() else []
            trial["error"] = f"exit code {rc}" + (f": {' | '.join(tail)}" if tail else "")
        self.write_index()
        shown = f" {self.metric['name']}={trial['metric']:.4g}" if trial.get("metric") is not None else ""
        self.log(f"[{self.sweep_id}] {name} {trial['status']}{shown} ({trial['seconds']:.1f}s)"
                 + (f" - {trial['error']}" if trial["status"] == "failed" else ""))
        if interrupted:
            raise KeyboardInterrupt
        return trial

    def run(self, count: int | None) -> list[dict]:
        if count is None and self.config["method"] != "grid":
            raise SweepError(f"--count is required for method '{self.config['method']}' (it never runs out)")
        self.write_index()
        done: list[dict] = []
        target = self.metric.get("target")
        while count is None or len(done) < count:
            params = self.suggest()
            if params is None:
                self.log(f"[{self.sweep_id}] grid exhausted after {len(self.index['trials'])} trials")
                break
            done.append(self.run_trial(params))
            best = self.index["best"]
            if target is not None and best and not _better(float(target), best["metric"], self.metric["goal"]):
                self.log(f"[{self.sweep_id}] metric target {target} reached by {best['name']}")
                break
        return done


def run_sweep(sweep_file: str | Path, count: int | None = None, sweep_id: str | None = None,
              extra: list[str] | None = None, runs_dir: str | Path = "runs", **kwargs) -> Path:
    """Validate `sweep_file`, run up to `count` trials; returns the sweep folder."""
    config = validate_sweep(load_sweep(sweep_file), source=str(sweep_file))
    preflight(config, list(extra or []))
    sweep = LocalSweep(config, sweep_id, runs_dir, extra, sweep_file=str(sweep_file), **kwargs)
    sweep.run(count)
    sweep.log(f"[{sweep.sweep_id}] trials: {write_trials_plot(sweep.folder)}")
    return sweep.folder


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="python -m tracking.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_file", help="W&B sweep YAML (e.g. sweep.yaml)")
    p.add_argument("--count", type=int, help="trials to run now (grid: default all remaining)")
    p.add_argument("--sweep-id", help="continue (or name) the local sweep RUNS/sweeps/ID")
    p.add_argument("--runs-dir", default="runs", help="runs folder (default: runs)")
    p.add_argument("--hyperband", action="store_true",
                   help="stop poor trials early on their --stop-metric history (hyperband, min_iter 3, eta 2), "
                        "unless the sweep file has its own early_terminate block")
    p.add_argument("--stop-metric", default=STOP_METRIC, help=f"early-termination metric (default {STOP_METRIC})")
    p.add_argument("--stop-goal", default=STOP_GOAL, choices=("minimize", "maximize"))
    p.add_argument("--poll", type=float, default=1.0, help="seconds between early-termination checks")
    p.add_argument("--kill-after", type=float, default=120.0, help="seconds from SIGTERM to SIGKILL")
    p.add_argument("--validate-only", action="store_true", help="check the sweep file and exit")
    args = p.parse_args(argv)
    if args.count is not None and args.count < 1:
        p.error("--count must be at least 1")
    try:
        if args.validate_only:
            cfg = validate_sweep(load_sweep(args.sweep_file), source=args.sweep_file)
            preflight(cfg, extra)
            print(f"{args.sweep_file}: valid {cfg['method']} sweep over {len(cfg['parameters'])} parameters")
            return 0
        folder = run_sweep(args.sweep_file, args.count, args.sweep_id, extra, args.runs_dir,
                           stop_metric=args.stop_metric, stop_goal=args.stop_goal, poll=args.poll,
                           kill_after=args.kill_after, early_terminate=HYPERBAND if args.hyperband else None)
    except SweepError as e:
        print(f"sweep error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sweep interrupted; continue it with --sweep-id", file=sys.stderr)
        return 130
    index = json.loads((folder / "index.json").read_text())
    ran = index["trials"]
    best = index["best"]
    print(f"{len(ran)} trials: " + ", ".join(f"{s}={sum(t['status'] == s for t in ran)}"
                                            for s in ("finished", "stopped", "failed")))
    if best:
        print(f"best: {best['name']} {index['metric']['name']}={best['metric']:.4g} checkpoint "
              f"{folder / best['checkpoint'] if best['checkpoint'] else None}")
    print(folder)
    return 0 if any(t["status"] != "failed" for t in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
