"""Device, threads and process-wide runtime settings: the one place that picks the device."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import torch

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
LIMIT = 2**31 - 1  # mallopt takes an int: ~2 GiB


def pick_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA when present, else the CPU; "cpu", "cuda", "cuda:N" as named (RuntimeError when CUDA is
    asked for and absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name} asked for, but CUDA is not available")
    return dev


def set_threads(threads: int = 0, world: int = 1) -> int:
    """torch CPU threads: `threads`, or (0) the cores shared among `world` processes; returns the count."""
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // world))
    return torch.get_num_threads()


def git_commit() -> str:
    """The project's git commit, or "" outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def reuse_freed_memory() -> bool:
    """Keep freed CPU tensor memory in the process (glibc only); returns True when the setting was applied.

    PyTorch's CPU tensors come from the C library's malloc. glibc returns large freed blocks to the operating
    system at once (mmap/munmap, heap trimming), so every training step maps its activations afresh and
    page-faults on them: on a 2-core CPU this cost ~20 % of the step time. Raising glibc's mmap and trim
    thresholds keeps freed blocks for the next step. Nothing computed changes. A no-op on other systems and C
    libraries (macOS, Windows, musl); applies to the whole process.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_TRIM_THRESHOLD, LIMIT)) and bool(mallopt(M_MMAP_THRESHOLD, LIMIT))
