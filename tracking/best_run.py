"""Find the best run and its checkpoint: `best_run(source) -> dict`, or from the shell

    python -m tracking.best_run SOURCE        # prints the result as JSON

SOURCE is one of
  * a local sweep folder `runs/sweeps/<id>` (its index.json: the best finished trial),
  * a run folder `runs/<run_id>` (its summary.json),
  * a runs folder holding many runs (every summary.json below it; the best finished run),
  * a W&B sweep path `entity/project/sweep_id` (online only: the sweep's best run by its metric,
    then that run's `model` artifact with alias `best`, downloaded under runs/artifacts/).

The result has at least run_id, metric (the sweep metric `eval/score`, higher is better, unless a
sweep says otherwise), metric_name, checkpoint (a .pt loadable with core.io.load_checkpoint),
config (the run's resolved config, nested), metrics (numeric summary values) and run_dir. For a local sweep folder
the command also draws RUNS/sweeps/<id>/trials.png (tracking/trials.py: each swept parameter against the sweep
metric) and names it as trials_plot.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

import yaml

from core.files import CheckpointError, resolve_checkpoint

from .sweep_file import SWEEP_METRIC
from .trials import write_trials_plot


class BestRunError(ValueError):
    """No best run can be found in SOURCE (the message says why)."""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _run_record(run_dir: Path, metric_name: str = SWEEP_METRIC) -> dict:
    """What a run folder says about itself: summary.json + config.yaml + its best checkpoint."""
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise BestRunError(f"{run_dir}: no summary.json (not a run folder, or the run never ended)")
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError as e:
        raise BestRunError(f"{summary_path}: unreadable ({e})") from None
    config = {}
    if (run_dir / "config.yaml").is_file():
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    try:
        ckpt = resolve_checkpoint(run_dir, ("best.pt",))
    except CheckpointError:  # as the runner wrote it (relative to its working folder)
        ckpt = Path(summary.get("best_checkpoint") or run_dir / "checkpoints" / "best.pt")
    return {"run_id": run_dir.name, "run_dir": str(run_dir.resolve()), "status": summary.get("status"),
            "metric_name": metric_name,
            "metric": summary.get(metric_name) if _number(summary.get(metric_name)) else None,
            "checkpoint": str(ckpt.resolve()) if ckpt.is_file() else None,
            "config": config, "metrics": {k: v for k, v in summary.items() if _number(v)},
            "wandb_run_id": summary.get("tracker_run_id") or None}


def _from_run(run_dir: Path) -> dict:
    rec = _run_record(run_dir)
    if rec["status"] != "finished":
        raise BestRunError(f"{run_dir}: run status is {rec['status']!r}, not finished")
    if rec["checkpoint"] is None:
        raise BestRunError(f"{run_dir}: no checkpoints/best.pt")
    return dict(rec, source="run")


def _from_sweep(folder: Path) -> dict:
    index = json.loads((folder / "index.json").read_text())
    best = index.get("best")
    if not best:
        statuses = [t.get("status") for t in index.get("trials", [])]
        raise BestRunError(f"{folder}: no finished trial with a {index.get('metric', {}).get('name')} value "
                           f"(trial statuses: {statuses or 'none'})")
    metric_name = index.get("metric", {}).get("name", SWEEP_METRIC)
    run_dir = folder / best["run_dir"]
    rec = _run_record(run_dir, metric_name)
    if best.get("checkpoint"):
        ckpt = folder / best["checkpoint"]
        rec["checkpoint"] = str(ckpt.resolve()) if ckpt.is_file() else rec["checkpoint"]
    if rec["checkpoint"] is None:
        raise BestRunError(f"{run_dir}: best trial {best['name']} has no checkpoint on disk")
    rec.update(source="sweep", sweep_id=index.get("sweep_id"), trial=best["name"], params=best.get("params", {}),
               metric=best["metric"], goal=index.get("metric", {}).get("goal", "maximize"))
    return rec


def _from_runs(folder: Path) -> dict:
    candidates = []
    for summary in sorted(folder.rglob("summary.json")):
        try:
            rec = _run_record(summary.parent)
        except BestRunError:
            continue
        if rec["status"] == "finished" and rec["metric"] is not None and rec["checkpoint"]:
            candidates.append(rec)
    if not candidates:
        raise BestRunError(f"{folder}: no finished run with {SWEEP_METRIC} and a best checkpoint below it")
    best = max(candidates, key=lambda r: r["metric"])
    return dict(best, source="runs", candidates=len(candidates))


WANDB_PATH = re.compile(r"^[\w.-]+/[\w.-]+/[\w-]+$")


def _from_wandb(path: str, download_root: str | Path | None = None) -> dict:
    """Online: the sweep's best run (W&B orders by the sweep metric) and its `model:best` artifact."""
    from .tracker import has_credentials, unflatten_config
    if os.environ.get("WANDB_MODE") in ("offline", "disabled") or not has_credentials():
        raise BestRunError(f"{path} looks like a W&B sweep path (entity/project/sweep_id), which needs W&B online "
                           "with credentials (`wandb login`, WANDB_MODE not offline/disabled). Offline, pass the "
                           "local sweep folder instead: runs/sweeps/<sweep_id>")
    entity, project, sweep_id = path.split("/")
    try:
        import wandb
        api = wandb.Api()
        sweep = api.sweep(path)
        run = sweep.best_run()
        if run is None:
            raise BestRunError(f"W&B sweep {path} has no runs")
        metric_name = (sweep.config.get("metric") or {}).get("name", SWEEP_METRIC)
        art = next((a for a in run.logged_artifacts() if a.type == "model" and "best" in a.aliases), None)
        if art is None:
            art = api.artifact(f"{entity}/{project}/model-{run.name}:best", type="model")
        root = Path(download_root or Path("runs") / "artifacts" / sweep_id / run.id)
        local = Path(art.download(root=str(root)))
        files = sorted(local.glob("*.pt"))
        summary = {k: v for k, v in dict(run.summary).items() if _number(v)}
        return {"source": "wandb", "sweep_id": sweep_id, "run_id": run.name, "wandb_run_id": run.id,
                "run_path": "/".join(run.path), "run_dir": None, "artifact_dir": str(local.resolve()),
                "status": run.state,
                "metric_name": metric_name, "metric": summary.get(metric_name),
                "checkpoint": str(files[0].resolve()) if files else None, "artifact": art.qualified_name,
                "config": unflatten_config({k: v for k, v in dict(run.config).items() if not k.startswith("_")}),
                "metrics": summary}
    except BestRunError:
        raise
    except Exception as e:  # noqa: BLE001 - network, permissions, missing artifact: one clear message
        raise BestRunError(f"W&B sweep {path}: {type(e).__name__}: {e}") from None


