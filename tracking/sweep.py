"""Hyperparameter sweeps: validation of a W&B sweep file and a local (offline) sweep driver.

Online, W&B runs the sweep (`wandb sweep sweep.yaml`, then `wandb agent ENTITY/PROJECT/ID`); its
agent starts `run_experiment.py` with each suggestion as `--section.key=value` arguments.

Offline, this module drives the same sweep file with W&B's open-source engine (`sweeps`):

    python -m tracking.sweep sweep.yaml --count 8 [--sweep-id ID] [-- --config experiments/tiny.yaml ...]

Trials run one at a time as subprocesses of the sweep's `command` (default
`${interpreter} ${program} ${args}`), with the suggested arguments, then the arguments after `--`
(given to every trial), then `--wandb.group=ID --run.name=ID-N --run.out_dir=RUNS/sweeps/ID/trials`.
W&B runs are offline by default (`--wandb.mode=offline`, which the extra arguments may override),
grouped by the sweep id; upload them later with `wandb sync`.

Early termination (`early_terminate: hyperband`) is decided by the engine's `stop_runs` on each
trial's `stats.jsonl` history of the stop metric (default `val/kid`, minimized, one value per
validation in the GAN stage, so hyperband's "iterations" are validations). The sweep metric
(`eval/score`) is only known when a run ends, so it cannot drive early termination. A trial to stop
gets SIGTERM; the runner saves a resumable checkpoint and exits 0 (status interrupted): "stopped".

`RUNS/sweeps/ID/index.json` records every trial (parameters, command, status
finished|failed|stopped, metric, checkpoint, run directory, log, stop-metric history) and the best
finished trial; `--sweep-id ID` continues a sweep. The last line printed is the sweep folder.
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
import warnings
from pathlib import Path
from typing import Any

import yaml

SWEEP_METRIC = "eval/score"  # == training.run.SWEEP_METRIC (not imported: that pulls in torch)
STOP_METRIC, STOP_GOAL = "val/kid", "minimize"
METHODS = ("grid", "random", "bayes")
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
ARG_MACROS = ("${args}", "${args_no_equals}")  # the formats run_experiment.py parses
OTHER_ARG_MACROS = ("${args_no_hyphens}", "${args_no_boolean_flags}", "${args_json}", "${args_json_file}",
                    "${args_append_hydra}", "${args_override_hydra}")
RESERVED_SECTIONS = ("run", "wandb")  # set by the sweep machinery, not hyperparameters
DISCRETE_GRID_TYPES = ("param_single_value", "param_categorical", "param_int_uniform", "param_quniform")
STATE_OF_STATUS = {"finished": "finished", "failed": "failed", "stopped": "killed", "running": "running"}


class SweepError(ValueError):
    """A sweep file or driver request that cannot work; the message names the problem."""


def _engine():
    with warnings.catch_warnings():  # sweeps 0.2.0 uses pydantic-v1 config names
        warnings.simplefilter("ignore")
        import sweeps
    return sweeps


# ----------------------------------------------------------------------------------- validation
def load_sweep(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SweepError(f"{path}: malformed YAML: {e}") from None
    if not isinstance(data, dict):
        raise SweepError(f"{path}: expected a mapping (method, metric, parameters, ...) at the top level")
    return data


def _py(value: Any) -> Any:
    """numpy scalars -> Python values (for command lines and JSON)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _samples(name: str, spec: dict, method: str, source: str) -> list:
    """Values of a parameter to type-check against the runner's config."""
    import jsonschema
    _engine()
    from sweeps.params import HyperParameter
    try:
        hp = HyperParameter(name, spec)
    except (jsonschema.ValidationError, ValueError) as e:
        msg = getattr(e, "message", None) or str(e)
        raise SweepError(f"{source}: parameter '{name}': invalid specification {spec} "
                         f"({msg.splitlines()[0]})") from None
    if method == "grid" and hp.type not in DISCRETE_GRID_TYPES:
        dist = hp.config.get("distribution", hp.type.replace("param_", ""))
        raise SweepError(f"{source}: method 'grid' cannot search the continuous range of '{name}' "
                         f"(distribution {dist}); list the grid points with `values: [...]`")
    if "values" in hp.config:
        return list(hp.config["values"])
    if "value" in hp.config:
        return [hp.config["value"]]
    out = []
    for q in (0.0, 0.137, 0.5, 0.863, 1.0):  # bounds and interior points: catches floats for int keys
        v = _py(hp.ppf(q))
        if isinstance(v, float) and not math.isfinite(v):
            continue
        out.append(v)
    return out


