"""Atomic, resumable checkpoints that rebuild every network (loaded with weights_only=True)."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

CHECKPOINT_VERSION = 1


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
            "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])},
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Restore `rng_state()`; works whatever device the checkpoint was loaded onto (the states are CPU tensors)."""
    torch.set_rng_state(state["torch"].cpu())
    random.setstate((3, tuple(state["python"]), None))
    np.random.set_state(("MT19937", state["numpy"]["keys"].cpu().numpy().astype(np.uint32), state["numpy"]["pos"], 0, 0.0))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: Path, payload: dict) -> None:
    """torch.save to a temp file in the same folder, then rename: a checkpoint on disk is always whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save({"version": CHECKPOINT_VERSION, **payload}, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class CheckpointError(ValueError):
    """A checkpoint that this code cannot load (missing, corrupt, other version)."""


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    path = Path(path)
    if path.is_dir():  # a run directory: its last checkpoint
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated/foreign files
        raise CheckpointError(f"{path}: cannot load checkpoint ({e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version') if isinstance(ckpt, dict) else '?'}, "
                              f"this code reads version {CHECKPOINT_VERSION}")
    for key in ("config", "vocab", "networks", "g_ema"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint has no '{key}'")
    return ckpt
