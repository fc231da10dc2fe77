"""Stage 1, "encoder": the source encoder E and the text encoder T learn from scratch, without class labels.

Per batch: image-text InfoNCE (an image and one of its captions) and image-image InfoNCE (two random crops/flips
of the same image), both with soft positives from the captions' TF-IDF affinity; the representation regresses
onto the caption LSA of its image; T's prior head learns to predict E's representation from the caption. At the
end of the stage the representation is PCA-whitened on the training images (label-free).
"""
from __future__ import annotations

import math

import torch

from data_utils.augment import random_crop_flip
from data_utils.text import caption_semantics, tfidf_matrix
from models.inference import embed_images

from . import losses
from .validation import monitor_encoder


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


class EncoderStage:
    """The encoder stage's optimizer, caption targets and step, over the trainer `tr`'s networks and data."""

    name = "encoder"

    def __init__(self, tr):
        self.tr, tc = tr, tr.cfg.train
        self.opt = encoder_optimizer([*tr.nets.text_encoder.parameters(), *tr.nets.encoder.parameters()], tc)
        tfidf = tfidf_matrix(tr.data.train.captions, tr.data.vocab)  # (N, V) word statistics of each image's captions
        self.semantics = caption_semantics(tfidf, tr.cfg.model.embed_dim, tc.seed).to(tr.device)  # (N, D) LSA targets
        self.bs, self.steps_per_epoch = stage_batches(tc.batch_size, len(tr.data.train))

    def lr(self) -> float:
        """Linear warm-up over the first epoch, then cosine decay to 0 over the encoder stage."""
        tc, st = self.tr.cfg.train, self.tr.state
        total = max(1, tc.encoder_epochs * self.steps_per_epoch)
        step = st["stage_epoch"] * self.steps_per_epoch + st["step_in_epoch"]
        return warmup_cosine(tc.lr_encoder, step, self.steps_per_epoch, total)

    def step(self, idx: torch.Tensor) -> dict:
        tr, tc = self.tr, self.tr.cfg.train
        text, enc = tr.nets.text_encoder, tr.enc_fwd
        x = tr.images[idx.to(tr.device)]
        views = torch.cat([random_crop_flip(x, tr.cfg.data.image_size) for _ in range(2)])  # (2B, 3, S, S)
        with tr.autocast():
            t = text(*tr.captions(idx))
            r1, r2 = enc(views).float().chunk(2)  # losses in float32
            t_emb, prior = text.embed(t).float(), text.predict_representation(t).float()
        sem = self.semantics[idx.to(tr.device)]
        target = losses.affinity_targets(sem @ sem.t(), tc.affinity_alpha, tc.affinity_temperature)
        l_it = losses.soft_info_nce(r1, t_emb, target, tc.temperature)
        l_ii = losses.soft_info_nce(r1, r2, target, tc.temperature)
        l_sem = 0.5 * (losses.cosine_distance(r1, sem) + losses.cosine_distance(r2, sem))
        l_prior = losses.cosine_distance(prior, r1.detach())
        loss = tc.text_weight * l_it + tc.ssl_weight * l_ii + tc.semantic_weight * l_sem + l_prior
        for group in self.opt.param_groups:
            group["lr"] = self.lr()
        tr.optimizer_step("enc", self.opt, loss, [p for g in self.opt.param_groups for p in g["params"]])
        return {"enc/image_text": l_it, "enc/image_image": l_ii, "enc/semantic": l_sem, "enc/prior": l_prior}

    @torch.no_grad()
    def finish(self) -> None:
        """End of stage 1: fit the source encoder's whitening (train.whiten_eps > 0) on the representations
        of the centre crops of the training images, label-free, and give the text encoder's prior the same
        one, so that a caption's predicted representation lives in the same space. train.whiten_eps = 0
        leaves (or puts) both at the identity."""
        tr = self.tr
        eps, enc = tr.cfg.train.whiten_eps, tr.nets.encoder
        if eps <= 0:
            enc.whiten.reset()
            tr.nets.text_encoder.whiten.reset()
            return
        mode = enc.training
        z = torch.from_numpy(embed_images(enc, tr.images, tr.cfg.data.image_size, tr.device, whitened=False))
        enc.train(mode)
        enc.whiten.fit(z, eps)
        tr.nets.text_encoder.whiten.load_state_dict(enc.whiten.state_dict())
        if tr.rank == 0:
            st = tr.state
            row = {"stage": "encoder", "epoch": st["epoch"], "step": st["step"], "images_seen": st["images_seen"],
                   **{f"{k}_whitened": v for k, v in monitor_encoder(tr).items()}}
            tr.log_row(row)
            tr.log(f"[encoder] representation whitened (eps {eps}) on {len(z)} training images "
                   + " ".join(f"{k}={v:.4g}" for k, v in row.items() if k.startswith("monitor/")))
