"""Where the generator is pushed: power spectra of the gradients that the discriminator and the distillation
term send to generated images, beside the spectra of generated and real images.

    python -m metrics.spectrum --run runs/<id> [--images 64] [--seed 0]

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
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from .grid import grid_contrast

PERIODS = (16, 8, 4, 2)


def horizontal_power(x: torch.Tensor) -> torch.Tensor:
    """x (N, C, H, W) -> (W // 2 + 1,) power by horizontal frequency 0 .. W/2 (cycles per image width): the 2-D
    power spectrum averaged over images, channels and vertical frequencies."""
    return torch.fft.fft2(x.detach().double()).abs().pow(2).mean(dim=(0, 1, 2))[:x.shape[-1] // 2 + 1]


def power_by_period(x: torch.Tensor, periods=PERIODS) -> dict[int, tuple[float, float]]:
    """x (N, C, H, W) -> {period in px: (power at horizontal frequency W / period over the mean power of
    frequencies 1 .. W/2, the same over the mean of its two neighbours on each side)}. The second is a peak
    measure: ~1 on a smooth spectrum, whatever its slope."""
    w = x.shape[-1]
    bad = [p for p in periods if p < 2 or w % p]
    if bad:
        raise ValueError(f"periods {bad} do not divide the image width {w} (or are below 2 px)")
    power = horizontal_power(x)
    mean, out = power[1:].mean(), {}
    for p in periods:
        k = w // p
        nb = [j if j <= w // 2 else w - j for j in (k - 2, k - 1, k + 1, k + 2)]  # mirrored past W/2
        out[p] = (float(power[k] / mean), float(power[k] / power[nb].mean()))
    return out


def training_gradients(checkpoint: Path, n_images: int = 64, seed: int = 0
                       ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """For n_images training images, their captions and the generator as trained: (generated images, real images,
    {signal: gradient of its loss w.r.t. the generated images}), all (n_images, 3, 64, 64); the signals are the
    adversarial loss (the training step's, patch term included; plain and through the run's DiffAugment) and the
    distillation term. The trainer is rebuilt from the checkpoint, so the run's data cache must be where its
    config says."""
    from data_utils.dataset import load_data
    from data_utils.text import Vocab
    from training import losses
    from training.checkpoint import load_checkpoint
    from training.config import from_dict
    from training.diffaug import diff_augment
    from training.trainer import Trainer

    ckpt = load_checkpoint(Path(checkpoint))
    cfg = from_dict(ckpt["config"])
    data = load_data(cfg.data, vocab=Vocab(ckpt["vocab"]))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, data, Path(tmp), torch.device("cpu"), resume=ckpt, log=lambda *a, **k: None)
    trainer.set_stage_modes("gan")
    G, E = trainer.nets.generator, trainer.nets.encoder
    torch.manual_seed(seed)
    idx = torch.randperm(len(data.train))[:n_images]
    real, t, r = trainer._condition(idx)
    r_d = r if cfg.model.d_rep else None
    with torch.no_grad():
        fake = G.synthesize(torch.randn(len(idx), cfg.model.noise_dim), G.condition(t)[0], r)
    fake.requires_grad_(True)
    grads = {}
    for name, img in (("adversarial", fake), ("adversarial, DiffAugment", diff_augment(fake, cfg.train.diffaug))):
        (grads[name],) = torch.autograd.grad(trainer.adversarial_loss(img, t, r_d)[0], fake)
    distill = losses.cosine_distance(E(diff_augment(fake, cfg.train.distill_aug)), r)
    (grads["distillation"],) = torch.autograd.grad(distill, fake)
    return fake.detach(), real, grads


def gradient_spectra(checkpoint: Path, n_images: int = 64, seed: int = 0
                     ) -> dict[str, dict[int, tuple[float, float]]]:
    """`spectra_of` the signals of `training_gradients`."""
    return spectra_of(*training_gradients(checkpoint, n_images, seed))


def spectra_of(fake: torch.Tensor, real: torch.Tensor, grads: dict[str, torch.Tensor]
               ) -> dict[str, dict[int, tuple[float, float]]]:
    """`power_by_period` of every gradient in grads, then of the generated and the real images."""
    out = {name: power_by_period(g) for name, g in grads.items()}
    out["generated images"], out["real images"] = power_by_period(fake), power_by_period(real)
    return out


def grid_steps(fake: torch.Tensor, grads: dict[str, torch.Tensor], step: float = 0.02, period: int = 2,
               seed: int = 0) -> dict[str, float]:
    """Change of the `period`-px grid contrast (metrics/grid.py) of the images `fake` (N, C, H, W) after a step of
    `step` x the direction's RMS down each gradient, and along two controls of the same size: white noise and
    noise smoothed by a 3x3 box. A step that lowers the contrast more than the controls do works against the
    blocky pattern; one that raises it, for it."""
    g = torch.Generator().manual_seed(seed)
    dirs = dict(grads)
    dirs["white noise (control)"] = torch.randn(fake.shape, generator=g)
    padded = torch.randn(fake.shape[0], fake.shape[1], fake.shape[2] + 2, fake.shape[3] + 2, generator=g)
    dirs["smoothed noise (control)"] = F.avg_pool2d(padded, 3, 1)
    base = grid_contrast(fake, period)
    return {name: grid_contrast(fake - step * d / d.pow(2).mean().sqrt(), period) - base for name, d in dirs.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a run directory (its best.pt) or a checkpoint file")
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    path = Path(args.run)
    ckpt = path / "checkpoints" / "best.pt" if path.is_dir() else path
    if not ckpt.is_file():
        print(f"error: no checkpoint at {ckpt}", file=sys.stderr)
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
