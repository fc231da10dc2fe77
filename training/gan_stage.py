"""Stage 2, "gan": E and T are frozen; the generator G(z, T(caption), r) and the matching-aware projection
discriminator D(image, T(caption)) train with hinge loss, DiffAugment, lazy R1, conditioning augmentation and an
EMA copy of G. r is T's prior guess of the source representation from the caption alone, what G receives at test
time. Distillation: E(G(...)) should point the same way as r.

`gan_step` is one D step and one G step as a function of what it needs: the networks (`GanNets`), the optimizer
update, one batch (`GanBatch`) and the train config. `GanStage` owns the optimizers and the EMA generator, and
draws each batch from the trainer's data.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Callable

import torch

from data_utils.augment import random_crop_flip

from . import losses
from .diffaug import diff_augment
from .encoder_stage import stage_batches

EMA_REFERENCE_BATCH = 32  # train.ema_decay is the decay per step of this many images


def ema_decay(target: float, n: int, batch: int = EMA_REFERENCE_BATCH) -> float:
    """The EMA decay used after `n` generator steps of `batch` images: (1 + n) / (10 + n), capped at
    target ** (batch / 32), so that the average spans the same number of images at any batch size."""
    return min(target ** (batch / EMA_REFERENCE_BATCH), (1.0 + n) / (10.0 + n))


@dataclass
class GanNets:
    """The networks of a GAN step: G and D train; `synthesize` is G.synthesize (or its compiled form), `encode`
    the frozen source encoder's forward (or its compiled form), `d_features` D.features (or its compiled form;
    the R1 penalty always runs D eagerly, its double backward does not go through compiled graphs)."""
    G: torch.nn.Module
    D: torch.nn.Module
    synthesize: Callable
    encode: Callable
    d_features: Callable


@dataclass
class GanBatch:
    """One batch: real images (B, 3, S, S), text encodings t (B, T), the representations r (B, D) G is
    conditioned on, noise z (B, noise_dim)."""
    real: torch.Tensor
    t: torch.Tensor
    r: torch.Tensor
    z: torch.Tensor


def gan_step(nets: GanNets, batch: GanBatch, tc, update: Callable, *, r1_now: bool, d_rep: bool = False,
             autocast: Callable = contextlib.nullcontext) -> dict:
    """One D step, then one G step; returns the losses (tensors). tc: the train config (diffaug, mismatch_weight,
    r1_gamma, r1_every, kl_weight, distill_weight); update(key, optimizer_key, loss, params) backpropagates and
    steps the optimizer "d" or "g"; r1_now: this D step applies the lazy R1 penalty; d_rep: D also scores r."""
    G, D = nets.G, nets.D
    real, t, r, z = batch.real, batch.t, batch.r, batch.z
    t_wrong = t.roll(1, dims=0)  # another image's caption
    # model.d_rep: D also sees r (the wrong pair gets the other image's r too); else r is not D's input
    r_d, r_wrong = (r, r.roll(1, dims=0)) if d_rep else (None, None)
    aug = lambda img: diff_augment(img, tc.diffaug)  # noqa: E731 - the image itself when the policy is ""
    # D step: one conv pass over [real | fake]; the real features are scored with their own caption and with
    # another image's (matching-aware D). The fake keeps its graph: the D step does not change G, so the G step
    # below reuses it (with a fresh augmentation) instead of re-running G.
    with autocast():
        c, mu, logvar = G.condition(t)
        fake = nets.synthesize(z, c, r)
        h_real, h_fake = nets.d_features(aug(torch.cat([real, fake.detach()]))).chunk(2)
        d_real, d_wrong, d_fake = (D.logits(h, tt, rr).float() for h, tt, rr in
                                   ((h_real, t, r_d), (h_real, t_wrong, r_wrong), (h_fake, t, r_d)))
    d_loss = losses.d_hinge(d_real, d_wrong, d_fake, tc.mismatch_weight)
    out = {"gan/d_loss": d_loss, "gan/d_real": d_real.mean(), "gan/d_fake": d_fake.mean(),
           "gan/d_wrong": d_wrong.mean()}
    if tc.r1_gamma > 0 and r1_now:
        real_r1 = real.detach().requires_grad_(True)  # float32: the double backward stays unscaled
        r1 = losses.r1_penalty(D.logits(D.features(aug(real_r1)), t, r_d), real_r1)
        d_loss = d_loss + 0.5 * tc.r1_gamma * tc.r1_every * r1
        out["gan/r1"] = r1
    update("d", d_loss, D.parameters())
    # G step: gradients flow through D and E to the image only (their weights need none)
    D.requires_grad_(False)
    with autocast():
        g_adv = losses.g_hinge(D.logits(nets.d_features(aug(fake)), t, r_d).float())
        distill = losses.cosine_distance(nets.encode(fake).float(), r)  # what E judges
    D.requires_grad_(True)
    kl = losses.kl_normal(mu.float(), logvar.float())
    g_loss = g_adv + tc.kl_weight * kl + tc.distill_weight * distill
    update("g", g_loss, G.parameters())
    out.update({"gan/g_adv": g_adv, "gan/kl": kl, "gan/distill": distill})
    return out


class GanStage:
    """The GAN stage's EMA generator and optimizers; each step draws a batch from the trainer `tr`'s data and
    calls `gan_step`."""

    name = "gan"

    def __init__(self, tr):
        self.tr, tc = tr, tr.cfg.train
        self.g_ema = copy.deepcopy(tr.nets.generator).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam(tr.nets.generator.parameters(), lr=tc.lr_g, betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(tr.nets.discriminator.parameters(), lr=tc.lr_d, betas=(0.0, 0.99))
        self.bs, self.steps_per_epoch = stage_batches(tc.gan_batch_size or tc.batch_size, len(tr.data.train))

    @torch.no_grad()
    def condition(self, idx: torch.Tensor):
        """Frozen text encoder: real images (B, 3, S, S), text encodings (B, T) and the prior's guesses of the
        source representations (B, D) from the captions."""
        tr = self.tr
        text = tr.nets.text_encoder
        real = random_crop_flip(tr.images[idx.to(tr.device)], tr.cfg.data.image_size)
        t = text(*tr.captions(idx))
        return real, t, text.predict_representation(t)

    def batch(self, idx: torch.Tensor) -> GanBatch:
        real, t, r = self.condition(idx)
        return GanBatch(real, t, r, torch.randn(real.shape[0], self.tr.cfg.model.noise_dim, device=self.tr.device))

    def nets(self) -> GanNets:
        tr = self.tr
        return GanNets(tr.nets.generator, tr.nets.discriminator, tr.synth_fwd, tr.enc_fwd, tr.d_features_fwd)

    def step(self, idx: torch.Tensor) -> dict:
        tr, tc = self.tr, self.tr.cfg.train
        opts = {"d": self.opt_d, "g": self.opt_g}
        out = gan_step(self.nets(), self.batch(idx), tc,
                       lambda key, loss, params: tr.optimizer_step(key, opts[key], loss, params),
                       r1_now=tr.state["step"] % tc.r1_every == 0, d_rep=tr.cfg.model.d_rep, autocast=tr.autocast)
        self.update_ema()
        return out

    @torch.no_grad()
    def update_ema(self) -> None:
        """EMA of the generator's weights with a warm-up: the decay after n GAN steps is
        min(train.ema_decay ** (batch / 32), (1 + n) / (10 + n)), so the average spans about the last n/9 steps
        early on and never keeps much of the random initialisation. BatchNorm statistics are copied."""
        st = self.tr.state
        n = st.get("gan_steps", 0)
        st["gan_steps"] = n + 1
        decay = ema_decay(self.tr.cfg.train.ema_decay, n, self.bs)
        ema_p, p = list(self.g_ema.parameters()), list(self.tr.nets.generator.parameters())
        torch._foreach_lerp_(ema_p, p, 1.0 - decay)
        for b_ema, b in zip(self.g_ema.buffers(), self.tr.nets.generator.buffers()):
            b_ema.copy_(b)
