"""A fresh notebook runtime (Google Colab, or a clean clone without runs): install, data, and a run to analyse.

The notebook's first code cell clones the repository when it is not already inside it (that part cannot import
the project yet); everything after the clone is a function here, so it can be read and tested:

    install()                    pip install -r requirements.txt, keeping a CUDA torch the runtime already has
    ensure_data()                build data/flowers.h5 from the official downloads when it is missing
    best_or_train(SOURCE, ...)   the best finished run in SOURCE; when there is none, train one first

Nothing here is used by training; `run_experiment.py` is started as its own process, as from a terminal.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

TORCH_PACKAGES = ("torch", "torchvision")
# what a runtime without any run trains before the analysis: the GPU protocol where torch sees CUDA (within the
# hour of one Colab GPU), else the few-minute quick experiment
TRAIN_CONFIG_GPU, TRAIN_CONFIG = "experiments/default.yaml", "experiments/quick.yaml"


def train_config(cuda_available: bool | None = None) -> str:
    """The experiment `best_or_train` trains when there is no run: default.yaml with a GPU, quick.yaml without."""
    if cuda_available is None:
        import torch
        cuda_available = torch.cuda.is_available()
    return TRAIN_CONFIG_GPU if cuda_available else TRAIN_CONFIG


def requirement_name(line: str) -> str | None:
    """The package name of one requirements.txt line, lower-case ("torch==2.14.1  # x" -> "torch"); None for
    a blank or comment-only line."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    return re.split(r"[\s=<>~!\[;@]", text, maxsplit=1)[0].lower()


def requirements_to_install(lines: Iterable[str], keep_torch: bool) -> list[str]:
    """The requirement specifiers to pass to pip: every requirements.txt line without its comment, minus torch
    and torchvision when `keep_torch` (the runtime already has a CUDA build of torch, as Colab does: pip would
    otherwise replace it by the pinned version)."""
    out = []
    for line in lines:
        name = requirement_name(line)
        if name is None or (keep_torch and name in TORCH_PACKAGES):
            continue
        out.append(line.split("#", 1)[0].strip())
    return out


def installed_cuda_torch() -> str | None:
    """The version of an installed CUDA build of torch *with* torchvision (e.g. "2.9.0+cu126"), else None."""
    try:
        import torch
        import torchvision  # noqa: F401 - both must be there to keep them
    except ImportError:
        return None
    return torch.__version__ if torch.version.cuda else None


def install(requirements: str | Path = "requirements.txt", run: Callable = subprocess.run, log=print) -> list[str]:
    """pip install the project's requirements into this Python, keeping an installed CUDA torch; returns the
    specifiers installed."""
    kept = installed_cuda_torch()
    specs = requirements_to_install(Path(requirements).read_text().splitlines(), keep_torch=kept is not None)
    log(f"keeping the installed torch {kept}" if kept else "installing torch from requirements.txt")
    run([sys.executable, "-m", "pip", "install", "-q", *specs], check=True)
    return specs


def ensure_data(cache: str | Path = "data/flowers.h5", run: Callable = subprocess.run, log=print) -> Path:
    """Build the HDF5 cache from the official Oxford-102 downloads and the Reed et al. captions when it is not
    there yet (a few hundred MB, checked with md5 sums); returns its path."""
    cache = Path(cache)
    if cache.is_file():
        log(f"data: {cache} is there")
    else:
        log(f"data: downloading Oxford-102 and its captions into {cache} (a few minutes)")
        run([sys.executable, "-m", "data_utils.prepare", "--download", "--out", str(cache)], check=True)
    return cache


def train_command(source: str | Path, config: str = TRAIN_CONFIG, extra: str | Sequence[str] = ()) -> list[str]:
    """The command that trains `config` into the folder `source` (`extra`: more flags, a string or a list)."""
    extra = shlex.split(extra) if isinstance(extra, str) else list(extra)
    return [sys.executable, "run_experiment.py", "--config", config, f"--run.out_dir={source}", *extra]


def can_train_into(source: str | Path) -> bool:
    """True when `source` is a local folder, or a path that does not exist yet and is not a W&B sweep path
    (entity/project/sweep_id): a place a trained run can be written to."""
    from tracking.best_run import WANDB_PATH
    p = Path(source)
    return p.is_dir() or (not p.exists() and not WANDB_PATH.match(str(source)))


def best_or_train(source: str | Path, config: str | None = None, extra: str | Sequence[str] | None = None,
                  log=print) -> dict:
    """`tracking.best_run.best_run(source)`; when `source` is a local folder (or does not exist yet) without a
    finished run, first trains `config` into it (default `train_config()`: experiments/default.yaml with a GPU,
    experiments/quick.yaml without; or the environment variable ANALYSIS_TRAIN_CONFIG; ANALYSIS_TRAIN_ARGS adds
    flags), printing the run's log lines as they come.
    Any other source (a W&B sweep path, a summary.json) goes to best_run as it is."""
    from tracking.best_run import BestRunError, best_run
    if not can_train_into(source):
        return best_run(source)
    try:
        return best_run(source)
    except BestRunError as e:
        reason = str(e)
    config = config or os.environ.get("ANALYSIS_TRAIN_CONFIG") or train_config()
    extra = os.environ.get("ANALYSIS_TRAIN_ARGS", "") if extra is None else extra
    cmd = train_command(source, config, extra)
    log(f"no finished run to analyse ({reason}); training {config} first:\n  {shlex.join(cmd[1:])}")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            log(line.rstrip())
    if proc.returncode != 0:
        raise RuntimeError(f"training {config} failed (exit {proc.returncode}); its output is above")
    return best_run(source)
