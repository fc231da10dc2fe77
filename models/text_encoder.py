"""Text encoder, trained from scratch: word embeddings -> bidirectional GRU -> masked mean pool."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .whitening import Whitening


class TextEncoder(nn.Module):
    """Caption tokens -> text encoding (for the generator and discriminator) and a unit-norm embedding
    in the space shared with the source encoder (for contrastive training), plus a *prior* head that
    predicts the source representation of an image the caption describes (text-only generation); `whiten`
    maps that guess into the source encoder's whitened space (the identity until the encoder's is fitted).

    vocab_size comes from the data; width is the embedding and GRU size.
    """

    def __init__(self, vocab_size: int, width: int = 128, text_dim: int = 128, embed_dim: int = 128):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=0)
        self.gru = nn.GRU(width, width, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(nn.Linear(2 * width, text_dim), nn.LeakyReLU(0.2))
        self.proj = nn.Linear(text_dim, embed_dim)  # into the shared image-text space
        self.prior = nn.Sequential(nn.Linear(text_dim, text_dim), nn.LeakyReLU(0.2),
                                   nn.Linear(text_dim, embed_dim))  # -> predicted source representation
        self.whiten = Whitening(embed_dim)  # the source encoder's whitening, copied in when it is fitted
        self.text_dim, self.embed_dim = text_dim, embed_dim

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens: (N, L) int64, lengths: (N,) int64 >= 1 -> (N, text_dim) text encoding."""
        x = self.embedding(tokens)  # (N, L, W)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        h, _ = self.gru(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=tokens.shape[1])  # (N, L, 2W)
        mask = (torch.arange(tokens.shape[1], device=tokens.device)[None] < lengths[:, None]).unsqueeze(-1)
        pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1)  # (N, 2W)
        return self.out(pooled)

    def embed(self, enc: torch.Tensor) -> torch.Tensor:
        """enc: (N, text_dim) -> (N, embed_dim) unit-norm shared-space embedding."""
        return F.normalize(self.proj(enc), dim=1)

    def predict_representation(self, enc: torch.Tensor) -> torch.Tensor:
        """enc: (N, text_dim) -> (N, embed_dim) unit-norm guess of the source representation (whitened
        like the source encoder's once its whitening is fitted)."""
        return self.whiten(F.normalize(self.prior(enc), dim=1))
