"""Checkpoints: written atomically, loaded with weights_only=True, and the one rule for which checkpoint a run
folder means (`resolve_checkpoint`)."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from .files import BEST_THEN_LAST, LAST, CheckpointError, atomic_write, resolve_checkpoint, run_dir_of  # noqa: F401

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
    """torch.save, atomically: a checkpoint on disk is always whole."""
    atomic_write(path, lambda tmp: torch.save({"version": CHECKPOINT_VERSION, **payload}, tmp))


def load_checkpoint(path: str | Path, map_location="cpu", prefer: tuple[str, ...] = LAST) -> dict:
    """Load a checkpoint file, or a run folder's (`resolve_checkpoint` with `prefer`, by default its last.pt),
    with weights_only=True; CheckpointError naming the file when it is missing, corrupt or of another version."""
    path = resolve_checkpoint(path, prefer)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # torch raises several types for truncated/foreign files; its advice to retry with
        # weights_only=False (run whatever code the file holds) is wrong for a file of unknown origin: not repeated
        raise CheckpointError(f"{path}: not a readable checkpoint of this project (truncated, corrupt or another "
                              "kind of file); a run folder keeps two, checkpoints/best.pt and checkpoints/last.pt: "
                              "use the other one, or train again") from None
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version') if isinstance(ckpt, dict) else '?'}, "
                              f"this code reads version {CHECKPOINT_VERSION}")
    for key in ("config", "vocab", "networks", "g_ema"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint has no '{key}'")
    return ckpt
