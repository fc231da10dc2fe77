"""Clocks, memory and machine facts for the benchmarks (benchmarks/run.py): nothing here knows the project."""
from __future__ import annotations

import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loop(fn: Callable[[], object], iters: int, warmup: int, device: torch.device) -> list[float]:
    """Seconds of each of `iters` calls of fn (synchronised), after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


def timed_once(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def peak_rss_mb() -> float:
    """Max resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def loadavg() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable, "torch": torch.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads(), "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
            "loadavg_start": loadavg()}
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
    return info


class Phases:
    """Per phase: wall seconds since the previous phase ended (or since construction), max RSS of the process
    at its end and, on CUDA, the max allocated memory since its `start` (the peak statistics are reset there)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}
        self.rss_after: dict[str, float] = {}
        self.cuda_peaks: dict[str, float] = {}
        self._clock = time.perf_counter()

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def end(self, name: str) -> None:
        self.rss_after[name] = peak_rss_mb()
        self.seconds[name] = time.perf_counter() - self._clock
        self._clock = time.perf_counter()
        if self.device.type == "cuda":
            self.cuda_peaks[name] = torch.cuda.max_memory_allocated(self.device) / 2 ** 20
