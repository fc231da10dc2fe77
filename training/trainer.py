"""The two-stage training protocol. One epoch = one pass over the train-class training images
(each drawn once, with one of its captions chosen at random).

Stage 1 "encoder" (train.encoder_epochs): the source encoder E and the text encoder T learn from
scratch, without class labels, by image-text InfoNCE (an image and its caption) + image-image InfoNCE
(two random crops/flips of the same image); T's prior head learns to predict E's representation.
Stage 2 "gan" (train.gan_epochs): E and T are frozen; the generator G(z, T(caption), r) and the
matching-aware projection discriminator D(image, T(caption)) train with hinge loss, DiffAugment,
lazy R1, conditioning augmentation and an EMA copy of G. r is E(real image) or, with probability
train.text_rep_prob (default 1: always), T's prior from the caption alone (what G receives at test time). Distillation:
E(G(...)) should point the same way as r.
"""
from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

from data_utils.augment import center_crop, color_jitter, random_crop_flip, random_resized_crop
from data_utils.dataset import FlowerData, ImageSet
from data_utils.text import Vocab, caption_semantics, tfidf_matrix

from . import losses
from .checkpoint import CheckpointError, rng_state, save_checkpoint, set_rng_state
from .diffaug import diff_augment
from .host_memory import reuse_freed_memory
from .distributed import any_process, average_gradients, broadcast_buffers
from .networks import build_networks


