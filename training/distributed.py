"""Data-parallel training over several processes (`torchrun --nproc_per_node=N run_experiment.py ...`).

Every process holds the same networks (same seed), takes its share of every global batch, and the
gradients are averaged across processes with one all-reduce per optimizer step — what
DistributedDataParallel does, written out so that the discriminator's R1 double-backward and the
several D passes per step need no special handling. Buffers (BatchNorm statistics) are broadcast from
rank 0 at the end of every epoch. gloo on CPU, nccl on GPU. Only rank 0 logs, checkpoints and evaluates.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


def setup() -> tuple[int, int]:
    """(rank, world_size); initialises the process group when launched by torchrun with WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(params, world: int) -> None:
    """All-reduce the .grad of `params` (one flat buffer) and divide by the number of processes."""
    grads = [p.grad for p in params if p.grad is not None]
    if world <= 1 or not grads:
        return
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat.div_(world)
    for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
        g.copy_(synced)


def broadcast_buffers(modules, world: int) -> None:
    """Make every process use rank 0's buffers (BatchNorm running statistics)."""
    if world <= 1:
        return
    for m in modules:
        for b in m.buffers():
            dist.broadcast(b, 0)


def broadcast_object(obj, world: int):
    """rank 0's `obj` on every process (e.g. the run directory name)."""
    if world <= 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_process(flag: bool, world: int) -> bool:
    """True on every process when `flag` is True on any of them (e.g. a SIGTERM seen by one)."""
    if world <= 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
