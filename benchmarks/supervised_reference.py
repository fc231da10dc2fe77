"""A reference point for the #3 encoder goal, not part of the product: the source encoder's architecture
trained WITH the train classes' labels, scored like the label-free one.

    python benchmarks/supervised_reference.py [--config experiments/default.yaml] [--epochs N]
                                              [--out runs/supervised_reference.json] [key=value ...]

Same network (model.enc_width, model.embed_dim), crops, batch size, optimizer, learning-rate schedule and
epoch count (train.encoder_epochs) as stage 1, but the loss is cross-entropy over the 20 train classes
(a cosine classifier on the unit-norm representation, temperature train.temperature). Then the centre crops of
all 25 classes' images are embedded and scored with metrics.encoder (kNN-10, linear probe; 5-fold), so the
numbers compare directly with the label-free encoder's in eval/metrics.json. It answers: how discriminative
can this network be on the 5 unseen classes when it is taught the train classes perfectly? Labels are used
here only; the training code (training/) never reads them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def train_supervised(cfg, data, epochs: int, device, log=print):
    """The SourceEncoder trained with cross-entropy on data.train's class labels; returns it in eval mode."""
    import torch
    import torch.nn.functional as F

    from data_utils.augment import random_crop_flip
    from models.encoder import SourceEncoder
    from training.encoder_stage import encoder_optimizer, stage_batches, warmup_cosine

    tc = cfg.train
    torch.manual_seed(tc.seed)
    enc = SourceEncoder(cfg.model.enc_width, cfg.model.embed_dim).to(device)
    classes = list(data.train_classes)
    y = torch.tensor([classes.index(int(c)) for c in data.train.labels], device=device)
    prototypes = torch.nn.Parameter(torch.randn(len(classes), cfg.model.embed_dim, device=device) * 0.01)
    opt = encoder_optimizer([*enc.parameters(), prototypes], tc)
    images, n = data.train.images.to(device), len(data.train)
    bs, steps = stage_batches(tc.batch_size, n)
    total = max(1, epochs * steps)
    for epoch in range(epochs):
        t0, perm = time.time(), torch.randperm(n)
        for s in range(steps):
            for group in opt.param_groups:  # stage 1's schedule
                group["lr"] = warmup_cosine(tc.lr_encoder, epoch * steps + s, steps, total)
            idx = perm[s * bs:(s + 1) * bs].to(device)
            logits = enc(random_crop_flip(images[idx], cfg.data.image_size)) @ F.normalize(prototypes, dim=1).t()
            loss = F.cross_entropy(logits / tc.temperature, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        log(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f} ({time.time() - t0:.1f}s)")
    return enc.eval()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="experiments/default.yaml")
    ap.add_argument("--epochs", type=int, default=0, help="default: the config's train.encoder_epochs")
    ap.add_argument("--out", default="runs/supervised_reference.json")
    ap.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. train.seed=1")
    args = ap.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    from benchmarks.encoder_variants import machine
    from data_utils.dataset import load_data
    from metrics.encoder import encoder_report
    from models.inference import embed_all_images
    from core.config import ConfigError, build_config
    from core.runtime import pick_device

    try:
        cfg = build_config(args.config, dict(o.split("=", 1) for o in args.overrides))
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = pick_device(cfg.train.device)
    epochs = args.epochs or cfg.train.encoder_epochs
    data = load_data(cfg.data)
    t0 = time.time()
    enc = train_supervised(cfg, data, epochs, device)
    train_s = time.time() - t0
    feats, labels, is_test = embed_all_images(enc, data, cfg.data.image_size, device)
    with threadpool_limits(1, user_api="blas"):  # as evaluation.evaluate: a spinning 2nd BLAS thread slows the probe
        report = encoder_report(feats, labels, is_test, k=cfg.eval.knn_k)
    res = {"what": "source encoder architecture trained with train-class labels (reference only)",
           "config": args.config, "overrides": args.overrides, "epochs": epochs,
           "encoder_params": sum(p.numel() for p in enc.parameters()), "train_seconds": round(train_s, 1),
           "device": str(device), "machine": machine(),
           **{f"{g}_{m}": report[g][m] for g in ("all", "train", "test") for m in ("knn_acc", "linear_acc")}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
