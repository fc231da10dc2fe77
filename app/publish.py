"""Publish a finished run's results: the files that let anyone re-score its images, copied into results/<run-id>/.

    python -m app.publish runs/<id> [--out results] [--machine "one NVIDIA H100"]

Copies config.yaml, summary.json, stats.jsonl, eval/metrics.json and eval/samples.npz (the images generated from
the unseen classes' captions, with their labels and captions: ~2 MB) and writes machine.json (what the run ran on:
meta.json's device, torch, threads and commit, plus --machine's words). Nothing is written unless every file is
there; the copy is made in a temporary folder and renamed into place, so results/<run-id>/ is never half-written.
Exit 2 with one `error:` line for a missing run, an unfinished run or a missing file.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

FILES = ("config.yaml", "summary.json", "stats.jsonl", "eval/metrics.json", "eval/samples.npz")


class PublishError(ValueError):
    """The run cannot be published; the message names the folder or file."""


def publish(run_dir: Path, out_root: Path, machine: str = "") -> Path:
    """Copy the run's FILES into out_root/<run name>/ atomically; returns that folder. PublishError otherwise."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PublishError(f"{run_dir}: no such run folder")
    missing = [f for f in FILES if not (run_dir / f).is_file()]
    if missing:
        raise PublishError(f"{run_dir}: missing {', '.join(missing)} (a finished, evaluated run has them)")
    summary = json.loads((run_dir / "summary.json").read_text())
    if summary.get("status") != "finished":
        raise PublishError(f"{run_dir / 'summary.json'}: status {summary.get('status')!r}, not 'finished'")
    meta = json.loads((run_dir / "meta.json").read_text()) if (run_dir / "meta.json").is_file() else {}
    dest = Path(out_root) / run_dir.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{run_dir.name}-") as tmp:
        for f in FILES:
            (Path(tmp) / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run_dir / f, Path(tmp) / f)
        info = {k: meta.get(k) for k in ("device", "torch", "threads", "git_commit", "world_size")}
        (Path(tmp) / "machine.json").write_text(json.dumps({**info, "machine": machine}, indent=1) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        Path(tmp).rename(dest)
        Path(tmp).mkdir()  # TemporaryDirectory removes its folder on exit
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.publish", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a finished run folder, runs/<id>")
    p.add_argument("--out", default="results", help="where results/<run-id>/ goes (default: results)")
    p.add_argument("--machine", default="", help="the machine it ran on, in words (kept in machine.json)")
    args = p.parse_args(argv)
    try:
        dest = publish(Path(args.run), Path(args.out), args.machine)
    except (PublishError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"published {args.run} -> {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
