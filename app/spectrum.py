"""Where the generator is pushed: power spectra of the gradients that the discriminator and the distillation
term send to generated images, beside the spectra of generated and real images.

    python -m app.spectrum --run runs/<id> [--images 64] [--seed 0] [--out spectrum.png]

A network of strided convolutions puts a checkerboard into the gradient with respect to its input, at the
periods of its strides (2, 4, 8, 16 px for the discriminator's four stride-2 convs), and a generator trained on
that gradient is pushed along it. The table gives, for each signal, the power at those periods relative to the
mean over all horizontal frequencies and relative to the neighbouring frequencies (1 = no peak). A second table
gives how a small step down each gradient changes the generated images' 2-px upsampling-grid contrast (the
blocky pattern, metrics/grid.py), beside steps of the same size along noise. The spectra are drawn to --out (the
whole horizontal spectrum of each signal, the stride periods marked). Training-class images and captions only;
nothing is written to the run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.io import BEST_THEN_LAST, CheckpointError, resolve_checkpoint
from core.files import atomic_write
from evaluation.spectrum import plot_spectra, training_gradients
from metrics.grid import grid_contrast
from metrics.spectrum import PERIODS, grid_steps, spectra_of


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a run directory (its best.pt) or a checkpoint file")
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="spectrum.png", help="the picture of the spectra (.png, .pdf or .svg)")
    args = p.parse_args(argv)
    if Path(args.out).suffix.lower() not in (".png", ".pdf", ".svg"):
        print(f"error: --out {args.out}: give a file name ending in .png, .pdf or .svg", file=sys.stderr)
        return 2
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
    fig = plot_spectra(fake, real, grads, title=f"{ckpt}, {args.images} training captions")
    import matplotlib.pyplot as plt
    try:
        atomic_write(args.out, lambda tmp: fig.savefig(tmp, dpi=80, format=Path(args.out).suffix[1:].lower()))
    except OSError as e:
        print(f"error: --out {args.out}: cannot write it ({e.strerror or e})", file=sys.stderr)
        return 2
    finally:
        plt.close(fig)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
