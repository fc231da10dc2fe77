"""Train only the encoder stage for several config variants, in parallel, and report how discriminative
each source encoder is (the #3 quality goal: kNN-10 on all 25 classes and on the 5 unseen ones).

    python benchmarks/encoder_variants.py VARIANTS.yaml [--config experiments/default.yaml]
                                          [--parallel N] [--out runs/encoder_variants] [--only a,b]

VARIANTS.yaml maps a variant name to its dotted overrides, e.g.

    base: {}
    t005: {train.temperature: 0.05}
    seed1: {train.seed: 1}

Each variant runs `Trainer.run_stage("encoder", train.encoder_epochs)` exactly as a full run's first
stage does (same data, losses, schedule; nothing of stage 2), then embeds the centre crops of all 25
classes' images and scores them with metrics.encoder (kNN-10 and linear probe, 5-fold), after the
end-of-stage whitening (train.whiten_eps) as a full run's stage 2 sees them, and (kNN only) before it. Variants run as
separate processes, N at a time, each with cores / N CPU threads (or sharing the one GPU). Results, one JSON
line per variant with the machine and the monitor curve, go to OUT/results.jsonl and a table is printed.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import yaml  # noqa: E402


def run_variant(name: str, config: str, overrides: dict, out_dir: str, threads: int) -> dict:
    """Encoder stage of one variant; returns its scores (runs in a worker process)."""
    import torch

    from data_utils.dataset import load_data
    from metrics.encoder import encoder_report
    from models.inference import embed_all_images
    from core.config import build_config
    from core.files import read_stats
    from core.runtime import pick_device
    from training.trainer import Trainer

    torch.set_num_threads(threads)
    cfg = build_config(config, overrides)
    device = pick_device(cfg.train.device)
    run_dir = Path(out_dir) / name
    t0 = time.time()
    data = load_data(cfg.data)
    trainer = Trainer(cfg, data, run_dir, device, log=lambda *a, **k: None)
    trainer.run_stage("encoder", cfg.train.encoder_epochs)
    train_s = time.time() - t0

    def scores() -> dict:
        feats, labels, is_test = embed_all_images(trainer.nets.encoder, data, cfg.data.image_size, device)
        return encoder_report(feats, labels, is_test, k=cfg.eval.knn_k)

    raw = scores()  # the representation as trained
    trainer.encoder.finish()  # what a full run takes into stage 2: whitened when train.whiten_eps > 0
    report = scores()
    curve = []
    for row in read_stats(run_dir):
        if "monitor/knn_all" in row:
            curve.append([row["epoch"], row["monitor/knn_all"], row.get("monitor/knn_test")])
    enc_params = sum(p.numel() for p in trainer.nets.encoder.parameters())
    return {"variant": name, "overrides": overrides, "encoder_epochs": cfg.train.encoder_epochs,
            "encoder_params": enc_params, "train_seconds": round(train_s, 1), "device": str(device),
            **{f"{g}_{m}": report[g][m] for g in ("all", "train", "test") for m in ("knn_acc", "linear_acc")},
            **{f"unwhitened_{g}_knn_acc": raw[g]["knn_acc"] for g in ("all", "train", "test")},
            "curve_epoch_knn_all_knn_test": curve}


def machine() -> str:
    """The GPU's name when there is one, else the CPU model and core count (benchmarks.run.cpu_model)."""
    import torch

    from benchmarks.run import cpu_model
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{cpu_model()}, {os.cpu_count()} cores"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", help="YAML: variant name -> {dotted.key: value}")
    ap.add_argument("--config", default="experiments/default.yaml")
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--out", default="runs/encoder_variants")
    ap.add_argument("--only", default="", help="comma-separated variant names to run (default: all)")
    args = ap.parse_args(argv)
    variants = yaml.safe_load(Path(args.variants).read_text()) or {}
    if not isinstance(variants, dict) or not all(isinstance(v, dict) or v is None for v in variants.values()):
        print(f"error: {args.variants}: expected a mapping of variant name -> {{dotted.key: value}}")
        return 2
    if args.only:
        unknown = sorted(set(args.only.split(",")) - set(variants))
        if unknown:
            print(f"error: --only names variants not in {args.variants}: {', '.join(unknown)}")
            return 2
        variants = {k: v for k, v in variants.items() if k in args.only.split(",")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    taken = [n for n in variants if (out / n / "stats.jsonl").exists()]
    if taken:
        print(f"error: {out} already holds variant runs {', '.join(taken)}; pick another --out")
        return 2
    threads = max(1, (os.cpu_count() or 1) // max(1, args.parallel))
    host = machine()
    print(f"{len(variants)} variants, {args.parallel} at a time, {threads} threads each, on {host}", flush=True)
    results = []
    with ProcessPoolExecutor(args.parallel, mp_context=multiprocessing.get_context("spawn")) as pool:  # CUDA-safe
        futs = {pool.submit(run_variant, n, args.config, v or {}, str(out), threads): n for n, v in variants.items()}
        for fut in as_completed(futs):
            try:
                res = fut.result()
            except Exception as e:  # one broken variant must not lose the others
                res = {"variant": futs[fut], "error": f"{type(e).__name__}: {e}"}
            res["machine"], res["parallel"] = host, args.parallel
            results.append(res)
            with open(out / "results.jsonl", "a") as f:
                f.write(json.dumps(res) + "\n")
            print(json.dumps({k: v for k, v in res.items() if k != "curve_epoch_knn_all_knn_test"}), flush=True)
    print(f"\n{'variant':<14} {'knn all':>8} {'train':>7} {'unseen':>7} {'lin all':>8} {'unseen':>7} {'seconds':>8}")
    for r in sorted(results, key=lambda r: -(r.get("all_knn_acc") or 0)):
        if "error" in r:
            print(f"{r['variant']:<14} {r['error']}")
            continue
        print(f"{r['variant']:<14} {r['all_knn_acc']:8.3f} {r['train_knn_acc']:7.3f} {r['test_knn_acc']:7.3f} "
              f"{r['all_linear_acc']:8.3f} {r['test_linear_acc']:7.3f} {r['train_seconds']:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