def validate_sweep(config: dict, source: str = "sweep") -> dict:
    """Check a sweep config before any trial runs; raise SweepError naming the problem.

    Checks the method, the metric (bayes and early termination need one), each parameter (a dotted
    key the runner's typed config knows, every value / range end of the right type, no continuous
    range in a grid, not a run.* / wandb.* key), the command (must pass `${args}`), then W&B's own
    sweep schema. Returns the config unchanged.
    """
    from training.config import Config, ConfigError, set_value
    if not isinstance(config, dict):
        raise SweepError(f"{source}: expected a mapping at the top level")
    method = config.get("method")
    if method not in METHODS:
        raise SweepError(f"{source}: unknown method {method!r} (grid | random | bayes)")
    metric = config.get("metric")
    if metric is not None:
        if not isinstance(metric, dict) or not metric.get("name"):
            raise SweepError(f"{source}: metric must be a mapping with a name, e.g. {{name: {SWEEP_METRIC}, "
                             "goal: maximize}")
        if metric.get("goal", "minimize") not in ("minimize", "maximize"):
            raise SweepError(f"{source}: metric goal {metric.get('goal')!r} must be minimize or maximize")
    if method == "bayes" and metric is None:
        raise SweepError(f"{source}: method 'bayes' needs a metric to optimize, e.g. "
                         f"metric: {{name: {SWEEP_METRIC}, goal: maximize}}")
    if config.get("early_terminate") is not None:
        et = config["early_terminate"]
        if metric is None:
            raise SweepError(f"{source}: early_terminate needs a metric section")
        if not isinstance(et, dict) or et.get("type") != "hyperband":
            raise SweepError(f"{source}: early_terminate type must be hyperband, got {et!r}")
        if "min_iter" not in et and not ("max_iter" in et and "s" in et):
            raise SweepError(f"{source}: hyperband early_terminate needs min_iter (or max_iter and s)")
    params = config.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SweepError(f"{source}: 'parameters' must map dotted config keys (e.g. train.lr_g) to "
                         "search specifications")
    base = Config()
    for name, spec in params.items():
        if not isinstance(spec, dict):
            raise SweepError(f"{source}: parameter '{name}' must be a mapping (values: [...], or min/max)")
        if "parameters" in spec:
            raise SweepError(f"{source}: parameter '{name}' nests parameters; use flat dotted names such as "
                             f"'{name}.key' (the runner takes --section.key=value)")
        if str(name).split(".")[0] in RESERVED_SECTIONS:
            raise SweepError(f"{source}: parameter '{name}' is set by the sweep machinery (run.*, wandb.*) and "
                             "cannot be searched")
        for value in _samples(str(name), spec, method, source):
            if value is None or isinstance(value, (list, dict)):
                raise SweepError(f"{source}: parameter '{name}': value {value!r} cannot be passed as "
                                 f"--{name}=VALUE")
            try:
                set_value(base, str(name), value)
            except ConfigError as e:
                raise SweepError(f"{source}: parameter '{name}': {e}") from None
    command = config.get("command", DEFAULT_COMMAND)
    if not isinstance(command, list) or not all(isinstance(c, (str, int, float)) for c in command):
        raise SweepError(f"{source}: command must be a list of strings")
    if not any(c in ARG_MACROS for c in command):
        used = [c for c in command if c in OTHER_ARG_MACROS]
        raise SweepError(f"{source}: command must pass the parameters with ${{args}} (--key=value, what "
                         f"run_experiment.py reads)" + (f", not {used[0]}" if used else ""))
    if "${program}" in command and not config.get("program"):
        raise SweepError(f"{source}: command uses ${{program}} but no program is set (program: run_experiment.py)")
    violations = _engine().schema_violations_from_proposed_config(config)
    if violations:
        raise SweepError(f"{source}: " + "; ".join(violations))
    if config.get("early_terminate") is not None:
        try:  # the engine's own checks of the bands (e.g. max_iter too small for s and eta)
            _engine().stop_runs(config, [])
        except ValueError as e:
            raise SweepError(f"{source}: early_terminate: {e}") from None
    return config


