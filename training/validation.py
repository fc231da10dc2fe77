"""What the trainer checks and renders between epochs: label-free validation on held-out train-class images (the
selection metric val/kid in stage 2), the encoder's kNN monitor, and the fixed (noise, caption) sample grid."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from core.pictures import captioned_grid, save_picture
from data_utils.augment import center_crop
from metrics.encoder import knn_accuracy
from metrics.generation import kid
from metrics.grid import grid_contrast
from models.inference import embed_all_images, generate_from_tokens

from . import losses

# Which way is better for the validation numbers logged during training (W&B keeps each one's best in the run
# summary); val/grid_contrast is good near 1, so it has none.
VALIDATION_GOALS = {"val/kid": "min", "val/best_kid": "min", "val/distill": "min", "val/image_text_loss": "min",
                    **{f"monitor/knn_{g}{w}": "max" for g in ("all", "test") for w in ("", "_whitened")}}


def fixed_inputs(data, noise_dim: int) -> dict:
    """Fixed (noise, caption) pairs rendered at every snapshot: 4 val + 4 test-class captions x 8 noises; "kinds"
    says which rows are seen-class (val) and which unseen-class captions."""
    g = torch.Generator().manual_seed(1234)
    rows = []
    for kind, split in (("seen class", data.val), ("unseen class", data.test)):
        pick = torch.randperm(len(split), generator=g)[:4]
        for i in pick.tolist():
            j = int(torch.nonzero(split.lengths[i] > 0)[0])
            rows.append((split.tokens[i, j], split.lengths[i, j], split.captions[i][j], kind))
    z = torch.randn(8, noise_dim, generator=g)
    return {"tokens": torch.stack([r[0] for r in rows]), "lengths": torch.stack([r[1] for r in rows]),
            "captions": [r[2] for r in rows], "kinds": [r[3] for r in rows], "z": z}


@torch.no_grad()
def sample_grid(text_encoder, g_ema, fixed: dict, path: Path, device) -> Path:
    """Render the fixed inputs with the EMA generator (text-only path) to a PNG grid: one row per caption, the
    caption (and whether its class is seen in training) under its row."""
    imgs = generate_from_tokens(text_encoder, g_ema, fixed["tokens"], fixed["lengths"], fixed["z"],
                                device)  # (C, K, 3, 64, 64)
    captions = [f"{kind}: {c}" for kind, c in zip(fixed["kinds"], fixed["captions"])]
    return save_picture(captioned_grid(imgs, captions), path)


@torch.no_grad()
def monitor_encoder(tr) -> dict:
    """kNN-10 accuracy of the representation on all 25 classes and on the 5 unseen ones.

    Uses class labels for *monitoring only*: nothing is trained or selected on it.
    """
    feats, labels, test = embed_all_images(tr.nets.encoder, tr.data, tr.cfg.data.image_size, tr.device)
    out = {}
    for key, mask in (("monitor/knn_all", np.ones_like(test)), ("monitor/knn_test", test)):
        try:
            out[key] = knn_accuracy(feats[mask], labels[mask], k=tr.cfg.eval.knn_k)
        except ValueError:  # too few images per class (tiny runs)
            pass
    return out


@torch.no_grad()
def validate(tr, g_ema) -> dict:
    """Label-free validation on held-out train-class images (selection metric: val/kid in stage 2)."""
    text, enc = tr.nets.text_encoder, tr.nets.encoder
    modes = text.training, enc.training
    text.eval(), enc.eval()
    val = tr.data.val
    x = center_crop(val.images, tr.cfg.data.image_size).to(tr.device).float().div(127.5).sub(1)
    slot = (val.lengths > 0).float().argmax(1)  # first valid caption of each image
    ar = torch.arange(len(val))
    tokens, lengths = val.tokens[ar, slot].to(tr.device), val.lengths[ar, slot].to(tr.device)
    t = text(tokens, lengths)
    r_real = enc(x)
    # the image-text space is the one stage 1 trained: before the end-of-stage whitening
    it_loss = losses.info_nce(enc.represent(x), text.embed(t), tr.cfg.train.temperature)
    out = {"val/image_text_loss": it_loss.item()}
    if tr.state["stage"] == "encoder" or tr.state["stage_epoch"] == 0:
        out.update(monitor_encoder(tr))
    if tr.state["stage"] == "gan":
        z = torch.randn(len(val), 1, tr.cfg.model.noise_dim, generator=torch.Generator().manual_seed(7))
        fake = generate_from_tokens(text, g_ema, tokens, lengths, z, tr.device, per_caption_noise=True)
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
