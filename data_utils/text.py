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

    def unknown_words(self, caption: str) -> list[str]:
        """The caption's words that are not in the vocabulary (each once, in order): they encode as <unk>."""
        return list(dict.fromkeys(w for w in tokenize(caption) if w not in self.stoi))

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.itos[i] for i in ids if i != PAD)


def tfidf_matrix(captions_per_image: list[list[str]], vocab: Vocab) -> torch.Tensor:
    """Bag-of-words TF-IDF of all (non-junk) captions of each image -> (N, len(vocab)) L2-normalised.

    Word statistics of the training captions only, no labels: images whose descriptions share
    distinctive words get a high cosine similarity.
    """
    n, v = len(captions_per_image), len(vocab)
    tf = torch.zeros(n, v)
    for i, caps in enumerate(captions_per_image):
        for c in caps:
            if not is_junk(c):
                for w in tokenize(c):
                    tf[i, vocab.stoi.get(w, UNK)] += 1
    tf[:, :len(SPECIALS)] = 0  # <pad>/<unk> carry no meaning
    df = (tf > 0).sum(0).float()
    idf = torch.log((1 + n) / (1 + df)) + 1
    x = tf * idf
    return x / x.norm(dim=1, keepdim=True).clamp(min=1e-8)


def caption_semantics(tfidf: torch.Tensor, dim: int, seed: int = 0) -> torch.Tensor:
    """Latent semantic analysis of the caption TF-IDF (N, V) -> (N, dim) unit vectors.

    A truncated SVD of the training captions' word statistics: a label-free description of what each
    image looks like, used as a regression target for the source encoder in stage 1.
    """
    from sklearn.decomposition import TruncatedSVD
    k = max(1, min(dim, tfidf.shape[0] - 1, tfidf.shape[1] - 1))
    z = torch.from_numpy(TruncatedSVD(k, random_state=seed).fit_transform(tfidf.numpy())).float()
    if k < dim:  # tiny data: pad with zeros to the representation size
        z = torch.cat([z, torch.zeros(z.shape[0], dim - k)], 1)
    return z / z.norm(dim=1, keepdim=True).clamp(min=1e-8)
