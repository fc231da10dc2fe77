"""End-of-run evaluation: the same code runs at the end of training and on any saved checkpoint
(`python -m app.evaluate`).

`evaluate` builds one `EvalContext`, runs the registered metric families (evaluation/families.py) and writes
out_dir/{metrics.json, embeddings.npz, samples.npz, evaluator.pt}. See evaluation/report.py for every key.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from core.files import atomic_write, atomic_write_text
from models.build import param_table
from training.schedule import FROZEN_IN_GAN

from . import families  # noqa: F401 - registers the metric families
from .context import EvalContext
from .evaluator import EvaluatorSpec, load_or_train
from .judge import JUDGE_SPEC, load_judge
from .registry import run_metrics

NOTES = {
    "kid": "KID is unbiased; at a few hundred images it is the more reliable of FID/KID (FID is biased upwards "
           "at small N). Compare each value with its real-vs-real floor, computed at the same sample sizes.",
    "evaluator": "FID/KID/recognition use an evaluation CNN trained from scratch on train-class images only "
                 "(evaluation/evaluator.py); *_encoder metrics use the project's own source encoder.",
    "judge": "recognised_by_judge uses a CNN trained from scratch on every cached image with its label, test "
             "classes included (evaluation/judge.py): evaluation only, the stand-in for an external classifier."}


def _load_evaluators(ctx: EvalContext, out_dir: Path, spec: EvaluatorSpec, judge_spec: EvaluatorSpec | None
                     ) -> tuple[dict, dict]:
    """Put the evaluation network and the judge into ctx (trained once, then read from their caches) ->
    (report["evaluator"], runtime entries)."""
    tr_set, runtime = ctx.train_class_images, {"evaluator_cached": False, "evaluator_train_seconds": None}
    try:
        ctx.evaluator, runtime["evaluator_cached"] = load_or_train(out_dir / "evaluator.pt", tr_set.images,
                                                                   tr_set.labels.numpy(), spec, ctx.device, ctx.log)
        section = {k: v for k, v in ctx.evaluator.info.items() if k != "train_seconds"}
        section["spec"] = asdict(spec)
        runtime["evaluator_train_seconds"] = ctx.evaluator.info.get("train_seconds")
    except ValueError as e:
        section = {"unavailable": str(e)}
    runtime.update(judge_cached=False, judge_train_seconds=None)
    if judge_spec is not None:
        try:
            judge, runtime["judge_cached"], (j_images, j_labels) = load_judge(Path(ctx.cfg.data.cache), judge_spec,
                                                                              ctx.device, ctx.log)
            ctx.judge = (judge, j_images, j_labels)
            runtime["judge_train_seconds"] = judge.info.get("train_seconds")
        except (ValueError, OSError) as e:
            ctx.judge = {"unavailable": f"{type(e).__name__}: {e}"}
    return section, runtime


def _savez(path: Path, **arrays) -> None:
    """np.savez_compressed to exactly `path`, atomically (numpy would append .npz to a temp name)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    atomic_write(path, write)


def _write_files(ctx: EvalContext, report: dict, out_dir: Path) -> None:
    """embeddings.npz, samples.npz and metrics.json, each written atomically."""
    s = ctx.samples
    _savez(out_dir / "embeddings.npz", features=ctx.feats.astype(np.float32), labels=ctx.labels,
           is_test_class=ctx.is_test, image_names=np.array(ctx.all_images.names))
    _savez(out_dir / "samples.npz", images=s.images.permute(0, 2, 3, 1).numpy(), labels=s.labels,
           captions=s.captions)
    atomic_write_text(out_dir / "metrics.json", json.dumps(report, indent=2, default=float))


@torch.no_grad()
def evaluate(nets, data, cfg, out_dir: Path, device="cpu", log=print, spec: EvaluatorSpec = EvaluatorSpec(),
             judge_spec: EvaluatorSpec | None = JUDGE_SPEC) -> dict:
    """Compute every registered metric for `nets` (generator = EMA weights) on `data`; write the eval files to
    out_dir. The judge (evaluation/judge.py, trained on every image of cfg.data.cache) is kept beside the cache;
    judge_spec None (or cfg.eval.judge false) skips it."""
    t0 = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for _, m in nets.items():
        m.eval()
    ctx = EvalContext(nets, data, cfg, device, log)
    if not cfg.eval.judge:
        judge_spec, ctx.judge = None, {"unavailable": "skipped (eval.judge=false)"}
    log("evaluation: encoder metrics, baselines, evaluation network, judge, generation metrics "
        f"(into {out_dir}) ...")
    # one BLAS thread for sklearn: multithreaded L-BFGS is up to 50x slower when cores are shared
    with threadpool_limits(1, user_api="blas"):
        report, seconds = run_metrics(ctx, ("encoder", "baselines"), log=log)
    log("encoder kNN: " + ", ".join(f"{g}={report['encoder'][g].get('knn_acc')}" for g in ("all", "train", "test")))
    report["evaluator"], runtime = _load_evaluators(ctx, out_dir, spec, judge_spec)
    with threadpool_limits(1, user_api="blas"):
        generation, gen_seconds = run_metrics(ctx, ("generation",), log=log)
    report["generation"] = generation["generation"]
    table = param_table(nets)
    for row in table:  # trainable = what the GAN-only epochs train: the encoders are frozen there
        row["trainable_params"] = 0 if row["network"] in FROZEN_IN_GAN else row["total_params"]
    report["params"] = {row["network"]: row["total_params"] for row in table}
    report["param_table"] = table
    report["split"] = data.split_record()
    report["notes"] = NOTES
    report["runtime"] = {**runtime, "family_seconds": {**seconds, **gen_seconds}, "seconds": time.time() - t0}
    _write_files(ctx, report, out_dir)
    g = report["generation"]
    log(f"generation: KID(evaluator) {g['kid_evaluator'].get('value')} (floor {g['kid_evaluator'].get('floor')}), "
        f"class consistency {g['class_consistency_encoder_knn']}, eval {report['runtime']['seconds']:.1f}s")
    return report
