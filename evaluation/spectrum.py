"""Where the generator is pushed: the gradients that the discriminator and the distillation term send to a trained
run's generated images (`python -m app.spectrum`; the spectra and grid steps are in metrics/spectrum.py), and
their picture."""
from __future__ import annotations

from pathlib import Path

import torch

from core.config import from_dict
from core.io import load_checkpoint
from data_utils.augment import random_crop_flip
from data_utils.dataset import load_data
from data_utils.text import Vocab
from metrics.spectrum import PERIODS, horizontal_power, spectra_of
from models.inference import load_networks
from training import losses
from training.diffaug import diff_augment


def training_gradients(checkpoint: Path, n_images: int = 64, seed: int = 0
                       ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """For n_images training images, their captions and the generator as trained (its training weights, as the
    GAN step sees it): (generated images, real images, {signal: gradient of its loss w.r.t. the generated
    images}), all (n_images, 3, 64, 64); the signals are the adversarial loss (plain and through the run's
    DiffAugment) and the distillation term. The run's data cache must be where its config says."""
    ckpt = load_checkpoint(Path(checkpoint))
    cfg = from_dict(ckpt["config"])
    data = load_data(cfg.data, vocab=Vocab(ckpt["vocab"]))
    nets = load_networks(ckpt, ema=False)
    T, E, G, D = nets.text_encoder, nets.encoder, nets.generator, nets.discriminator
    T.requires_grad_(False), E.requires_grad_(False)  # frozen in the GAN stage (eval mode)
    G.train(), D.train()  # as the GAN step runs them
    torch.manual_seed(seed)
    idx = torch.randperm(len(data.train))[:n_images]
    real = random_crop_flip(data.train.images[idx], cfg.data.image_size)
    tokens, lengths, _ = data.train.sample_captions(idx)
    with torch.no_grad():
        t = T(tokens, lengths)
        r = T.predict_representation(t)
        fake = G.synthesize(torch.randn(len(idx), cfg.model.noise_dim), G.condition(t)[0], r)
    r_d = r if cfg.model.d_rep else None
    fake.requires_grad_(True)
    grads = {}
    for name, img in (("adversarial", fake), ("adversarial, DiffAugment", diff_augment(fake, cfg.train.diffaug))):
        (grads[name],) = torch.autograd.grad(losses.g_hinge(D.logits(D.features(img), t, r_d)), fake)
    (grads["distillation"],) = torch.autograd.grad(losses.cosine_distance(E(fake), r), fake)
    return fake.detach(), real, grads


def gradient_spectra(checkpoint: Path, n_images: int = 64, seed: int = 0
                     ) -> dict[str, dict[int, tuple[float, float]]]:
    """`metrics.spectrum.spectra_of` the signals of `training_gradients`."""
    return spectra_of(*training_gradients(checkpoint, n_images, seed))


def plot_spectra(fake: torch.Tensor, real: torch.Tensor, grads: dict[str, torch.Tensor], title: str = ""):
    """The horizontal power spectra (metrics.spectrum.horizontal_power, over the mean of frequencies 1 .. W/2) of the
    gradients (left) and of the generated and real images (right), log scale, the stride periods marked: a peak at
    a marked period is the checkerboard a strided network puts into its gradient."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    w = fake.shape[-1]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharey=True, layout="constrained")
    for ax, (panel, signals) in zip(axes, (("gradients sent to the generated images", grads),
                                           ("images", {"generated images": fake, "real images": real}))):
        for name, x in signals.items():
            power = horizontal_power(x)[1:]
            ax.plot(range(1, len(power) + 1), (power / power.mean()).numpy(), "o-", ms=3, label=name)
        for p in PERIODS:
            ax.axvline(w / p, color="grey", ls=":", lw=1)
            ax.text(w / p, 1.0, f"{p} px", transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=8, color="dimgrey")
        ax.set_yscale("log")
        ax.set_xlabel(f"horizontal frequency (cycles per {w} px)")
        ax.set_title(panel, fontsize=10, pad=14)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("power / mean power")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
