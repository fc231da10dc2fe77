"""The GAN's part of an epoch (the joint and the GAN-only phases): the text encoder T and the source encoder E are
frozen for it (eval mode, no gradients: E's BatchNorm never sees generated images); the generator G(z, T(caption),
r) and the residual projection discriminator D(image, T(caption)) train with hinge loss, DiffAugment, lazy R1,
conditioning augmentation, two time-scale Adam (D 4e-4, G 1e-4, betas (0, 0.9)) and an EMA copy of G.

- r is T's prior guess of the source representation from the caption alone, what G receives at test time.
- Distillation: E(G(...)) should point the same way as r.
- Self-supervised D (FastGAN): a small decoder on D's 8x8 features of the real images reconstructs the whole image
  at 32 px and one random quadrant at full resolution (L1, train.recon_weight).
- Mode seeking (MSGAN): half of the batch's captions get a second noise vector; G is pushed to make the two images
  of a caption differ in proportion to their noises (train.ms_weight).
"""
from __future__ import annotations

import copy

import torch

from data_utils.augment import random_crop_flip
from models.discriminator import reconstruction_targets

from . import losses
from .diffaug import diff_augment
from .encoder_stage import stage_batches


def ema_decay(target: float, n: int) -> float:
    """The EMA decay used after `n` generator steps: (1 + n) / (10 + n), capped at `target`."""
    return min(target, (1.0 + n) / (10.0 + n))


class GanStage:
    """The GAN's EMA generator, optimizers and step, over the trainer `tr`'s networks and data."""

    name = "gan"

    def __init__(self, tr):
        self.tr, tc = tr, tr.cfg.train
        self.g_ema = copy.deepcopy(tr.nets.generator).eval().requires_grad_(False)
        betas = (0.0, tc.adam_beta2)
        self.opt_g = torch.optim.Adam(tr.nets.generator.parameters(), lr=tc.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(tr.nets.discriminator.parameters(), lr=tc.lr_d, betas=betas)
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

    def d_step(self, real, fake, t, r_d, r_wrong, out: dict) -> None:
        """One discriminator update: a conv pass over the augmented [real | fake]; the real features are scored with
        their own caption and with another image's (matching-aware D); the decoder reconstructs the real half; lazy
        R1 on the real images."""
        tr, tc, D = self.tr, self.tr.cfg.train, self.tr.nets.discriminator
        n = real.shape[0]
        with tr.autocast():
            x = diff_augment(torch.cat([real, fake.detach()]), tc.diffaug)
            h, f8 = D.features_and_map(x)
            h_real, h_fake = h.chunk(2)
            d_real, d_wrong, d_fake = (D.logits(hh, tt, rr).float() for hh, tt, rr in
                                       ((h_real, t, r_d), (h_real, t.roll(1, dims=0), r_wrong), (h_fake, t, r_d)))
            quadrant = int(torch.randint(4, (1,)))
            whole, part = D.reconstruct(f8[:n], quadrant)
        target_whole, target_part = reconstruction_targets(x[:n].float(), quadrant)
        recon = losses.reconstruction_loss(whole.float(), target_whole) + losses.reconstruction_loss(
            part.float(), target_part)
        d_loss = losses.d_hinge(d_real, d_wrong, d_fake, tc.mismatch_weight) + tc.recon_weight * recon
        out.update({"gan/d_loss": d_loss, "gan/d_real": d_real.mean(), "gan/d_fake": d_fake.mean(),
                    "gan/d_wrong": d_wrong.mean(), "gan/d_recon": recon})
        if tc.r1_gamma > 0 and tr.state["step"] % tc.r1_every == 0:
            real_r1 = real.detach().requires_grad_(True)  # float32: the double backward stays unscaled
            r1 = losses.r1_penalty(D.logits(D.features(diff_augment(real_r1, tc.diffaug)), t, r_d), real_r1)
            d_loss = d_loss + 0.5 * tc.r1_gamma * tc.r1_every * r1
            out["gan/r1"] = r1
        tr.optimizer_step("d", self.opt_d, d_loss, D.parameters())

    def step(self, idx: torch.Tensor) -> dict:
        tr, tc = self.tr, self.tr.cfg.train
        G, D, E = tr.nets.generator, tr.nets.discriminator, tr.enc_fwd
        real, t, r = self.condition(idx)
        # model.d_rep: D also sees r (the wrong pair gets the other image's r too); else r is not D's input
        r_d, r_wrong = (r, r.roll(1, dims=0)) if tr.cfg.model.d_rep else (None, None)
        n, half = real.shape[0], real.shape[0] // 2
        z = torch.randn(n, tr.cfg.model.noise_dim, device=tr.device)
        z2 = torch.randn(half, tr.cfg.model.noise_dim, device=tr.device)  # a second noise for half the captions
        with tr.autocast():
            c, mu, logvar = G.condition(t)
            fake = tr.synth_fwd(z, c, r)
        out: dict = {}
        # the D step does not change G, so the G step below reuses `fake` (with a fresh augmentation)
        self.d_step(real, fake, t, r_d, r_wrong, out)
        # G step: gradients flow through D and E to the image only (their weights need none)
        D.requires_grad_(False)
        with tr.autocast():
            g_adv = self.adversarial_loss(diff_augment(fake, tc.diffaug), t, r_d)
            distill = losses.cosine_distance(E(fake).float(), r)  # what E judges
            if tc.ms_weight > 0 and half > 0:
                fake2 = tr.synth_fwd(z2, c[:half], r[:half])
                ms = losses.mode_seeking(fake[:half].float(), fake2.float(), z[:half], z2)
            else:
                ms = torch.zeros((), device=tr.device)
        D.requires_grad_(True)
        kl = losses.kl_normal(mu.float(), logvar.float())
        g_loss = g_adv + tc.kl_weight * kl + tc.distill_weight * distill + tc.ms_weight * ms
        tr.optimizer_step("g", self.opt_g, g_loss, G.parameters())
        self.update_ema()
        out.update({"gan/g_adv": g_adv, "gan/kl": kl, "gan/distill": distill, "gan/mode_seeking": ms})
        return out

    @torch.no_grad()
    def update_ema(self) -> None:
        """EMA of the generator's weights with a warm-up: the decay after n GAN steps is
        min(train.ema_decay, (1 + n) / (10 + n)), so the average spans about the last n/9 steps early on
        and never keeps much of the random initialisation. BatchNorm statistics are copied."""
        st = self.tr.state
        n = st.get("gan_steps", 0)
        st["gan_steps"] = n + 1
        decay = ema_decay(self.tr.cfg.train.ema_decay, n)
        ema_p, p = list(self.g_ema.parameters()), list(self.tr.nets.generator.parameters())
        torch._foreach_lerp_(ema_p, p, 1.0 - decay)
        for b_ema, b in zip(self.g_ema.buffers(), self.tr.nets.generator.buffers()):
            b_ema.copy_(b)