def best_run(source: str | Path, download_root: str | Path | None = None) -> dict:
    """The best run in SOURCE (see the module docstring)."""
    p = Path(source)
    if p.is_file() and p.name in ("index.json", "summary.json"):
        p = p.parent
    if p.is_dir():
        if (p / "index.json").is_file():
            return _from_sweep(p)
        if (p / "summary.json").is_file():
            return _from_run(p)
        return _from_runs(p)
    if WANDB_PATH.match(str(source)):
        return _from_wandb(str(source), download_root)
    raise BestRunError(f"{source}: not a local sweep/run/runs folder, nor a W&B sweep path entity/project/sweep_id")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tracking.best_run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="runs/sweeps/<id>, runs/<run_id>, runs/, or entity/project/sweep_id")
    p.add_argument("--download-root", help="where a W&B artifact is downloaded (default runs/artifacts/...)")
    args = p.parse_args(argv)
    sweep = Path(args.source).parent if Path(args.source).name == "index.json" else Path(args.source)
    plot = None
    if (sweep / "index.json").is_file():  # a local sweep: its trials in one picture, also when none finished
        try:
            plot = write_trials_plot(sweep)
        except (ValueError, KeyError, OSError) as e:
            print(f"warning: {sweep / 'trials.png'} not drawn ({type(e).__name__}: {e})", file=sys.stderr)
    try:
        result = best_run(args.source, args.download_root)
    except BestRunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if plot is not None:
        result["trials_plot"] = str(plot)
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
