"""The measurements of benchmarks/run.py on the project's own objects (the `load_data` data and the `Trainer`
that `app.run` builds): each stage's full training step, the data pipeline, each network, and the
once-per-epoch / once-per-run costs (validation, sample grid, checkpoints, final evaluation)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.timing import Phases, time_loop, timed_once
from training.flops import count_flops, r1_period_flops


def _quiet(*args, **kwargs) -> None:
    """The trainer's and the evaluation's log: silent."""


@dataclass
class Bench:
    """What every measurement shares: config, device, settings, trainer and data, the phase clock and the
    measured rates (`ips`: images/s, `step_ms`: median ms per step)."""
    cfg: object
    device: torch.device
    s: dict
    tmp: Path
    phases: Phases
    data: object
    tr: object
    t_load: float
    t_init: float
    gen: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))
    ips: dict = field(default_factory=dict)
    step_ms: dict = field(default_factory=dict)

    @property
    def B(self) -> int:  # the config's batch size, as in the results
        return self.cfg.train.batch_size

    @property
    def GB(self) -> int:  # stage 2's batch (train.gan_batch_size; = B unless set)
        return self.tr.gan.bs

    @property
    def size(self) -> int:
        return self.cfg.data.image_size

    @property
    def n_train(self) -> int:
        return len(self.data.train)

    def batch_idx(self, b: int | None = None) -> torch.Tensor:
        """b (default B) training-image indices (with replacement when the set is smaller than a batch)."""
        b = self.B if b is None else b
        if self.n_train >= b:
            return torch.randperm(self.n_train, generator=self.gen)[:b]
        return torch.randint(self.n_train, (b,), generator=self.gen)

    def record(self, name: str, batch: int, t: list[float]) -> None:
        self.ips[name] = batch * len(t) / sum(t)
        self.step_ms[name] = 1000 * float(np.median(t))


def build_bench(cfg, device: torch.device, s: dict, tmp: Path, phases: Phases) -> Bench:
    """Load the data and build the Trainer (the same objects a training run builds), timing both."""
    from data_utils.dataset import load_data
    from training.trainer import Trainer
    t0 = time.perf_counter()
    data = load_data(cfg.data)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    tr = Trainer(cfg, data, tmp / "run", device, tracker=None, log=_quiet)
    t_init = time.perf_counter() - t0
    phases.end("data_and_trainer")
    return Bench(cfg, device, s, tmp, phases, data, tr, t_load, t_init)


def time_encoder_step(b: Bench) -> None:
    """Stage 1: `Trainer.encoder.step` at batch B (images_per_second.encoder_step)."""
    tr, nets = b.tr, b.tr.nets
    nets.text_encoder.train().requires_grad_(True)
    nets.encoder.train().requires_grad_(True)
    tr.state.update(stage="encoder", stage_epoch=0, step_in_epoch=0, step=0)

    def step():
        tr.encoder.step(b.batch_idx())
        tr.state["step"] += 1

    b.phases.start()
    t = time_loop(step, b.s["encoder_steps"], b.s["warmup"], b.device)
    b.phases.end("encoder_step")
    b.record("encoder_step", b.B, t)


def time_gan_steps(b: Bench) -> str:
    """Stage 2: `Trainer.gan.step` (encoders frozen, as in Trainer.run_stage) over whole R1 periods, at batch B
    (for the ratio ours / reference) and, when train.gan_batch_size differs, at that batch too. Returns the key
    of the rate stage 2 trains at (the projection's)."""
    tr, cfg = b.tr, b.cfg
    tr.set_stage_modes("gan")
    tr.state.update(stage="gan", stage_epoch=0, step_in_epoch=0, step=0)
    every = cfg.train.r1_every if cfg.train.r1_gamma > 0 else 1
    steps = every * math.ceil(b.s["gan_steps"] / every)

    def timed(batch: int, name: str) -> None:
        def step():
            tr.gan.step(b.batch_idx(batch))
            tr.state["step"] += 1

        b.phases.start()
        t = time_loop(step, steps, b.s["warmup"], b.device)
        b.phases.end(name)
        b.record(name, batch, t)

    timed(b.B, "gan_step")
    if b.GB == b.B:
        return "gan_step"
    timed(b.GB, "gan_step_at_gan_batch")
    return "gan_step_at_gan_batch"


def time_data_pipeline(b: Bench) -> float:
    """ms per batch of what each step does first: uint8 crop/flip + caption sampling from memory."""
    from data_utils.augment import random_crop_flip

    def data_batch():
        idx = b.batch_idx()
        x = random_crop_flip(b.tr.images[idx.to(b.device)], b.size)
        tokens, lengths = b.tr.captions(idx)
        return x, tokens, lengths

    t = time_loop(data_batch, b.s["data_iters"], b.s["warmup"], b.device)
    b.phases.end("data_pipeline")
    return 1000 * sum(t) / len(t)


def _network_calls(b: Bench) -> dict:
    """Each network with a forward call on one batch of B (real crops, sampled captions, random codes)."""
    from data_utils.augment import random_crop_flip
    nets, cfg, dev, B = b.tr.nets, b.cfg, b.device, b.B
    text, enc, G, D = nets.text_encoder, nets.encoder, nets.generator, nets.discriminator
    tokens, lengths = b.tr.captions(b.batch_idx())
    real = random_crop_flip(b.tr.images[b.batch_idx().to(dev)], b.size)
    z = torch.randn(B, cfg.model.noise_dim, device=dev)
    t_enc = torch.randn(B, cfg.model.text_dim, device=dev)
    r = F.normalize(torch.randn(B, cfg.model.embed_dim, device=dev), dim=1)
    return {"text_encoder": (text, lambda: text(tokens, lengths)),
            "encoder": (enc, lambda: enc(real)),
            "generator": (G, lambda: G(z, t_enc, r)),
            "discriminator": (D, lambda: D(real, t_enc))}


def _time_network(b: Bench, module, fwd) -> dict:
    """Forward and forward+backward of one network (train mode, all parameters trainable)."""
    from models.build import count_params
    module.train().requires_grad_(True)

    def fwd_bwd():
        module.zero_grad(set_to_none=True)
        fwd().float().square().mean().backward()

    def fwd_only():
        with torch.no_grad():
            fwd()

    tb = time_loop(fwd_bwd, b.s["net_iters"], b.s["warmup"], b.device)
    tf = time_loop(fwd_only, b.s["net_iters"], b.s["warmup"], b.device)
    module.zero_grad(set_to_none=True)
    return {"params": count_params(module), "forward_ms": 1000 * sum(tf) / len(tf),
            "forward_backward_ms": 1000 * sum(tb) / len(tb),
            "forward_images_per_second": b.B * len(tf) / sum(tf),
            "forward_backward_images_per_second": b.B * len(tb) / sum(tb)}


def time_networks(b: Bench) -> dict:
    """Per network: params, forward / forward+backward ms and images/s at batch B (also into b.ips)."""
    b.phases.start()
    networks = {}
    for name, (module, fwd) in _network_calls(b).items():
        networks[name] = _time_network(b, module, fwd)
        b.ips[name] = networks[name]["forward_backward_images_per_second"]
    b.phases.end("networks")
    return networks


def time_once_costs(b: Bench, final_eval: bool) -> dict:
    """Seconds of one validation of each stage, one sample grid, one checkpoint save and load and (unless
    final_eval is False: None) the end-of-run evaluation."""
    from core.io import load_checkpoint
    from training.validation import sample_grid, validate
    tr, dev, run = b.tr, b.device, b.tmp / "run"
    text, enc = tr.nets.text_encoder, tr.nets.encoder
    b.phases.start()
    text.train(), enc.train()
    tr.state.update(stage="encoder", stage_epoch=b.cfg.train.eval_every)
    once = {"validate_encoder_stage": timed_once(lambda: validate(tr, tr.g_ema), dev)}  # with the kNN monitor
    text.eval(), enc.eval()
    tr.state.update(stage="gan", stage_epoch=b.cfg.train.eval_every)
    once["validate_gan_stage"] = timed_once(lambda: validate(tr, tr.g_ema), dev)
    once["sample_grid"] = timed_once(
        lambda: sample_grid(text, tr.g_ema, tr.fixed, run / "samples" / "bench.png", tr.device), dev)
    once["checkpoint_save"] = timed_once(lambda: tr.save("last.pt"), dev)
    once["checkpoint_load"] = timed_once(
        lambda: load_checkpoint(run / "checkpoints" / "last.pt", map_location=dev), dev)
    once["final_evaluation"] = None
    if final_eval:
        from evaluation.evaluate import evaluate
        once["final_evaluation"] = timed_once(
            lambda: evaluate(tr.nets, b.data, b.cfg, run / "eval", dev, log=_quiet), dev)
    b.phases.end("evaluation")
    return once


def count_step_flops(b: Bench) -> dict:
    """FLOPs per image of one training step of each stage (forward + backward of every network the step runs,
    torch.utils.flop_counter: convolutions and matrix products, which are nearly all of it) and of each network's
    forward pass; the encoder step at batch B, the GAN step at the GAN batch. Counted on the real step, so
    whatever the step computes (R1 every r1_every steps: counted at its average share) is in it."""
    tr = b.tr
    out = {}
    tr.nets.text_encoder.train().requires_grad_(True)
    tr.nets.encoder.train().requires_grad_(True)
    tr.state.update(stage="encoder", step=1)
    out["encoder_step_per_image"] = count_flops(lambda: tr.encoder.step(b.batch_idx())) / b.B
    tr.set_stage_modes("gan")

    def gan_step(k: int):
        tr.state.update(stage="gan", step=k)  # the trainer applies R1 when step % r1_every == 0
        return tr.gan.step(b.batch_idx(b.GB))
    out["gan_step_per_image"] = r1_period_flops(gan_step, b.cfg.train.r1_gamma, b.cfg.train.r1_every) / b.GB
    with torch.no_grad():
        out["forward_per_image"] = {name: count_flops(fwd) / b.B for name, (_, fwd) in _network_calls(b).items()}
    return out
