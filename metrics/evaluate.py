"""End-of-run evaluation: the same code runs at the end of training and on any saved checkpoint.

    python -m metrics.evaluate --run runs/<id>            # or --checkpoint PATH

Writes runs/<id>/eval/{metrics.json, embeddings.npz, samples.npz} and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from data_utils.augment import center_crop, to_float

from .alignment import class_consistency, r_precision
from .baselines import color_histogram_features, random_cnn_features
from .diversity import ms_ssim_diversity
from .encoder import encoder_report
from .generation import fid, kid, real_floor


@torch.no_grad()
def embed_images(encoder, images: torch.Tensor, size: int, device, batch_size: int = 256) -> np.ndarray:
    """uint8 (N, 3, H, W) -> (N, D) float32 representations of the centre crops."""
    encoder.eval()
    out = [encoder(to_float(center_crop(images[i:i + batch_size], size).to(device))).float().cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def _nhwc(images: torch.Tensor, size: int) -> np.ndarray:
    return center_crop(images, size).permute(0, 2, 3, 1).numpy()


def _unavailable(fn, *args, **kwargs):
    """Run a metric; a too-small input gives {"unavailable": reason} instead of a made-up number."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except ValueError as e:
        return {"unavailable": str(e)}


def test_captions(test_set, per_class: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """(image index, caption slot) pairs: `per_class` distinct images of each test class, one valid caption each."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for cls in sorted(set(test_set.labels.tolist())):
        idx = torch.nonzero(test_set.labels == cls).squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=g)][:per_class]
        for i in idx.tolist():
            valid = torch.nonzero(test_set.lengths[i] > 0).squeeze(1)
            picks.append((i, int(valid[torch.randint(len(valid), (1,), generator=g)])))
    return [p[0] for p in picks], [p[1] for p in picks]


@torch.no_grad()
def evaluate(nets, data, cfg, out_dir: Path, device="cpu", log=print) -> dict:
    """Compute every metric for `nets` (generator = EMA weights) on `data`; write eval files to out_dir."""
    from training.generate import generate_from_tokens
    from training.networks import param_table
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ec, size = cfg.eval, cfg.data.image_size
    text, enc, gen = nets.text_encoder.eval(), nets.encoder.eval(), nets.generator.eval()
    allset = data.all_images()
    labels = allset.labels.numpy()
    is_test = np.isin(labels, data.test_classes)
    feats = embed_images(enc, allset.images, size, device)
    # one BLAS thread for sklearn: multithreaded L-BFGS is up to 50x slower when cores are shared
    blas1 = threadpool_limits(1, user_api="blas")
    report = {"encoder": encoder_report(feats, labels, is_test, k=ec.knn_k)}
    log("encoder kNN: " + ", ".join(f"{g}={report['encoder'][g].get('knn_acc')}" for g in ("all", "train", "test")))
    real_nhwc = _nhwc(allset.images, size)
    report["baselines"] = {
        "color_histogram": encoder_report(color_histogram_features(real_nhwc), labels, is_test, k=ec.knn_k),
        "random_cnn": encoder_report(random_cnn_features(real_nhwc, seed=0), labels, is_test, k=ec.knn_k)}
    blas1.restore_original_limits()

    # text-only generation for captions of test-class images
    test = data.test
    img_idx, slots = test_captions(test, ec.captions_per_test_class)
    tokens = test.tokens[img_idx, slots]
    lengths = test.lengths[img_idx, slots]
    z = torch.randn(len(img_idx), ec.samples_per_caption, cfg.model.noise_dim,
                    generator=torch.Generator().manual_seed(0))
    fake = generate_from_tokens(text, gen, tokens, lengths, z, device, per_caption_noise=True)  # (M, K, 3, 64, 64)
    fake = fake.flatten(0, 1).cpu()
    fake_u8 = ((fake.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    gen_labels = np.repeat(test.labels[img_idx].numpy(), ec.samples_per_caption)
    gen_captions = np.repeat(np.array([test.captions[i][s] for i, s in zip(img_idx, slots)], dtype=object),
                             ec.samples_per_caption)
    f_fake = embed_images(enc, fake_u8, size, device)
    f_test = feats[is_test]
    gen_report = {
        "n_generated": len(fake),
        "class_consistency_encoder_knn": _unavailable(class_consistency, f_fake, gen_labels, f_test,
                                                      labels[is_test], k=ec.knn_k),
        "fid_encoder": _unavailable(fid, f_test, f_fake),
        "kid_encoder": _unavailable(kid, f_test, f_fake, subset_size=min(100, len(f_fake))),
        "real_floor_encoder": _unavailable(real_floor, f_test, kid_subset_size=min(100, len(f_test) // 2)),
    }
    t_emb = text.embed(text(tokens.to(device), lengths.to(device))).cpu().numpy()
    g_emb = f_fake.reshape(len(img_idx), ec.samples_per_caption, -1)[:, 0]
    gen_report["r_precision"] = _unavailable(r_precision, g_emb, t_emb, candidates=min(100, len(img_idx)))
    # diversity: 5 captions x 4 noises
    zd = torch.randn(4, cfg.model.noise_dim, generator=torch.Generator().manual_seed(1))
    div = generate_from_tokens(text, gen, tokens[:5], lengths[:5], zd, device).cpu()
    gen_report["ms_ssim_same_caption"] = _unavailable(ms_ssim_diversity, div)
    report["generation"] = gen_report
    report["params"] = {row["network"]: row["total_params"] for row in param_table(nets)}
    report["param_table"] = param_table(nets)
    report["split"] = data.split_record()

    np.savez_compressed(out_dir / "embeddings.npz", features=feats.astype(np.float32), labels=labels,
                        is_test_class=is_test, image_names=np.array(allset.names))
    np.savez_compressed(out_dir / "samples.npz", images=fake_u8.permute(0, 2, 3, 1).numpy(), labels=gen_labels,
                        captions=gen_captions.astype(str))
    with open(out_dir / "metrics.json", "w") as f:
        json.dump(report, f, indent=2, default=float)
    return report


def main(argv: list[str] | None = None) -> int:
    from data_utils.dataset import load_data
    from data_utils.text import Vocab
    from training.checkpoint import CheckpointError
    from training.generate import load_models
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", help="run directory (uses checkpoints/best.pt, writes RUN/eval/)")
    g.add_argument("--checkpoint", help="checkpoint file (writes eval/ beside its run directory)")
    p.add_argument("--out", help="output folder (default: RUN/eval)")
    args = p.parse_args(argv)
    ckpt_path = Path(args.checkpoint) if args.checkpoint else Path(args.run) / "checkpoints" / "best.pt"
    out = Path(args.out) if args.out else (Path(args.run) if args.run else ckpt_path.parent.parent) / "eval"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        nets, vocab, cfg, _ = load_models(ckpt_path, device)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    data = load_data(cfg.data, vocab=Vocab(vocab.itos))
    report = evaluate(nets, data, cfg, out, device)
    print(json.dumps({k: report[k] for k in ("encoder", "generation", "params")}, indent=1, default=float))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
