"""The epoch schedule: which networks each epoch trains. An epoch is one pass over the training images of the train
classes, whatever it updates; the run makes `train.encoder_epochs + train.gan_epochs` passes (<= 200).

    encoder-only   train.encoder_epochs - train.joint_epochs   the source and text encoders learn (stage 1)
    joint          train.joint_epochs                          each batch updates the encoders, then the GAN
                                                               (G and D read the encoders' detached outputs)
    gan            train.gan_epochs                            encoders frozen and whitened; the GAN alone

The whitening is fitted when the encoders stop learning (the end of the joint phase).
"""
from __future__ import annotations

PHASES = ("encoder", "joint", "gan")
FROZEN_IN_GAN = ("text_encoder", "encoder")  # the networks GAN steps never train (frozen, eval mode)
MAX_PASSES = 200


def phase_epochs(encoder_epochs: int, joint_epochs: int, gan_epochs: int) -> dict[str, int]:
    """{"encoder": encoder-only epochs, "joint": joint epochs, "gan": GAN-only epochs}; ValueError naming the key
    when joint_epochs is not within [0, encoder_epochs] or an epoch count is negative."""
    for key, v in (("train.encoder_epochs", encoder_epochs), ("train.joint_epochs", joint_epochs),
                   ("train.gan_epochs", gan_epochs)):
        if v < 0:
            raise ValueError(f"config key '{key}' must be >= 0, got {v}")
    if joint_epochs > encoder_epochs:
        raise ValueError(f"config key 'train.joint_epochs' = {joint_epochs} exceeds train.encoder_epochs = "
                         f"{encoder_epochs} (joint epochs are the last encoder epochs)")
    return {"encoder": encoder_epochs - joint_epochs, "joint": joint_epochs, "gan": gan_epochs}


def passes(epochs: dict[str, int]) -> int:
    """Passes over the training images: every epoch counts once, whatever it trains."""
    return sum(epochs.values())


def describe(epochs: dict[str, int]) -> str:
    """One line: "40 encoder-only + 60 joint + 100 GAN-only = 200 passes (encoders 100, GAN 160 epochs)"."""
    return (f"{epochs['encoder']} encoder-only + {epochs['joint']} joint + {epochs['gan']} GAN-only = "
            f"{passes(epochs)} passes (encoders {epochs['encoder'] + epochs['joint']}, GAN "
            f"{epochs['joint'] + epochs['gan']} epochs)")
