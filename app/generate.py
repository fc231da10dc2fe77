"""Draw flowers from your own captions with a trained run: one row of images per caption.

    python -m app.generate --checkpoint runs/<id> \\
        --caption "this flower has large pink petals with a yellow center" --caption "..." -n 8

The checkpoint is a file or a run folder (its best.pt, else last.pt). At test time the generator receives noise,
the caption's text encoding and the text encoder's prior guess of the source representation; no image is needed.
Words outside the run's vocabulary are read as <unk> and named; a caption with no known word is refused (exit 2).

`--truncation PSI` (the "truncation trick"): the noise is drawn as PSI * z, z ~ N(0, I), pulling samples
towards the generator's typical image for the caption — more faithful, less varied.
"""
from __future__ import annotations

import argparse
import sys

from torchvision.utils import save_image

from core.io import CheckpointError
from core.runtime import pick_device
from models.inference import generate_captions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.generate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or a run directory")
    p.add_argument("--caption", action="append", required=True, help="repeat for several rows")
    p.add_argument("-n", type=int, default=8, help="images per caption (different noise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="noise scale in [0, 1]: lower = more faithful, less varied (default: the run's eval.truncation)")
    p.add_argument("--out", default="generated.png")
    args = p.parse_args(argv)
    if args.n < 1:
        print(f"error: -n must be at least 1 (images per caption), got {args.n}", file=sys.stderr)
        return 2
    try:
        imgs = generate_captions(args.checkpoint, args.caption, args.n, args.seed, pick_device("auto"),
                                 args.truncation, log=print)
    except (ValueError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_image(imgs.flatten(0, 1), args.out, nrow=args.n, normalize=True, value_range=(-1, 1))
    for i, c in enumerate(args.caption):
        print(f"row {i}: {c}")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
