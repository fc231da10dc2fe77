"""In-memory dataset for one run: the 20 train classes (train / val) and the 5 test classes.

Everything is held as tensors — images as uint8 (N, 3, 72, 72), captions as token ids — so the
training loop never decodes a JPEG. Test-class captions never enter the vocabulary.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .cache import load_cache
from .split import holdout, split_classes
from .text import Vocab


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, 3, S, S) uint8
    labels: torch.Tensor  # (N,) int64 class ids 1..102
    names: list[str]
    captions: list[list[str]]  # raw captions per image
    tokens: torch.Tensor  # (N, C, L) int64, C captions per image (padded)
    lengths: torch.Tensor  # (N, C) int64; 0 = no caption / junk caption (never sampled)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, idx: np.ndarray) -> ImageSet:
        t = torch.as_tensor(idx, dtype=torch.long)
        return ImageSet(self.images[t], self.labels[t], [self.names[i] for i in idx],
                        [self.captions[i] for i in idx], self.tokens[t], self.lengths[t])

    def sample_captions(self, idx: torch.Tensor, generator: torch.Generator | None = None):
        """One random valid caption per image: idx (B,) -> tokens (B, L), lengths (B,), caption slot (B,)."""
        valid = (self.lengths[idx] > 0).float()
        slot = torch.multinomial(valid, 1, generator=generator).squeeze(1)
        return self.tokens[idx, slot], self.lengths[idx, slot], slot


@dataclass
class FlowerData:
    train: ImageSet  # train classes minus the validation hold-out
    val: ImageSet  # held-out images of the train classes (checkpoint selection)
    test: ImageSet  # all images of the unseen test classes
    train_classes: list[int]
    test_classes: list[int]
    vocab: Vocab
    load_seconds: float

    def all_images(self) -> ImageSet:
        """All images of the 25 selected classes (train, val, test), for embedding evaluation."""
        return concat_sets((self.train, self.val, self.test))

    def train_class_images(self) -> ImageSet:
        """All images of the 20 train classes (train, then val), e.g. for the evaluation network."""
        return concat_sets((self.train, self.val))

    def split_record(self) -> dict:
        return {"train_classes": self.train_classes, "test_classes": self.test_classes,
                "n_train": len(self.train), "n_val": len(self.val), "n_test": len(self.test),
                "vocab_size": len(self.vocab)}


def concat_sets(sets) -> ImageSet:
    """The ImageSets of `sets` one after another, as one ImageSet."""
    return ImageSet(torch.cat([s.images for s in sets]), torch.cat([s.labels for s in sets]),
                    sum((s.names for s in sets), []), sum((s.captions for s in sets), []),
                    torch.cat([s.tokens for s in sets]), torch.cat([s.lengths for s in sets]))


def _limit(labels: np.ndarray, per_class: int) -> np.ndarray:
    if per_class <= 0:
        return np.arange(len(labels))
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]))


def _image_set(images, labels, names, captions, vocab: Vocab, max_len: int) -> ImageSet:
    width = max(len(c) for c in captions)
    flat = [c[i] if i < len(c) else "" for c in captions for i in range(width)]
    tokens, lengths = vocab.encode(flat, max_len)
    n = len(names)
    return ImageSet(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
                    torch.from_numpy(labels), list(names), captions,
                    tokens.view(n, width, max_len), lengths.view(n, width))


def load_data(cfg, vocab: Vocab | None = None) -> FlowerData:
    """Load the run's classes from `cfg.cache` (a DataConfig). Pass `vocab` to reuse a checkpoint's."""
    t0 = time.time()
    train_classes, test_classes = split_classes(cfg.seed, cfg.n_train_classes, cfg.n_test_classes)
    data = load_cache(Path(cfg.cache), train_classes + test_classes)
    keep = _limit(data.labels, cfg.limit_per_class)
    labels = data.labels[keep]
    is_test = np.isin(labels, test_classes)
    tr_all = keep[~is_test]
    tr_idx, val_idx = holdout(data.labels[tr_all], cfg.val_fraction, cfg.seed)
    if vocab is None:  # training captions only
        vocab = Vocab.build((c for i in tr_all[tr_idx] for c in data.captions[i]), cfg.min_word_count)

    def make(idx):
        return _image_set(data.images[idx], data.labels[idx], [data.names[i] for i in idx],
                          [data.captions[i] for i in idx], vocab, cfg.max_caption_len)

    return FlowerData(make(tr_all[tr_idx]), make(tr_all[val_idx]), make(keep[is_test]),
                      train_classes, test_classes, vocab, time.time() - t0)
