"""Evaluate a saved checkpoint: the same metrics as the end of every run.

    python -m app.evaluate --run runs/<id>            # or --checkpoint PATH [--cache data/flowers.h5]

Writes runs/<id>/eval/{metrics.json, embeddings.npz, samples.npz, evaluator.pt, figures/} and prints a table
(metric | value | baseline/floor | what good looks like). Exit code 2, with the file named, for a
missing/corrupt/foreign checkpoint, missing evaluation data or an output folder that cannot be written (checked
before any computing). See evaluation/report.py for every key.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import check_truncation
from core.files import OutputError, check_writable
from core.io import BEST_THEN_LAST, CheckpointError, resolve_checkpoint, run_dir_of
from core.runtime import pick_device
from data_utils.dataset import load_data
from evaluation.evaluate import evaluate
from evaluation.figures import write_run_media
from evaluation.report import print_table
from models.inference import load_models


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", help="run directory (uses checkpoints/best.pt, else last.pt; writes RUN/eval/)")
    g.add_argument("--checkpoint", help="checkpoint file (writes eval/ beside its run directory)")
    p.add_argument("--out", help="output folder (default: RUN/eval)")
    p.add_argument("--cache", help="HDF5 data cache (default: the one in the checkpoint's config)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--captions-per-class", type=int, default=0, metavar="N",
                   help="captions per test class for samples.npz and class consistency (default: the run's "
                        "eval.captions_per_test_class: 40 in current runs, 10 in older ones)")
    p.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="noise scale in [0, 1] for the generated samples (default: the run's eval.truncation, 1)")
    p.add_argument("--judge", action=argparse.BooleanOptionalAction, default=None,
                   help="score with the 102-class judge, trained once per data cache (default: the run's eval.judge)")
    p.add_argument("--no-figures", action="store_true",
                   help="skip eval/figures/*.png (real-vs-generated grid, t-SNE, UMAP)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit 0 and print the table; exit 2 with the file named when input is missing or unusable."""
    args = _parser().parse_args(argv)

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return 2
    if args.captions_per_class < 0:
        return fail(f"--captions-per-class must be >= 1, got {args.captions_per_class}")
    if args.truncation is not None:
        try:
            check_truncation(args.truncation, "--truncation")
        except ValueError as e:
            return fail(str(e))
    if args.run and not Path(args.run).is_dir():
        return fail(f"{args.run}: run folder not found")
    try:
        ckpt = resolve_checkpoint(args.checkpoint or args.run, BEST_THEN_LAST)
        device = pick_device(args.device)
    except (CheckpointError, RuntimeError) as e:
        return fail(str(e))
    try:
        nets, vocab, cfg, _ = load_models(ckpt, device)
    except CheckpointError as e:
        return fail(str(e))
    except (RuntimeError, KeyError, ValueError, TypeError, AssertionError) as e:
        return fail(f"{ckpt}: checkpoint does not fit this code's config or networks ({type(e).__name__}: {e})")
    out = Path(args.out) if args.out else (Path(args.run) if args.run else run_dir_of(ckpt)) / "eval"
    cfg.data.cache = args.cache or cfg.data.cache
    cfg.eval.captions_per_test_class = args.captions_per_class or cfg.eval.captions_per_test_class
    cfg.eval.truncation = cfg.eval.truncation if args.truncation is None else args.truncation
    cfg.eval.judge = cfg.eval.judge if args.judge is None else args.judge
    if not Path(cfg.data.cache).is_file():
        return fail(f"{cfg.data.cache}: evaluation data (HDF5 cache) not found; pass --cache PATH or build it "
                    f"with `python -m data_utils.prepare`")
    try:
        check_writable(out)  # before any computing
    except OutputError as e:
        return fail(str(e))
    try:
        data = load_data(cfg.data, vocab=vocab)
    except (OSError, KeyError, ValueError) as e:
        return fail(f"{cfg.data.cache}: cannot load evaluation data ({type(e).__name__}: {e})")
    err = lambda *a: print(*a, file=sys.stderr)  # noqa: E731 - progress to stderr, the table to stdout
    report = evaluate(nets, data, cfg, out, device, log=err)
    if not args.no_figures:
        write_run_media(out, data.test, cfg.data.image_size, log=err)
    print_table(report)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
