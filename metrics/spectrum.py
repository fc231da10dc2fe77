"""Power spectra and grid steps: how much of a signal (an image batch, a gradient) sits at the periods of a
network's strides, and how a small step along a direction changes the 2-px upsampling-grid contrast. Pure
functions of tensors; evaluation/spectrum.py applies them to a trained run's gradients."""
from __future__ import annotations

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
