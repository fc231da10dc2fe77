"""The epoch schedule: which networks each epoch trains. An epoch is one pass over the training images of the train
classes, whatever it updates; the run makes `train.encoder_epochs + train.gan_epochs` passes (<= 200).

    encoder   train.encoder_epochs   the source and text encoders learn (label-free); at the end the
                                     representation is whitened
    gan       train.gan_epochs       encoders frozen; the conditional GAN learns
"""
from __future__ import annotations

PHASES = ("encoder", "gan")
FROZEN_IN_GAN = ("text_encoder", "encoder")  # the networks GAN steps never train (frozen, eval mode)
MAX_PASSES = 200


def phase_epochs(encoder_epochs: int, gan_epochs: int) -> dict[str, int]:
    """{"encoder": encoder epochs, "gan": GAN epochs}; ValueError naming the key when an epoch count is negative."""
    for key, v in (("train.encoder_epochs", encoder_epochs), ("train.gan_epochs", gan_epochs)):
        if v < 0:
            raise ValueError(f"config key '{key}' must be >= 0, got {v}")
    return {"encoder": encoder_epochs, "gan": gan_epochs}


def passes(epochs: dict[str, int]) -> int:
    """Passes over the training images: every epoch counts once, whatever it trains."""
    return sum(epochs.values())


def describe(epochs: dict[str, int]) -> str:
    """One line: "100 encoder + 100 GAN = 200 passes"."""
    return f"{epochs['encoder']} encoder + {epochs['gan']} GAN = {passes(epochs)} passes"