def stage_batches(batch_size: int, n: int) -> tuple[int, int]:
    """(batch, steps per epoch) of a stage over n training images: the batch is capped at n, and an epoch
    is n // batch steps (at least one)."""
    bs = min(batch_size, n)
    return bs, max(1, n // bs)


def warmup_cosine(base: float, step: int, steps_per_epoch: int, total: int) -> float:
    """The encoder stage's learning rate at `step`: linear warm-up over the first epoch, then cosine decay
    from `base` to 0 at `total` steps."""
    warm = min(1.0, (step + 1) / steps_per_epoch)
    return base * warm * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def encoder_optimizer(params, tc) -> torch.optim.AdamW:
    """The encoder stage's optimizer over `params`: AdamW at train.lr_encoder (the schedule above sets the
    learning rate of every step) with weight decay train.wd_encoder."""
    return torch.optim.AdamW(params, lr=tc.lr_encoder, weight_decay=tc.wd_encoder)


def ema_decay(target: float, n: int) -> float:
    """The EMA decay used after `n` generator steps: (1 + n) / (10 + n), capped at `target`."""
    return min(target, (1.0 + n) / (10.0 + n))


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
        self.g_ema = copy.deepcopy(self.nets.generator).eval().requires_grad_(False)
        enc_params = [*self.nets.text_encoder.parameters(), *self.nets.encoder.parameters()]
        self.opt_enc = encoder_optimizer(enc_params, tc)
        self.opt_g = torch.optim.Adam(self.nets.generator.parameters(), lr=tc.lr_g, betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(self.nets.discriminator.parameters(), lr=tc.lr_d, betas=(0.0, 0.99))
        self.d_loss, self.g_loss = losses.D_LOSSES[tc.gan_loss], losses.G_LOSSES[tc.gan_loss]
        if tc.amp not in ("off", "bf16", "fp16"):
            raise ValueError(f"train.amp must be off, bf16 or fp16, got {tc.amp!r}")
        self.amp_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[tc.amp]
        # fp16 needs loss scaling (one scaler per optimizer: they step at different times); bf16 does not
        self.scalers = {k: torch.amp.GradScaler(device.type, enabled=tc.amp == "fp16") for k in ("enc", "g", "d")}
        if tc.channels_last:
            for _, m in self.nets.items():
                m.to(memory_format=torch.channels_last)
        # The conv-heavy forward passes of the training steps, optionally compiled (train.compile). D stays
        # eager: the R1 penalty's double backward is not supported through compiled graphs.
        self.enc_fwd, self.synth_fwd = self.nets.encoder, self.nets.generator.synthesize
        if tc.compile:
            self.enc_fwd, self.synth_fwd = torch.compile(self.enc_fwd), torch.compile(self.synth_fwd)
        self.images = data.train.images.to(device)
        tfidf = tfidf_matrix(data.train.captions, data.vocab)  # (N, V) word statistics of each image's captions
        self.semantics = caption_semantics(tfidf, cfg.model.embed_dim, tc.seed).to(device)  # (N, D) LSA targets
        # global batches of the two stages; each process takes bs / world of one
        self.bs, self.steps_per_epoch = stage_batches(tc.batch_size, len(data.train))
        self.gan_bs, self.gan_steps_per_epoch = stage_batches(tc.gan_batch_size or tc.batch_size, len(data.train))
        self.state = {"stage": "encoder", "stage_epoch": 0, "epoch": 0, "step": 0, "step_in_epoch": 0,
                      "images_seen": 0, "best_metric": math.inf, "best_epoch": -1, "perm": None, "gan_steps": 0}
        self.fixed = self._fixed_inputs()
        self.stop_requested = False
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.stats_path = self.run_dir / "stats.jsonl"
        if resume is not None:
            self.load_state_dict(resume)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"config": self.cfg_dict(), "vocab": self.data.vocab.itos, "split": self.data.split_record(),
                "networks": {name: m.state_dict() for name, m in self.nets.items()},
                "g_ema": self.g_ema.state_dict(),
                "optimizers": {"enc": self.opt_enc.state_dict(), "g": self.opt_g.state_dict(),
                               "d": self.opt_d.state_dict()},
                "state": dict(self.state), "rng": rng_state(),
                "tracker_run_id": getattr(self.tracker, "run_id", "") or ""}

    def _require_same_vocab(self, ckpt: dict, source: str = "checkpoint") -> None:
        if Vocab(ckpt["vocab"]).itos != self.data.vocab.itos:
            raise CheckpointError(f"{source}: its vocabulary differs from the data's (different data config?)")

    def load_state_dict(self, ckpt: dict) -> None:
        self._require_same_vocab(ckpt)
        for name, m in self.nets.items():
            m.load_state_dict(ckpt["networks"][name])
        self.g_ema.load_state_dict(ckpt["g_ema"])
        self.opt_enc.load_state_dict(ckpt["optimizers"]["enc"])
        self.opt_g.load_state_dict(ckpt["optimizers"]["g"])
        self.opt_d.load_state_dict(ckpt["optimizers"]["d"])
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
        self.finish_encoder_stage()  # this run's train.whiten_eps (also for encoders saved before whitening existed)
        self.state.update(stage="gan", stage_epoch=0, epoch=self.cfg.train.encoder_epochs, step_in_epoch=0,
                          perm=None)

    def cfg_dict(self) -> dict:
        from .config import to_dict
        return to_dict(self.cfg)

    def save(self, name: str) -> Path:
        """Write checkpoints/<name> atomically; refuses to store non-finite weights."""
        for net_name, m in [*self.nets.items(), ("g_ema", self.g_ema)]:
            if not all(torch.isfinite(p).all() for p in m.parameters()):
                raise NonFiniteLoss(f"non-finite weights in {net_name} at epoch {self.state['epoch']}, step "
                                    f"{self.state['step']}; checkpoint {name} not written, earlier ones kept")
        path = self.run_dir / "checkpoints" / name
        if self.rank != 0:
            return path
        save_checkpoint(path, self.state_dict())
        return path

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        """Mixed precision for the forward passes of a training step (train.amp); a no-op when off."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def _step(self, key: str, opt, loss: torch.Tensor, params) -> None:
        """Backward (scaled under fp16), all-reduce the gradients across processes, optimizer step."""
        scaler = self.scalers[key]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        average_gradients(params, self.world)
        scaler.step(opt)
        scaler.update()

    def _batch(self, idx: torch.Tensor, split: ImageSet | None = None):
        split = split or self.data.train
        tokens, lengths, _ = split.sample_captions(idx)
        return tokens.to(self.device), lengths.to(self.device)

    def encoder_step(self, idx: torch.Tensor) -> dict:
        tc, text, enc = self.cfg.train, self.nets.text_encoder, self.enc_fwd
        x = self.images[idx.to(self.device)]
        views = torch.cat([self._view(x) for _ in range(2)])  # (2B, 3, S, S)
        with self._autocast():
            t = text(*self._batch(idx))
            r1, r2 = enc(views).float().chunk(2)  # losses in float32
            t_emb, prior = text.embed(t).float(), text.predict_representation(t).float()
        sem = self.semantics[idx.to(self.device)]
        target = losses.affinity_targets(sem @ sem.t(), tc.affinity_alpha, tc.affinity_temperature)
        l_it = losses.soft_info_nce(r1, t_emb, target, tc.temperature)
        l_ii = losses.soft_info_nce(r1, r2, target, tc.temperature)
        l_sem = 0.5 * (losses.cosine_distance(r1, sem) + losses.cosine_distance(r2, sem))
        l_prior = losses.cosine_distance(prior, r1.detach())
        loss = tc.text_weight * l_it + tc.ssl_weight * l_ii + tc.semantic_weight * l_sem + l_prior
        out = {"enc/image_text": l_it, "enc/image_image": l_ii, "enc/semantic": l_sem, "enc/prior": l_prior}
        if tc.mix_weight > 0:  # i-Mix: a mix of two images should find both, in proportion, among texts and views
            n = x.shape[0]
            perm = torch.randperm(n, device=self.device)
            lam = torch.distributions.Beta(tc.mix_alpha, tc.mix_alpha).sample((n,)).to(self.device)
            v1 = views[:n]
            mixed = lam.view(n, 1, 1, 1) * v1 + (1 - lam.view(n, 1, 1, 1)) * v1[perm]
            with self._autocast():
                r_mix = enc(mixed.contiguous(memory_format=torch.channels_last)).float()
            t_mix = losses.mixed_targets(target, lam, perm)
            l_mix = 0.5 * (losses.soft_cross_entropy(r_mix, t_emb, t_mix, tc.temperature)
                           + losses.soft_cross_entropy(r_mix, r2, t_mix, tc.temperature))
            loss = loss + tc.mix_weight * l_mix
            out["enc/mix"] = l_mix
        if tc.local_crops > 0:  # multi-crop: each small crop should find its image's global views
            local = torch.cat([random_crop_flip(x, tc.local_size) for _ in range(tc.local_crops)])
            with self._autocast():
                r_loc = enc(local).float().chunk(tc.local_crops)
            l_loc = sum(0.5 * (losses.soft_info_nce(r, r1, target, tc.temperature)
                               + losses.soft_info_nce(r, r2, target, tc.temperature)) for r in r_loc) / tc.local_crops
            loss = loss + tc.ssl_weight * l_loc
            out["enc/local"] = l_loc
        for group in self.opt_enc.param_groups:
            group["lr"] = self._encoder_lr()
        self._step("enc", self.opt_enc, loss, [p for g in self.opt_enc.param_groups for p in g["params"]])
        return out

    def _view(self, x: torch.Tensor) -> torch.Tensor:
        """One augmented view of uint8 images for the encoder stage (train.view_scale_min)."""
        size, smin = self.cfg.data.image_size, self.cfg.train.view_scale_min
        view = random_crop_flip(x, size) if smin >= 1 else random_resized_crop(x, size, (smin, 1.0))
        return color_jitter(view, self.cfg.train.view_jitter)

    def _encoder_lr(self) -> float:
        """Linear warm-up over the first epoch, then cosine decay to 0 over the encoder stage."""
        total = max(1, self.cfg.train.encoder_epochs * self.steps_per_epoch)
        step = self.state["stage_epoch"] * self.steps_per_epoch + self.state["step_in_epoch"]
        return warmup_cosine(self.cfg.train.lr_encoder, step, self.steps_per_epoch, total)

    @torch.no_grad()
    def _condition(self, idx: torch.Tensor):
        """Frozen encoders: real images (B, 3, S, S), text encodings (B, T) and source representations (B, D).

        Each row's r is T's prior from the caption with probability train.text_rep_prob, else E(real
        image); E runs only on the rows that use it (it is in eval mode, so rows are independent)."""
        tc, text, enc = self.cfg.train, self.nets.text_encoder, self.enc_fwd
        real = random_crop_flip(self.images[idx.to(self.device)], self.cfg.data.image_size)
        t = text(*self._batch(idx))
        use_text = torch.rand(real.shape[0], device=self.device) < tc.text_rep_prob
        r = text.predict_representation(t)
        rows = torch.nonzero(~use_text).squeeze(1)
        if len(rows):
            r[rows] = enc(real[rows]).to(r.dtype)
        return real, t, r

    def gan_step(self, idx: torch.Tensor) -> dict:
        tc, G, D, E = self.cfg.train, self.nets.generator, self.nets.discriminator, self.enc_fwd
        real, t, r = self._condition(idx)
        t_wrong = t.roll(1, dims=0)  # another image's caption
        # model.d_rep: D also sees r (the wrong pair gets the other image's r too); else r is not D's input
        r_d, r_wrong = (r, r.roll(1, dims=0)) if self.cfg.model.d_rep else (None, None)
        z = torch.randn(real.shape[0], self.cfg.model.noise_dim, device=self.device)
        aug = lambda img: diff_augment(img, tc.diffaug)  # noqa: E731 - the image itself when the policy is ""
        # D step: one conv pass over [real | fake]; the real features are scored with their own caption
        # and with another image's (matching-aware D). The fake keeps its graph: the D step does not
        # change G, so the G step below reuses it (with a fresh augmentation) instead of re-running G.
        with self._autocast():
            c, mu, logvar = G.condition(t)
            fake = self.synth_fwd(z, c, r)
            h, p = self._d_features(D, aug(torch.cat([real, fake.detach()])))
            h_real, h_fake = h.chunk(2)
            d_real, d_wrong, d_fake = (D.logits(h, tt, rr).float() for h, tt, rr in
                                       ((h_real, t, r_d), (h_real, t_wrong, r_wrong), (h_fake, t, r_d)))
        d_loss = self.d_loss(d_real, d_wrong, d_fake, tc.mismatch_weight)
        out = {"gan/d_loss": d_loss, "gan/d_real": d_real.mean(), "gan/d_fake": d_fake.mean(),
               "gan/d_wrong": d_wrong.mean()}
        if p is not None:  # model.d_patch: every patch real vs generated, the same loss without a mismatch term
            p_real, p_fake = p.float().chunk(2)
            d_patch = self.d_loss(p_real, p_fake, p_fake, 0.0)
            d_loss = d_loss + d_patch
            out.update({"gan/d_patch": d_patch, "gan/d_patch_real": p_real.mean(), "gan/d_patch_fake": p_fake.mean()})
        if tc.r1_gamma > 0 and self.state["step"] % tc.r1_every == 0:
            real_r1 = real.detach().requires_grad_(True)  # float32: the double backward stays unscaled
            h_r1, p_r1 = self._d_features(D, aug(real_r1))
            logit_r1 = D.logits(h_r1, t, r_d) + (0 if p_r1 is None else p_r1.mean(1))
            r1 = losses.r1_penalty(logit_r1, real_r1)
            d_loss = d_loss + 0.5 * tc.r1_gamma * tc.r1_every * r1
            out["gan/r1"] = r1
        self._step("d", self.opt_d, d_loss, D.parameters())
        # G step: gradients flow through D and E to the image only (their weights need none)
        D.requires_grad_(False)
        with self._autocast():
            g_adv, g_patch = self.adversarial_loss(aug(fake), t, r_d)
            if g_patch is not None:
                out["gan/g_patch"] = g_patch
            distill = losses.cosine_distance(E(diff_augment(fake, tc.distill_aug)).float(), r)  # what E judges
        D.requires_grad_(True)
        kl = losses.kl_normal(mu.float(), logvar.float())
        g_loss = g_adv + tc.kl_weight * kl + tc.distill_weight * distill
        self._step("g", self.opt_g, g_loss, G.parameters())
        self._update_ema()
        out.update({"gan/g_adv": g_adv, "gan/kl": kl, "gan/distill": distill})
        return out

    @staticmethod
    def _d_features(D, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D's pooled features (N, 8d) and, with model.d_patch, its patch logits (N, 64) from one pass; else None."""
        return D.features_and_patches(img) if D.patch is not None else (D.features(img), None)

    def adversarial_loss(self, img: torch.Tensor, t: torch.Tensor, r_d: torch.Tensor | None
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The generator's adversarial loss on (already augmented) generated images img, with model.d_patch its
        patch term included, and that patch term alone (None without the head)."""
        h, p = self._d_features(self.nets.discriminator, img)
        g_adv = self.g_loss(self.nets.discriminator.logits(h, t, r_d).float())
        if p is None:
            return g_adv, None
        g_patch = self.g_loss(p.float())
        return g_adv + g_patch, g_patch

    @torch.no_grad()
    def _update_ema(self) -> None:
        """EMA of the generator's weights with a warm-up: the decay after n GAN steps is
        min(train.ema_decay, (1 + n) / (10 + n)), so the average spans about the last n/9 steps early on
        and never keeps much of the random initialisation. BatchNorm statistics are copied."""
        n = self.state.get("gan_steps", 0)
        self.state["gan_steps"] = n + 1
        decay = ema_decay(self.cfg.train.ema_decay, n)
        ema_p, p = list(self.g_ema.parameters()), list(self.nets.generator.parameters())
        torch._foreach_lerp_(ema_p, p, 1.0 - decay)
        for b_ema, b in zip(self.g_ema.buffers(), self.nets.generator.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ evaluation
    def _fixed_inputs(self) -> dict:
        """Fixed (noise, caption) pairs rendered at every snapshot: 4 val + 4 test-class captions x 8 noises."""
        g = torch.Generator().manual_seed(1234)
        rows = []
        for split in (self.data.val, self.data.test):
            pick = torch.randperm(len(split), generator=g)[:4]
            for i in pick.tolist():
                j = int(torch.nonzero(split.lengths[i] > 0)[0])
                rows.append((split.tokens[i, j], split.lengths[i, j], split.captions[i][j]))
        z = torch.randn(8, self.cfg.model.noise_dim, generator=g)
        return {"tokens": torch.stack([r[0] for r in rows]), "lengths": torch.stack([r[1] for r in rows]),
                "captions": [r[2] for r in rows], "z": z}

    @torch.no_grad()
    def sample_grid(self, path: Path) -> Path:
        """Render the fixed inputs with the EMA generator (text-only path) to a PNG grid, one caption per row."""
        from .generate import generate_from_tokens
        f = self.fixed
        imgs = generate_from_tokens(self.nets.text_encoder, self.g_ema, f["tokens"], f["lengths"], f["z"],
                                    self.device)  # (C, K, 3, 64, 64)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(imgs.flatten(0, 1), path, nrow=imgs.shape[1], normalize=True, value_range=(-1, 1))
        return path

    @torch.no_grad()
    def validate(self) -> dict:
        """Label-free validation on held-out train-class images (selection metric: val/kid in stage 2)."""
        from metrics.generation import kid
        from metrics.grid import grid_contrast
        from .generate import generate_from_tokens
        text, enc = self.nets.text_encoder, self.nets.encoder
        modes = text.training, enc.training
        text.eval(), enc.eval()
        val = self.data.val
        x = center_crop(val.images, self.cfg.data.image_size).to(self.device).float().div(127.5).sub(1)
        slot = (val.lengths > 0).float().argmax(1)  # first valid caption of each image
        ar = torch.arange(len(val))
        tokens, lengths = val.tokens[ar, slot].to(self.device), val.lengths[ar, slot].to(self.device)
        t = text(tokens, lengths)
        r_real = enc(x)
        # the image-text space is the one stage 1 trained: before the end-of-stage whitening
        it_loss = losses.info_nce(enc.represent(x), text.embed(t), self.cfg.train.temperature)
        out = {"val/image_text_loss": it_loss.item()}
        if self.state["stage"] == "encoder" or self.state["stage_epoch"] == 0:
            out.update(self.monitor_encoder())
        if self.state["stage"] == "gan":
            z = torch.randn(len(val), 1, self.cfg.model.noise_dim, generator=torch.Generator().manual_seed(7))
            fake = generate_from_tokens(text, self.g_ema, tokens, lengths, z, self.device, per_caption_noise=True)
            r_fake = enc(fake[:, 0])
            subset = min(100, len(val) // 2)
            out["val/kid"] = kid(r_real.cpu().numpy(), r_fake.cpu().numpy(), subset_size=max(subset, 2))[0]
            out["val/distill"] = losses.cosine_distance(r_fake, text.predict_representation(t)).item()
            try:  # the blocky pattern: edges on the last upsampling's 2-px grid (photos ~1; metrics/grid.py)
                out["val/grid_contrast"] = grid_contrast(fake[:, 0], 2)
            except ValueError:  # flat images: no ratio to report
                pass
        text.train(modes[0]), enc.train(modes[1])
        return out

    @torch.no_grad()
    def monitor_encoder(self) -> dict:
        """kNN-10 accuracy of the representation on all 25 classes and on the 5 unseen ones.

        Uses class labels for *monitoring only*: nothing is trained or selected on it.
        """
        from metrics.encoder import knn_accuracy
        from metrics.evaluate import embed_images
        allset = self.data.all_images()
        feats = embed_images(self.nets.encoder, allset.images, self.cfg.data.image_size, self.device)
        labels = allset.labels.numpy()
        test = np.isin(labels, self.data.test_classes)
        out = {}
        for key, mask in (("monitor/knn_all", np.ones_like(test)), ("monitor/knn_test", test)):
            try:
                out[key] = knn_accuracy(feats[mask], labels[mask], k=self.cfg.eval.knn_k)
            except ValueError:  # too few images per class (tiny runs)
                pass
        return out

    # ------------------------------------------------------------------ loop
    def _log(self, row: dict) -> None:
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

    def set_stage_modes(self, stage: str) -> None:
        """The encoders train in stage "encoder" and are frozen (eval mode, no gradients) in stage "gan"."""
        frozen = stage == "gan"
        for m in (self.nets.text_encoder, self.nets.encoder):
            m.train(not frozen).requires_grad_(not frozen)

    def run_stage(self, stage: str, epochs: int) -> None:
        st, tc = self.state, self.cfg.train
        step_fn = self.encoder_step if stage == "encoder" else self.gan_step
        bs, steps = (self.bs, self.steps_per_epoch) if stage == "encoder" else (self.gan_bs, self.gan_steps_per_epoch)
        self.set_stage_modes(stage)
        while st["stage_epoch"] < epochs:
            if st["perm"] is None:  # the same order on every process
                g = torch.Generator().manual_seed(tc.seed * 100_003 + st["epoch"])
                st["perm"] = torch.randperm(len(self.data.train), generator=g)
            t0, stage_steps = time.time(), 0
            while st["step_in_epoch"] < steps:
                k = st["step_in_epoch"]
                out = step_fn(st["perm"][k * bs:(k + 1) * bs][self.rank::self.world])
                st["step"] += 1
                st["step_in_epoch"] += 1
                st["images_seen"] += bs
                stage_steps += 1
                if tc.max_steps and stage_steps >= tc.max_steps:
                    st["step_in_epoch"] = steps  # smoke runs: cut the epoch short
                last_step = st["step_in_epoch"] == steps
                if st["step"] % tc.log_every == 0 or last_step or self.stop_requested:
                    vals = {k: float(v.detach()) for k, v in out.items()}  # the only host sync of a step
                    self._check_finite(vals)
                    self._log({"stage": stage, "epoch": st["epoch"], "step": st["step"],
                               "images_seen": st["images_seen"], **vals})
                if any_process(self.stop_requested, self.world):  # all processes stop at the same step
                    self.stop_requested = True
                    return
            broadcast_buffers([m for _, m in self.nets.items()] + [self.g_ema], self.world)
            st["stage_epoch"] += 1
            st["epoch"] += 1
            st["step_in_epoch"], st["perm"] = 0, None
            row = {"stage": stage, "epoch": st["epoch"], "step": st["step"], "images_seen": st["images_seen"],
                   "time/epoch_seconds": time.time() - t0}
            last_of_stage = st["stage_epoch"] == epochs
            if (st["stage_epoch"] % tc.eval_every == 0 or last_of_stage) and self.rank == 0:
                row.update(self.validate())
                if stage == "gan":
                    grid = self.sample_grid(self.run_dir / "samples" / f"epoch_{st['epoch']:03d}.png")
                    if self.tracker is not None:
                        self.tracker.log_image("samples/fixed_grid", grid, self.fixed["captions"],
                                               step=st["images_seen"])
                    if row["val/kid"] < st["best_metric"]:
                        st["best_metric"], st["best_epoch"] = row["val/kid"], st["epoch"]
                        self.save("best.pt")
                        row["val/best_kid"] = st["best_metric"]
            self._log(row)
            if self.rank == 0:
                shown = {k: v for k, v in row.items() if k.startswith(("val/", "time/", "monitor/"))}
                self.log(f"[{stage}] epoch {st['epoch']} ({st['stage_epoch']}/{epochs}) "
                         + " ".join(f"{k}={v:.4g}" for k, v in shown.items()))
            self.save("last.pt")

    @torch.no_grad()
    def finish_encoder_stage(self) -> None:
        """End of stage 1: fit the source encoder's whitening (train.whiten_eps > 0) on the representations
        of the centre crops of the training images, label-free, and give the text encoder's prior the same
        one, so that a caption's predicted representation lives in the same space. train.whiten_eps = 0
        leaves (or puts) both at the identity."""
        eps, enc = self.cfg.train.whiten_eps, self.nets.encoder
        if eps <= 0:
            enc.whiten.reset()
            self.nets.text_encoder.whiten.reset()
            return
        from metrics.evaluate import embed_images
        mode = enc.training
        z = torch.from_numpy(embed_images(enc, self.images, self.cfg.data.image_size, self.device, whitened=False))
        enc.train(mode)
        enc.whiten.fit(z, eps)
        self.nets.text_encoder.whiten.load_state_dict(enc.whiten.state_dict())
        if self.rank == 0:
            st = self.state
            row = {"stage": "encoder", "epoch": st["epoch"], "step": st["step"], "images_seen": st["images_seen"],
                   **{f"{k}_whitened": v for k, v in self.monitor_encoder().items()}}
            self._log(row)
            self.log(f"[encoder] representation whitened (eps {eps}) on {len(z)} training images "
                     + " ".join(f"{k}={v:.4g}" for k, v in row.items() if k.startswith("monitor/")))

    def fit(self) -> dict:
        """Run (or resume) both stages; returns a summary. Stops early, resumable, if stop_requested."""
        tc, st = self.cfg.train, self.state
        t0 = time.time()
        if st["stage"] == "encoder":
            self.run_stage("encoder", tc.encoder_epochs)
            if self.stop_requested:
                return self._interrupted()
            self.finish_encoder_stage()
            st.update(stage="gan", stage_epoch=0, step_in_epoch=0, perm=None)
        if st["stage"] == "gan":
            self.run_stage("gan", tc.gan_epochs)
            if self.stop_requested:
                return self._interrupted()
            st["stage"] = "done"
        if not (self.run_dir / "checkpoints" / "best.pt").exists():
            self.save("best.pt")  # no GAN epoch ran: the only model is the last one
        self.save("last.pt")
        return {"status": "finished", "epochs": st["epoch"], "steps": st["step"],
                "images_seen": st["images_seen"], "best_epoch": st["best_epoch"],
                "best_val_kid": st["best_metric"] if math.isfinite(st["best_metric"]) else None,
                "train_seconds": time.time() - t0}

    def _interrupted(self) -> dict:
        path = self.save("last.pt")
        self.log(f"stop requested: saved resumable checkpoint {path}")
        return {"status": "interrupted", "epochs": self.state["epoch"], "steps": self.state["step"],
                "checkpoint": str(path)}
