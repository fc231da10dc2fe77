"""FLOPs of training steps, counted with torch.utils.flop_counter (convolutions and matrix products, which are
nearly all of a step's work). One counting loop serves the benchmark (the trainer's real step) and the scaling
study (`gan_step` on random inputs of a config's shapes)."""
from __future__ import annotations

from typing import Callable

import torch

from .gan_stage import GanBatch, GanNets, gan_step


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of fn()."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def r1_period_flops(step: Callable[[int], object], r1_gamma: float, r1_every: int) -> float:
    """Mean FLOPs of one GAN step over one lazy-R1 period: step(k) runs the period's k-th step (the penalty at
    k = 0), so the penalty counts at its average share. Without R1 (r1_gamma = 0) the period is one step."""
    every = r1_every if r1_gamma > 0 else 1
    return sum(count_flops(lambda: step(k)) for k in range(every)) / every


def gan_step_flops(cfg, vocab_size: int = 1000) -> float:
    """FLOPs per image of one GAN step (D step + G step, `gan_step`) of `cfg`'s networks at its GAN batch,
    averaged over one lazy-R1 period; counted on random inputs of the config's shapes."""
    from models.build import build_networks

    mc, tc = cfg.model, cfg.train
    torch.manual_seed(0)
    nets = build_networks(mc, vocab_size)
    E = nets.encoder.eval().requires_grad_(False)
    G, D = nets.generator.train(), nets.discriminator.train()
    b = tc.gan_batch_size or tc.batch_size
    size = cfg.data.image_size
    batch = GanBatch(torch.rand(b, 3, size, size) * 2 - 1, torch.randn(b, mc.text_dim), torch.randn(b, mc.embed_dim),
                     torch.randn(b, mc.noise_dim))
    gan_nets = GanNets(G, D, G.synthesize, E, D.features)
    step = lambda k: gan_step(gan_nets, batch, tc, lambda key, loss, params: loss.backward(),  # noqa: E731
                              r1_now=k == 0, d_rep=mc.d_rep)
    return r1_period_flops(step, tc.r1_gamma, tc.r1_every) / b
