"""Where the generator is pushed: power spectra of the gradients that the discriminator and the distillation
term send to generated images, beside the spectra of generated and real images.

    python -m app.spectrum --run runs/<id> [--images 64] [--seed 0]

A network of strided convolutions puts a checkerboard into the gradient with respect to its input, at the
periods of its strides (2, 4, 8, 16 px for the discriminator's four stride-2 convs), and a generator trained on
that gradient is pushed along it. The table gives, for each signal, the power at those periods relative to the
mean over all horizontal frequencies and relative to the neighbouring frequencies (1 = no peak). A second table
gives how a small step down each gradient changes the generated images' 2-px upsampling-grid contrast (the
blocky pattern, metrics/grid.py), beside steps of the same size along noise. Training-class images and captions
only; nothing is written to the run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.io import BEST_THEN_LAST, CheckpointError, resolve_checkpoint
from evaluation.spectrum import training_gradients
from metrics.grid import grid_contrast
from metrics.spectrum import PERIODS, grid_steps, spectra_of


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a run directory (its best.pt) or a checkpoint file")
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        ckpt = resolve_checkpoint(Path(args.run), BEST_THEN_LAST)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fake, real, grads = training_gradients(ckpt, args.images, args.seed)
    spectra = spectra_of(fake, real, grads)
    print(f"{ckpt}, {args.images} images: power at a period over the mean power of all horizontal frequencies "
          "| over its neighbours'")
    print(f"{'':26s}" + "".join(f"{p:>7d} px" for p in PERIODS) + " |" + "".join(f"{p:>7d} px" for p in PERIODS))
    for name, row in spectra.items():
        print(f"{name:26s}" + "".join(f"{row[p][0]:10.2f}" for p in PERIODS) + " |"
              + "".join(f"{row[p][1]:10.2f}" for p in PERIODS))
    print(f"2-px upsampling-grid contrast of the generated images {grid_contrast(fake, 2):.3f} (real "
          f"{grid_contrast(real, 2):.3f}); its change after a step of 0.02 x RMS along:")
    for name, change in grid_steps(fake, grads).items():
        print(f"{name:26s}{change:+10.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
