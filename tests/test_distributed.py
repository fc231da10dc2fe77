"""Multi-process training: 2 CPU processes (gloo), as `torchrun --nproc_per_node=2` would start them.

1. The gradient all-reduce is exact data parallelism: each process's gradient on its half of a batch,
   averaged, equals the one-process gradient on the whole batch.
2. `torchrun --nproc_per_node=2 run_experiment.py` trains the tiny experiment for a couple of steps:
   rank 0 alone writes the run folder (one stats line per step, one summary, checkpoints, eval) and
   both processes end with the same weights.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from core.io import load_checkpoint
from training.distributed import average_gradients

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)  # same network and batch on every process
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2))
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 2, (8,))
    torch.nn.functional.cross_entropy(net(x[rank::world]), y[rank::world]).backward()  # this process's half
    average_gradients(net.parameters(), world)
    torch.save([p.grad for p in net.parameters()], Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_average_gradients_equals_full_batch_gradient(tmp_path):
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2))
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 2, (8,))
    torch.nn.functional.cross_entropy(net(x), y).backward()
    g0, g1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for full, a, b in zip([p.grad for p in net.parameters()], g0, g1):
        assert torch.equal(a, b)  # every process steps with the same gradient
        assert torch.allclose(a, full, atol=1e-6)  # and it is the whole batch's gradient


def test_torchrun_two_cpu_processes(mini_root, mini_cache, tmp_path):
    out = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(_free_port()),
           "run_experiment.py", "--config", "experiments/tiny.yaml", f"--data.cache={mini_cache}",
           f"--data.root={mini_root}", f"--run.out_dir={out}", "--run.name=ddp", "--wandb.mode=disabled",
           "--train.device=cpu", "--train.max_steps=2"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run = out / "ddp"
    assert sorted(p.name for p in out.iterdir()) == ["ddp"]  # one run folder, named by rank 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["world_size"] == 2 and meta["threads"] == max(1, (os.cpu_count() or 1) // 2)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs"] == 3 and summary["steps"] == 6
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if any(k.startswith(("enc/", "gan/")) for k in r)]
    assert steps == list(range(1, 7))  # only rank 0 logs: each step once
    assert (run / "eval" / "metrics.json").is_file()
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["state"]["stage"] == "done"
    assert proc.stdout.count("parameters: ") == 1  # only rank 0 speaks
