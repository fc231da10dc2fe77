"""The training loop over the schedule's two stages (training/schedule.py): encoder epochs, then GAN epochs with the
encoders frozen. One epoch = one pass over the train-class training images (each drawn once, with one of its
captions chosen at random), whatever it updates.

The Trainer owns the networks, the run's state (stage, epoch, step, images seen, best metric), checkpoints and
logging; the encoder stage (training/encoder_stage.py) and the GAN stage (training/gan_stage.py) own their
optimizers and steps. Validation and sample grids: training/validation.py.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from core.config import AMP_MODES, to_dict
from core.io import CheckpointError, rng_state, save_checkpoint, set_rng_state
from core.runtime import reuse_freed_memory
from data_utils.dataset import FlowerData, ImageSet
from data_utils.text import Vocab
from models.build import build_networks

from .distributed import any_process, average_gradients, broadcast_buffers
from .encoder_stage import EncoderStage
from .gan_stage import GanStage
from .progress import TrainingProgress
from .schedule import FROZEN_IN_GAN, describe, phase_epochs
from .validation import fixed_inputs, sample_grid, validate


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """train.amp -> the autocast dtype of the training steps (None: float32). "auto": bf16 on GPUs with fast
    bf16 (compute capability >= 8), fp16 (with gradient scaling) on older ones such as the T4, float32 on the
    CPU. ValueError naming the value otherwise."""
    if amp not in AMP_MODES:
        raise ValueError(f"train.amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


class NonFiniteLoss(RuntimeError):
    """A loss became NaN/inf; the run stops and keeps its last good checkpoint."""


class Trainer:
    def __init__(self, cfg, data: FlowerData, run_dir: Path, device: torch.device, tracker=None,
                 resume: dict | None = None, log=print, rank: int = 0, world: int = 1):
        self.cfg, self.data, self.run_dir, self.device, self.log = cfg, data, Path(run_dir), device, log
        self.tracker, self.rank, self.world = tracker, rank, world
        tc = cfg.train
        if tc.reuse_host_memory:
            reuse_freed_memory()  # CPU steps ~20 % faster; process-wide, nothing computed changes
        torch.manual_seed(tc.seed)
        np.random.seed(tc.seed)
        self.nets = build_networks(cfg.model, len(data.vocab)).to(device)  # identical on every process
        if world > 1:
            torch.manual_seed(tc.seed + 1000 * rank)  # but each process draws its own noise and crops
        self.amp_dtype = amp_dtype(tc.amp, device)
        # fp16 needs loss scaling (one scaler per optimizer: they step at different times); bf16 does not
        self.scalers = {k: torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
                        for k in ("enc", "g", "d")}
        self.images = data.train.images.to(device)
        self.gan = GanStage(self)  # its EMA copy of G keeps the default memory layout
        if tc.channels_last:
            for _, m in self.nets.items():
                m.to(memory_format=torch.channels_last)
        # The conv-heavy forward passes of the training steps, optionally compiled (train.compile; on CUDA with
        # mode "reduce-overhead": CUDA graphs, so that small batches are not bound by kernel launches). The R1
        # penalty runs D eagerly: its double backward is not supported through compiled graphs.
        self.enc_fwd, self.synth_fwd = self.nets.encoder, self.nets.generator.synthesize
        self.d_features_fwd = self.nets.discriminator.features
        if tc.compile:
            mode = "reduce-overhead" if device.type == "cuda" else None
            self.enc_fwd, self.synth_fwd, self.d_features_fwd = (
                torch.compile(f, mode=mode) for f in (self.enc_fwd, self.synth_fwd, self.d_features_fwd))
        self.encoder = EncoderStage(self)
        self.epochs = phase_epochs(tc.encoder_epochs, tc.gan_epochs)
        self.state = {"stage": "encoder", "stage_epoch": 0, "epoch": 0, "step": 0, "step_in_epoch": 0,
                      "images_seen": 0, "best_metric": math.inf, "best_epoch": -1, "perm": None, "gan_steps": 0}
        self.fixed = fixed_inputs(data, cfg.model.noise_dim)
        self.stop_requested = False
        self._fit_start, self._seconds_before = None, 0.0  # train_seconds: this session's and earlier sessions' time
        # the live progress display: rank 0 on a terminal only (never in CI logs, tests, sweep trials, files)
        self.progress = TrainingProgress(self.epochs, enabled=rank == 0 and sys.stdout.isatty())
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.stats_path = self.run_dir / "stats.jsonl"
        if resume is not None:
            self.load_state_dict(resume)

    @property
    def g_ema(self):
        return self.gan.g_ema

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"config": to_dict(self.cfg), "vocab": self.data.vocab.itos, "split": self.data.split_record(),
                "networks": {name: m.state_dict() for name, m in self.nets.items()},
                "g_ema": self.g_ema.state_dict(),
                "optimizers": {"enc": self.encoder.opt.state_dict(), "g": self.gan.opt_g.state_dict(),
                               "d": self.gan.opt_d.state_dict()},
                "state": {**self.state, "train_seconds": self.train_seconds()}, "rng": rng_state(),
                "tracker_run_id": getattr(self.tracker, "run_id", "") or ""}

    def _require_same_vocab(self, ckpt: dict, source: str = "checkpoint") -> None:
        if Vocab(ckpt["vocab"]).itos != self.data.vocab.itos:
            raise CheckpointError(f"{source}: its vocabulary differs from the data's (different data config?)")

    def load_state_dict(self, ckpt: dict) -> None:
        self._require_same_vocab(ckpt)
        for name, m in self.nets.items():
            m.load_state_dict(ckpt["networks"][name])
        self.g_ema.load_state_dict(ckpt["g_ema"])
        self.encoder.opt.load_state_dict(ckpt["optimizers"]["enc"])
        self.gan.opt_g.load_state_dict(ckpt["optimizers"]["g"])
        self.gan.opt_d.load_state_dict(ckpt["optimizers"]["d"])
        self.state.update(ckpt["state"])
        set_rng_state(ckpt["rng"])

    def start_from_encoders(self, ckpt: dict, source: str = "checkpoint") -> None:
        """Take the source and text encoders of a run that finished stage 1 and begin at stage 2 (its
        `train.encoder_epochs` count as this run's first epochs). The vocabulary must be the same."""
        self._require_same_vocab(ckpt, source)
        for name in ("text_encoder", "encoder"):
            try:
                getattr(self.nets, name).load_state_dict(ckpt["networks"][name])
            except RuntimeError as e:
                raise CheckpointError(f"{source}: its {name} does not fit this run's model settings: {e}") from None
        self.encoder.finish()  # this run's train.whiten_eps (also for encoders saved before whitening existed)
        self.state.update(stage="gan", stage_epoch=0, epoch=self.cfg.train.encoder_epochs, step_in_epoch=0,
                          perm=None)

    def save(self, name: str) -> Path:
        """Write checkpoints/<name> atomically; refuses to store non-finite weights."""
        for net_name, m in [*self.nets.items(), ("g_ema", self.g_ema)]:
            if not all(torch.isfinite(p).all() for p in m.parameters()):
                raise NonFiniteLoss(f"non-finite weights in {net_name} at epoch {self.state['epoch']}, step "
                                    f"{self.state['step']}; checkpoint {name} not written, earlier ones kept")
        path = self.run_dir / "checkpoints" / name
        if self.rank == 0:
            save_checkpoint(path, self.state_dict())
        return path

    # ------------------------------------------------------------------ what both stages use
    def autocast(self):
        """Mixed precision for the forward passes of a training step (train.amp); a no-op when off."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def optimizer_step(self, key: str, opt, loss: torch.Tensor, params) -> None:
        """Backward (scaled under fp16), all-reduce the gradients across processes, optimizer step."""
        scaler = self.scalers[key]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        average_gradients(params, self.world)
        scaler.step(opt)
        scaler.update()

    def captions(self, idx: torch.Tensor, split: ImageSet | None = None):
        """One random valid caption of each image `idx` of `split` (default: the training set): tokens (B, L)
        and lengths (B,) on the device."""
        tokens, lengths, _ = (split or self.data.train).sample_captions(idx)
        return tokens.to(self.device), lengths.to(self.device)

    def set_stage_modes(self, stage: str) -> None:
        """The encoders train in stage "encoder" and are frozen (eval mode, no gradients) in stage "gan"."""
        frozen = stage == "gan"
        for name in FROZEN_IN_GAN:
            getattr(self.nets, name).train(not frozen).requires_grad_(not frozen)

    # ------------------------------------------------------------------ loop
    def log_row(self, row: dict) -> None:
        """One row to stats.jsonl and the tracker (rank 0 only)."""
        if self.rank != 0:
            return
        with open(self.stats_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tracker is not None:
            self.tracker.log(row, step=row["images_seen"])

    def _check_finite(self, values: dict) -> None:
        for k, v in values.items():
            if not math.isfinite(float(v)):
                raise NonFiniteLoss(f"non-finite {k} = {float(v)} at epoch {self.state['epoch']}, step "
                                    f"{self.state['step']}; stopping. Checkpoints written before this "
                                    f"point are kept in {self.run_dir / 'checkpoints'}")

    def run_stage(self, name: str, epochs: int) -> None:
        """Run (or resume) stage `name` ("encoder" or "gan") until it has done `epochs` epochs."""
        st, tc = self.state, self.cfg.train
        stage = {"encoder": self.encoder, "gan": self.gan}[name]
        self.set_stage_modes(name)
        while st["stage_epoch"] < epochs:
            if st["perm"] is None:  # the same order on every process
                g = torch.Generator().manual_seed(tc.seed * 100_003 + st["epoch"])
                st["perm"] = torch.randperm(len(self.data.train), generator=g)
            t0 = time.time()
            self.progress.start_epoch(name, st["stage_epoch"], st["step_in_epoch"], stage.steps_per_epoch)
            if self._run_epoch_steps(stage):
                return  # stop requested: the caller saves a resumable checkpoint
            broadcast_buffers([m for _, m in self.nets.items()] + [self.g_ema], self.world)
            st["stage_epoch"] += 1
            st["epoch"] += 1
            st["step_in_epoch"], st["perm"] = 0, None
            self._end_epoch(stage, epochs, time.time() - t0)

    def _run_epoch_steps(self, stage) -> bool:
        """The remaining steps of the current epoch; True when a stop was requested (all processes stop at the
        same step)."""
        st, tc, bs, steps = self.state, self.cfg.train, stage.bs, stage.steps_per_epoch
        done = 0
        while st["step_in_epoch"] < steps:
            k = st["step_in_epoch"]
            out = stage.step(st["perm"][k * bs:(k + 1) * bs][self.rank::self.world])
            st["step"] += 1
            st["step_in_epoch"] += 1
            st["images_seen"] += bs
            done += 1
            if tc.max_steps and done >= tc.max_steps:
                st["step_in_epoch"] = steps  # smoke runs: cut the epoch short
            if st["step"] % tc.log_every == 0 or st["step_in_epoch"] == steps or self.stop_requested:
                vals = {k: float(v.detach()) for k, v in out.items()}  # the only host sync of a step
                self._check_finite(vals)
                self.log_row({"stage": stage.name, "epoch": st["epoch"], "step": st["step"],
                              "images_seen": st["images_seen"], **vals})
                self.progress.update(stage.name, st["step_in_epoch"], bs, vals)
            if any_process(self.stop_requested, self.world):
                self.stop_requested = True
                return True
        return False

    def _end_epoch(self, stage, epochs: int, seconds: float) -> None:
        """Validation (every train.eval_every epochs and at the end of the stage), the sample grid and best.pt in
        the GAN stage, the epoch's row and last.pt."""
        st, tc = self.state, self.cfg.train
        row = {"stage": stage.name, "epoch": st["epoch"], "step": st["step"], "images_seen": st["images_seen"],
               "time/epoch_seconds": seconds}
        if (st["stage_epoch"] % tc.eval_every == 0 or st["stage_epoch"] == epochs) and self.rank == 0:
            row.update(validate(self, self.g_ema))
            if stage.name == "gan":
                grid = sample_grid(self.nets.text_encoder, self.g_ema, self.fixed,
                                   self.run_dir / "samples" / f"epoch_{st['epoch']:03d}.png", self.device)
                if self.tracker is not None:
                    self.tracker.log_image("samples/fixed_grid", grid, self.fixed["captions"], step=st["images_seen"])
                if row["val/kid"] < st["best_metric"]:
                    st["best_metric"], st["best_epoch"] = row["val/kid"], st["epoch"]
                    self.save("best.pt")
                    row["val/best_kid"] = st["best_metric"]
        self.log_row(row)
        if self.rank == 0:
            shown = {k: v for k, v in row.items() if k.startswith(("val/", "time/", "monitor/"))}
            self.log(f"[{stage.name}] epoch {st['epoch']} ({st['stage_epoch']}/{epochs}) "
                     + " ".join(f"{k}={v:.4g}" for k, v in shown.items()))
        self.save("last.pt")
        self.progress.end_epoch(stage.name, st["stage_epoch"])

    def fit(self) -> dict:
        """Run (or resume) the schedule's two stages; returns a summary. Stops early, resumable, if stop_requested."""
        try:
            return self._fit()
        finally:
            self.progress.close()

    def _fit(self) -> dict:
        st, plan = self.state, self.epochs
        self._fit_start, self._seconds_before = time.time(), float(st.get("train_seconds", 0.0))
        self.log(f"schedule: {describe(plan)}; now in the {st['stage']} phase at epoch {st['epoch']}")
        for phase, after in (("encoder", "gan"), ("gan", "done")):
            if st["stage"] != phase:
                continue
            self.run_stage(phase, plan[phase])
            if self.stop_requested:
                return self._interrupted()
            if phase == "encoder":
                self.encoder.finish()  # the encoders stop learning: fit the whitening
            st.update(stage=after, stage_epoch=0, step_in_epoch=0, perm=None)
        if not (self.run_dir / "checkpoints" / "best.pt").exists():
            self.save("best.pt")  # no GAN epoch ran: the only model is the last one
        self.save("last.pt")
        return {"status": "finished", "epochs": st["epoch"], "steps": st["step"],
                "images_seen": st["images_seen"], "best_epoch": st["best_epoch"],
                "best_val_kid": st["best_metric"] if math.isfinite(st["best_metric"]) else None,
                "train_seconds": self.train_seconds()}

    def train_seconds(self) -> float:
        """Wall time of fit() so far, summed over the run's sessions (a resumed run adds the time its checkpoint
        had recorded)."""
        now = 0.0 if self._fit_start is None else time.time() - self._fit_start
        return self._seconds_before + now

    def _interrupted(self) -> dict:
        path = self.save("last.pt")
        self.log(f"stop requested: saved resumable checkpoint {path}")
        return {"status": "interrupted", "epochs": self.state["epoch"], "steps": self.state["step"],
                "checkpoint": str(path)}
