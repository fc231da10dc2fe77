"""Word tokenizer and vocabulary, built from training-class captions only.

Captions are lower-cased and split into runs of letters ("inc olor" stays two words; digits and
punctuation are dropped). A caption with fewer than MIN_TOKENS words is junk: the real data has 13
lines that are literally `{}` and one line `v`; they are never sampled for training and never enter
the vocabulary. Words seen fewer than `min_count` times map to <unk>.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import torch

TOKEN_RE = re.compile(r"[a-z]+")
PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")
MIN_TOKENS = 2


def tokenize(caption: str) -> list[str]:
    return TOKEN_RE.findall(caption.lower())


def is_junk(caption: str) -> bool:
    return len(tokenize(caption)) < MIN_TOKENS


class Vocab:
    """Deterministic word <-> id map: specials first, then words by (-count, word)."""

    def __init__(self, itos: list[str]):
        if list(itos[: len(SPECIALS)]) != list(SPECIALS):
            raise ValueError(f"vocabulary must start with {SPECIALS}, got {itos[:2]}")
        self.itos = list(itos)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 2) -> Vocab:
        counts = Counter(w for c in captions if not is_junk(c) for w in tokenize(c))
        words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *words])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, captions: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """captions -> tokens (N, max_len) int64 padded with PAD, lengths (N,) int64 (0 for junk)."""
        tokens = torch.full((len(captions), max_len), PAD, dtype=torch.long)
        lengths = torch.zeros(len(captions), dtype=torch.long)
        for i, c in enumerate(captions):
            if is_junk(c):
                continue
            ids = [self.stoi.get(w, UNK) for w in tokenize(c)][:max_len]
            tokens[i, : len(ids)] = torch.tensor(ids)
            lengths[i] = len(ids)
        return tokens, lengths

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.itos[i] for i in ids if i != PAD)
