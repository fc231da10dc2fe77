"""The README's picture: the notebook's 3.2 figure (images generated from unseen-class captions alone, beside the
photo each caption was written for) for one run, saved as a PNG.

    python -m analysis.hero runs/<run_id> --out assets/hero.png

The run's best checkpoint (else last), its own class split and the same seeded captions and noise as the notebook.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.hero", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run folder or checkpoint")
    p.add_argument("--out", default="assets/hero.png", help="PNG to write (default: assets/hero.png)")
    p.add_argument("--per-class", type=int, default=5, help="captions per unseen class (columns)")
    p.add_argument("--seed", type=int, default=0, help="which captions and noise (the notebook's: 0)")
    args = p.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    from core.files import CheckpointError, atomic_write
    from models.inference import load_models

    from . import figures, loading
    try:
        nets, vocab, cfg, _ = load_models(args.run, "cpu")
    except (CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    data = loading.load_run_data(cfg, vocab)
    picks = loading.pick_test_captions(data.test, per_class=args.per_class, seed=args.seed)
    fake = loading.generate_for_picks(nets, cfg, data.test, picks, "cpu", seed=args.seed)
    real = loading.real_images(data.test, [q["image"] for q in picks], cfg.data.image_size)
    fig = figures.plot_caption_grid(fake, real, picks, sorted(data.test_classes))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=64))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
