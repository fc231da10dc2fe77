"""Stage 2, "gan": E and T are frozen; the generator G(z, T(caption), r) and the matching-aware projection
discriminator D(image, T(caption)) train with hinge loss, DiffAugment, lazy R1, conditioning augmentation and an
EMA copy of G. r is T's prior guess of the source representation from the caption alone, what G receives at test
time. Distillation: E(G(...)) should point the same way as r.
"""
from __future__ import annotations

import copy

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


class GanStage:
    """The GAN stage's EMA generator, optimizers and step, over the trainer `tr`'s networks and data."""

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

    def adversarial_loss(self, img: torch.Tensor, t: torch.Tensor, r_d: torch.Tensor | None) -> torch.Tensor:
        """The generator's hinge loss on (already augmented) generated images img."""
        D = self.tr.nets.discriminator
        return losses.g_hinge(D.logits(D.features(img), t, r_d).float())

    def step(self, idx: torch.Tensor) -> dict:
        tr, tc = self.tr, self.tr.cfg.train
        G, D, E = tr.nets.generator, tr.nets.discriminator, tr.enc_fwd
        real, t, r = self.condition(idx)
        t_wrong = t.roll(1, dims=0)  # another image's caption
        # model.d_rep: D also sees r (the wrong pair gets the other image's r too); else r is not D's input
        r_d, r_wrong = (r, r.roll(1, dims=0)) if tr.cfg.model.d_rep else (None, None)
        z = torch.randn(real.shape[0], tr.cfg.model.noise_dim, device=tr.device)
        aug = lambda img: diff_augment(img, tc.diffaug)  # noqa: E731 - the image itself when the policy is ""
        # D step: one conv pass over [real | fake]; the real features are scored with their own caption
        # and with another image's (matching-aware D). The fake keeps its graph: the D step does not
        # change G, so the G step below reuses it (with a fresh augmentation) instead of re-running G.
        with tr.autocast():
            c, mu, logvar = G.condition(t)
            fake = tr.synth_fwd(z, c, r)
            h_real, h_fake = D.features(aug(torch.cat([real, fake.detach()]))).chunk(2)
            d_real, d_wrong, d_fake = (D.logits(h, tt, rr).float() for h, tt, rr in
                                       ((h_real, t, r_d), (h_real, t_wrong, r_wrong), (h_fake, t, r_d)))
        d_loss = losses.d_hinge(d_real, d_wrong, d_fake, tc.mismatch_weight)
        out = {"gan/d_loss": d_loss, "gan/d_real": d_real.mean(), "gan/d_fake": d_fake.mean(),
               "gan/d_wrong": d_wrong.mean()}
        if tc.r1_gamma > 0 and tr.state["step"] % tc.r1_every == 0:
            real_r1 = real.detach().requires_grad_(True)  # float32: the double backward stays unscaled
            r1 = losses.r1_penalty(D.logits(D.features(aug(real_r1)), t, r_d), real_r1)
            d_loss = d_loss + 0.5 * tc.r1_gamma * tc.r1_every * r1
            out["gan/r1"] = r1
        tr.optimizer_step("d", self.opt_d, d_loss, D.parameters())
        # G step: gradients flow through D and E to the image only (their weights need none)
        D.requires_grad_(False)
        with tr.autocast():
            g_adv = self.adversarial_loss(aug(fake), t, r_d)
            distill = losses.cosine_distance(E(fake).float(), r)  # what E judges
        D.requires_grad_(True)
        kl = losses.kl_normal(mu.float(), logvar.float())
        g_loss = g_adv + tc.kl_weight * kl + tc.distill_weight * distill
        tr.optimizer_step("g", self.opt_g, g_loss, G.parameters())
        self.update_ema()
        out.update({"gan/g_adv": g_adv, "gan/kl": kl, "gan/distill": distill})
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
