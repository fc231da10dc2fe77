"""Atomic writes: the one place that says how a file is written. Every file the project writes for later reading
(checkpoints, the data cache, evaluator weights, sweep indexes, metrics, summaries) goes through `atomic_write`: a
temp file in the same folder, then a rename, so a reader never sees half a file and an interrupted write leaves the
old one in place; `check_writable`, the check of an output folder before any long work; and the one rule for which
checkpoint a run folder means (`resolve_checkpoint`). No torch here, so light tools (the sweep driver, best-run
retrieval) can use it."""
from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` to fill a temp file beside `path`, then rename it onto `path` (same file system, so the
    rename is atomic). The temp file is removed if `write` fails, and one of a process that no longer runs (killed
    mid-write) by the next write of `path`; the parent folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):  # a killed writer's (SIGKILL skips finally)
        if not _process_alive(stale.name.rsplit("-", 1)[1]):
            stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _process_alive(pid: str) -> bool:
    """Whether the process `pid` (a temp file's suffix) still runs; True when unsure (not a number, not ours)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, OSError):
        return True
    return True


class OutputError(ValueError):
    """An output path that cannot be written (a read-only folder, a file where a folder should be)."""


def check_writable(folder: str | Path) -> Path:
    """Check, before any long work, that files can be written in `folder`: in it when it exists, else in its
    nearest existing parent (where it would be created). Nothing is left behind; OutputError naming `folder`."""
    folder = probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{folder}: cannot write there ({probe} is a file, not a folder)")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise OutputError(f"{folder}: cannot write there ({probe}: {e.strerror or type(e).__name__})") from None
    return folder


def atomic_write_text(path: str | Path, text: str) -> Path:
    """`atomic_write` of a text file."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def read_stats(run_dir: str | Path) -> list[dict]:
    """The rows of a run folder's stats.jsonl (one JSON object per logged step or epoch), in order; [] when the
    file is absent; a partly written or unreadable line (a run still writing) is skipped."""
    try:
        lines = (Path(run_dir) / "stats.jsonl").read_text().splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


BEST_THEN_LAST = ("best.pt", "last.pt")  # what evaluation, generation and train.encoders_from read from a run
LAST = ("last.pt",)  # what --run.resume continues from


class CheckpointError(ValueError):
    """A checkpoint that this code cannot load (missing, corrupt, other version)."""


def resolve_checkpoint(path: str | Path, prefer: tuple[str, ...] = BEST_THEN_LAST) -> Path:
    """A checkpoint file as it is; a run folder -> the first of `prefer` in its checkpoints/. CheckpointError
    naming the folder when it holds none of them, or when the path does not exist."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint not found")
    for name in prefer:
        if (path / "checkpoints" / name).is_file():
            return path / "checkpoints" / name
    raise CheckpointError(f"{path / 'checkpoints'}: no {' or '.join(prefer)} in this run folder")


def run_dir_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint file belongs to (RUN/checkpoints/x.pt -> RUN; else the file's folder)."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
