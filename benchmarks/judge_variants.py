"""Train the judge (evaluation/judge.py) under other settings and report its held-out accuracy over all classes.

    python benchmarks/judge_variants.py [--cache data/flowers.h5] [--threads N] [--out runs/judge_variants.jsonl]
                                        [FIELD=VALUE ...]

FIELD=VALUE sets a field of the judge's EvaluatorSpec (evaluation/evaluator.py), starting from JUDGE_SPEC, e.g.
``epochs=40 width=40`` or ``arch=plain stem_stride=2 augment=crop flip_average=false weight_decay=5e-4`` (the
judge before the residual one). The network is trained exactly as the judge is (every cached image minus the
seeded 20 % hold-out per class) but kept nowhere; one JSON line with the spec, the held-out accuracy, the
training time and the machine is appended to OUT and printed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def parse_field(spec_cls, item: str) -> tuple[str, object]:
    """'epochs=40' -> ('epochs', 40), typed like the spec's default; ValueError with one line otherwise."""
    key, sep, raw = item.partition("=")
    fields = {f.name: f for f in dataclasses.fields(spec_cls)}
    if not sep or key not in fields:
        raise ValueError(f"expected FIELD=VALUE with FIELD one of {', '.join(fields)}, got {item!r}")
    kind = type(fields[key].default)
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return key, raw.lower() == "true"
        return key, kind(raw)
    except ValueError:
        what = {int: "an integer", float: "a number", bool: "true or false"}.get(kind, kind.__name__)
        raise ValueError(f"{key} needs {what}, got {raw!r}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default="data/flowers.h5")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = all cores)")
    p.add_argument("--out", default="runs/judge_variants.jsonl")
    p.add_argument("fields", nargs="*", metavar="FIELD=VALUE")
    args = p.parse_args(argv)
    from evaluation.judge import JUDGE_SPEC
    try:
        changes = dict(parse_field(type(JUDGE_SPEC), f) for f in args.fields)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not Path(args.cache).is_file():
        print(f"error: no data cache at {args.cache} (make data builds it)", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    from benchmarks.encoder_variants import machine
    from core.runtime import set_threads
    from data_utils.cache import load_cache
    from evaluation.evaluator import train_evaluator

    threads = set_threads(args.threads)
    spec = dataclasses.replace(JUDGE_SPEC, **changes)
    data = load_cache(Path(args.cache))
    images = torch.from_numpy(np.ascontiguousarray(data.images.transpose(0, 3, 1, 2)))
    judge = train_evaluator(images, data.labels, spec, log=lambda m: print(m, flush=True))
    row = {"spec": dataclasses.asdict(spec), "changes": changes, "holdout_acc": judge.info["holdout_acc"],
           "n_classes": judge.info["n_classes"], "train_seconds": round(judge.info["train_seconds"], 1),
           "params": sum(t.numel() for t in judge.net.parameters()),
           "machine": {"device": machine(), "threads": threads, "torch": torch.__version__,
                       "load_avg": os.getloadavg()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
