"""Draw flowers from your own captions with a trained run: one row of images per caption, the caption under it.

    python -m app.generate --checkpoint runs/<id> \\
        --caption "this flower has large pink petals with a yellow center" --caption "..." -n 8

The checkpoint is a file or a run folder (its best.pt, else last.pt). At test time the generator receives noise,
the caption's text encoding and the text encoder's prior guess of the source representation; no image is needed.
With `--photo FILE` it receives the source encoder's representation of that photo instead (the second test-time
route: a photo, e.g. of a flower the model never saw, and a caption).
Words outside the run's vocabulary are read as <unk> and named; a caption with no known word is refused (exit 2).

`--truncation PSI` (the "truncation trick"): the noise is drawn as PSI * z, z ~ N(0, I), pulling samples
towards the generator's typical image for the caption — more faithful, less varied.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from core.files import OutputError, check_writable
from core.io import CheckpointError
from core.pictures import captioned_grid, save_picture
from core.runtime import pick_device
from models.inference import MAX_CAPTIONS, MAX_IMAGES_PER_CAPTION, generate_captions, shorten


def _check_out(out: str) -> str:
    """--out must name an image file PIL can write (by its extension) in a folder that can be written: its image
    format, else ValueError or OutputError naming it, before the checkpoint is read."""
    suffix = Path(out).suffix.lower()
    if Image.registered_extensions().get(suffix) not in Image.SAVE:
        raise ValueError(f"--out {out}: give an image file name ending in .png or .jpg (got "
                         f"{repr(suffix) if suffix else 'no extension'})")
    check_writable(Path(out).parent)
    return Image.registered_extensions()[suffix]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.generate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or a run directory")
    p.add_argument("--caption", action="append", required=True,
                   help=f"repeat for several rows, at most {MAX_CAPTIONS}")
    p.add_argument("-n", type=int, default=8,
                   help=f"images per caption (different noise), at most {MAX_IMAGES_PER_CAPTION}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="noise scale in [0, 1]: lower = more faithful, less varied (default: the run's eval.truncation)")
    p.add_argument("--photo", metavar="FILE",
                   help="an image whose source representation replaces the text prior's guess for every caption")
    p.add_argument("--out", default="generated.png")
    args = p.parse_args(argv)
    if not 1 <= args.n <= MAX_IMAGES_PER_CAPTION:
        print(f"error: -n must be at least 1 (images per caption), got {args.n}" if args.n < 1 else
              f"error: -n {args.n}: at most {MAX_IMAGES_PER_CAPTION} images per caption (one grid row each); draw "
              "more with other --seed values", file=sys.stderr)
        return 2
    try:
        _check_out(args.out)
        imgs = generate_captions(args.checkpoint, args.caption, args.n, args.seed, pick_device("auto"),
                                 args.truncation, log=print, photo=args.photo)
    except (ValueError, CheckpointError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_picture(captioned_grid(imgs, args.caption), args.out)  # each caption under its row
    for i, c in enumerate(args.caption):
        print(f"row {i}: {shorten(c)}")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
