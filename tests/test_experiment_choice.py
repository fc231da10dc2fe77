"""`make run` without CONFIG: app.experiment picks default.yaml with CUDA and cpu.yaml without, and says which and
why in one line; both files exist and build."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.experiment import CPU_EXPERIMENT, GPU_EXPERIMENT, choose
from core.config import build_config

REPO = Path(__file__).resolve().parents[1]


def test_cuda_picks_the_gpu_experiment_and_says_why():
    path, why = choose(True, "Tesla T4")
    assert path == GPU_EXPERIMENT and "\n" not in why and GPU_EXPERIMENT in why and "Tesla T4" in why


def test_no_cuda_picks_the_cpu_protocol_and_says_why():
    path, why = choose(False)
    assert path == CPU_EXPERIMENT and "\n" not in why and CPU_EXPERIMENT in why and "no CUDA" in why


def test_both_experiments_build_within_the_pass_budget():
    for path in (GPU_EXPERIMENT, CPU_EXPERIMENT):
        cfg = build_config(str(REPO / path))
        assert cfg.train.encoder_epochs + cfg.train.gan_epochs <= 200


def test_the_command_prints_the_path_on_stdout_only():
    r = subprocess.run([sys.executable, "-m", "app.experiment"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() in (GPU_EXPERIMENT, CPU_EXPERIMENT)
    assert r.stderr.startswith("make run: ") and len(r.stderr.strip().splitlines()) == 1
