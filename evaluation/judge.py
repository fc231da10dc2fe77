"""The judge: a classifier of every class in the data cache (all 102 Oxford flowers), for evaluation only.

The project will be scored by an independent classifier on how often images generated from a test class's
captions are recognised as that class. The judge is this repository's stand-in for it: a residual CNN at 64 px
(the generator's full resolution), trained from scratch like the evaluation network of evaluation/evaluator.py
but with the labels of **all** cached images, the 5 test classes included, minus a seeded stratified
hold-out (20 % per class) on which its accuracy on real photos is measured. It sees the test classes' photos,
so it is never used in training or checkpoint selection; it only scores generated images afterwards, like the
external classifier. (The evaluator, which defines the FID/KID space, never sees the test classes.)

Recognition is reported for images generated from test-class captions (samples.npz) and, as the reference that
tells a generator that cannot draw flowers from one that cannot draw *new* ones, from captions of held-out
train-class photos; each three ways, among all classes of the cache (102), among the run's 25 classes and among
the classes of the set (5 test / 20 train), beside the same rates on the judge's held-out real photos.

The network (JUDGE_SPEC) is evaluation/judge_net.py's residual CNN at 64 px, trained for 100 epochs on random
resized crops with AdamW (weight decay 0.05), its predictions averaged over each image and its mirror image:
0.855-0.859 held-out accuracy over the 102 classes on two hosts (the earlier plain 5-layer form, 30 epochs, 0.740;
docs/experiments.md). One judge is trained per cache (18-48 min on a 2-core CPU, once) and kept beside it
(``flowers.judge.pt`` for ``flowers.h5``), under a fingerprint like the evaluator's; its training floats, and so
its scores, differ a little between hosts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from data_utils.cache import load_cache

from .evaluator import Evaluator, EvaluatorSpec, load_or_train, stratified_holdout

__all__ = ["JUDGE_SPEC", "judge_path", "load_judge", "recognition_rates", "judge_report", "training_minutes"]

JUDGE_SPEC = EvaluatorSpec(input_size=64, width=32, epochs=100, weight_decay=0.05, holdout_fraction=0.2, arch="resnet",
                           augment="resized", flip_average=True)


# Seconds per image and epoch of training at width 32, measured alone at 2 threads on an AMD EPYC 2-core host
# (resnet: 2 timed epochs of JUDGE_SPEC, 15.5 s each for its 6,556 training images; plain: the earlier judge,
# 30 epochs in ~1.5 min). Hosts of that kind differ up to ~3x.
_SECONDS_PER_IMAGE_EPOCH = {"resnet": 2.4e-3, "plain": 4.6e-4}


def training_minutes(n_images: int, spec: EvaluatorSpec = JUDGE_SPEC) -> float:
    """Rough wall time of training the judge on `n_images` cached images (minus the hold-out) on a 2-core CPU."""
    per = _SECONDS_PER_IMAGE_EPOCH.get(spec.arch, _SECONDS_PER_IMAGE_EPOCH["resnet"]) * (spec.width / 32) ** 2
    return n_images * (1 - spec.holdout_fraction) * spec.epochs * per / 60


def judge_path(cache: Path) -> Path:
    """Where the judge of `cache` is kept: beside it, ``<stem>.judge.pt``."""
    cache = Path(cache)
    return cache.with_name(f"{cache.stem}.judge.pt")


def load_judge(cache: Path, spec: EvaluatorSpec = JUDGE_SPEC, device="cpu", log=print
               ) -> tuple[Evaluator, bool, tuple[torch.Tensor, np.ndarray]]:
    """The judge of `cache` (trained on every cached image, or read from ``judge_path``) and whether it was
    cached; also the cache's images (N, 3, S, S) uint8 and labels (N,), which its hold-out refers to."""
    data = load_cache(Path(cache))
    images = torch.from_numpy(np.ascontiguousarray(data.images.transpose(0, 3, 1, 2)))
    where = judge_path(cache)
    minutes = training_minutes(len(images), spec)
    announce = (f"training the judge once for this data cache (all {len(images):,} images, {spec.epochs} epochs): "
                f"{'under a minute' if minutes < 1 else f'about {minutes:.0f} min'} on a 2-core CPU; kept as {where}")
    judge, cached = load_or_train(where, images, data.labels, spec, device,
                                  log=lambda m: log(m.replace("evaluator", "judge", 1)), announce=announce)
    return judge, cached, (images, data.labels)


def recognition_rates(logits: np.ndarray, classes: Sequence[int], labels: np.ndarray,
                      candidate_sets: dict[str, Sequence[int]]) -> dict[str, float]:
    """Share of rows whose argmax among each candidate set of classes is its label.

    logits (N, C) over `classes` (C dataset ids); labels (N,) dataset ids, each in every candidate set.
    Returns {name: rate}. Raises ValueError for no rows or a label outside a set (it could never be right).
    """
    logits, labels, classes = np.asarray(logits), np.asarray(labels), list(classes)
    if len(labels) == 0:
        raise ValueError("no images to recognise")
    out = {}
    for name, cands in candidate_sets.items():
        cands = sorted(cands)
        missing = sorted(set(labels.tolist()) - set(cands))
        if missing:
            raise ValueError(f"candidate set {name!r} lacks the label(s) {missing}")
        unknown = sorted(set(cands) - set(classes))
        if unknown:
            raise ValueError(f"candidate set {name!r} has class(es) {unknown} the judge does not know")
        cols = [classes.index(c) for c in cands]
        pred = np.asarray(cands)[logits[:, cols].argmax(1)]
        out[name] = float(np.mean(pred == labels))
    return out


def judge_report(judge: Evaluator, samples: dict[str, tuple[torch.Tensor, np.ndarray]], all_images: torch.Tensor,
                 all_labels: np.ndarray, run_classes: Sequence[int]) -> dict:
    """How often the judge recognises generated images as their caption's class.

    samples: {name: (uint8 (M, 3, 64, 64), labels (M,))}, e.g. images from test-class captions and from
    held-out train-class captions. For each: rates among all the judge's classes ("all"), the run's classes
    ("run") and the classes of that sample set ("own"), beside the same rates on the judge's held-out real
    photos of those classes (all_images / all_labels: what the judge was trained on, hold-out included).
    """
    hold = stratified_holdout(all_labels, judge.spec.holdout_fraction, judge.spec.seed)
    out = {}
    for name, (images, labels) in samples.items():
        labels = np.asarray(labels)
        own = sorted(set(labels.tolist()))
        sets = {"all": judge.classes, "run": list(run_classes), "own": own}
        real = np.flatnonzero(hold & np.isin(all_labels, own))
        out[name] = {"value": recognition_rates(judge.logits(images), judge.classes, labels, sets),
                     "real_reference": recognition_rates(judge.logits(all_images[torch.as_tensor(real)]),
                                                         judge.classes, all_labels[real], sets),
                     "chance": {k: 1.0 / len(v) for k, v in sets.items()},
                     "n": int(len(labels)), "n_real": int(len(real))}
    out["judge"] = {k: v for k, v in judge.info.items() if k != "train_seconds"}
    return out