# ----------------------------------------------------------------------------------- trials
def _split_extra(extra: list[str]) -> tuple[str | None, dict[str, str]]:
    """Extra trial arguments -> (--config file, dotted overrides); ConfigError on anything else."""
    from training.config import parse_overrides
    config, rest, i = None, [], 0
    while i < len(extra):
        a = extra[i]
        if a == "--config" and i + 1 < len(extra):
            config, i = extra[i + 1], i + 2
            continue
        if a.startswith("--config="):
            config = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    return config, parse_overrides(rest)


def expand_command(config: dict, params: dict, python: str = sys.executable) -> list[str]:
    """The sweep's command with the W&B agent's macros replaced (as `wandb agent` would on Linux)."""
    out: list[str] = []
    for tok in config.get("command", DEFAULT_COMMAND):
        tok = str(tok)
        if tok == "${env}":
            continue  # the agent adds /usr/bin/env; the interpreter is explicit here
        if tok == "${interpreter}":
            out.append(python)
        elif tok == "${program}":
            out.append(str(config["program"]))
        elif tok == "${args}":
            out += [f"--{k}={v}" for k, v in params.items()]
        elif tok == "${args_no_equals}":
            out += [x for k, v in params.items() for x in (f"--{k}", str(v))]
        else:
            out.append(tok)
    return out


def preflight(config: dict, extra: list[str]) -> None:
    """Checks of the driver's own inputs before any trial: program, --config file, extra arguments."""
    from training.config import ConfigError, build_config
    program = config.get("program")
    if program and not Path(program).is_file():
        raise SweepError(f"program {program!r} not found (relative to the current folder {Path.cwd().name}/)")
    literal = [str(c) for c in config.get("command", DEFAULT_COMMAND) if not str(c).startswith("${")]
    try:
        cfg_file, overrides = _split_extra(literal + list(extra))
    except ConfigError as e:
        raise SweepError(f"trial arguments: {e}") from None
    for key in overrides:
        if key in config["parameters"]:
            raise SweepError(f"extra argument --{key} would override the swept parameter '{key}'")
        if key in ("run.name", "run.out_dir", "run.resume", "wandb.group"):
            raise SweepError(f"extra argument --{key} is set by the sweep driver for each trial")
    if Path(program or "").name == "run_experiment.py":
        try:
            build_config(cfg_file, overrides)
        except ConfigError as e:
            raise SweepError(f"trial arguments: {e}") from None


def read_history(stats_path: Path, metric: str) -> list[float]:
    """Values of `metric` in a run's stats.jsonl, in order (a partly written last line is skipped)."""
    out = []
    try:
        lines = Path(stats_path).read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        v = row.get(metric) if isinstance(row, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out


def _better(a: float, b: float, goal: str) -> bool:
    return a > b if goal == "maximize" else a < b


def _trial_metric(summary: dict, run_dir: Path, name: str, goal: str) -> float | None:
    v = summary.get(name)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    hist = read_history(run_dir / "stats.jsonl", name)
    if not hist:
        return None
    return max(hist) if goal == "maximize" else min(hist)


class LocalSweep:
    """One local sweep folder `RUNS/sweeps/ID/` (index.json, trials/, logs/)."""

    def __init__(self, config: dict, sweep_id: str | None = None, runs_dir: str | Path = "runs",
                 extra: list[str] | None = None, sweep_file: str = "", stop_metric: str = STOP_METRIC,
                 stop_goal: str = STOP_GOAL, poll: float = 1.0, kill_after: float = 120.0, log=print):
        self.config, self.extra, self.log = config, list(extra or []), log
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
                          "metric": self.metric, "early_terminate": config.get("early_terminate"),
                          "stop_metric": self.stop if config.get("early_terminate") else None,
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
        tmp = self.index_path.with_name(f".index.json.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.index, indent=1, default=_py))
        os.replace(tmp, self.index_path)

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
        stop_cfg = dict(self.config, metric=self.stop) if self.config.get("early_terminate") else None
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
                    trial["history"] = read_history(run_dir / "stats.jsonl", self.stop["name"])
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
        trial["history"] = read_history(run_dir / "stats.jsonl", self.stop["name"])
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
                           kill_after=args.kill_after)
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
