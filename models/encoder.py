"""Source encoder: image -> unit-norm representation, trained without class labels."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .whitening import Whitening


class ResBlock(nn.Module):
    """Pre-activation residual block; `down` halves the resolution (stride-2 conv + 1x1 shortcut)."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        stride = 2 if down else 1
        self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.skip = nn.Conv2d(cin, cout, 1, stride, bias=False) if (down or cin != cout) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.bn1(x)))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.skip(x)


class SourceEncoder(nn.Module):
    """A small ResNet: (N, 3, 64, 64) in [-1, 1] -> (N, embed_dim) unit-norm representation.

    Stem: 3x3 conv at full resolution then a stride-2 conv to 32x32; stages of width w, 2w, 4w, 8w at
    32, 16, 8, 4 px, each of `depth` residual blocks (in the last three the first block halves the resolution);
    global average pool (N, 8w); an MLP head -> embed_dim, L2-normalised; then `whiten`, a PCA whitening
    (models/whitening.py) that is the identity while the network trains and is fitted on the training images'
    representations at the end of the encoder stage.
    `features()` returns the pooled backbone features, `represent()` the trained (unwhitened) representation,
    `forward()` the representation.
    """

    def __init__(self, width: int = 32, embed_dim: int = 128, depth: int = 1):
        super().__init__()
        if depth < 1:
            raise ValueError(f"encoder depth must be >= 1 residual block per stage, got {depth}")
        w, top = width, 8 * width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                                  nn.Conv2d(w, w, 3, 2, 1, bias=False))  # 64 -> 32
        ins, outs = (w, w, 2 * w, 4 * w), (w, 2 * w, 4 * w, top)  # 32 px, then 32 -> 16 -> 8 -> 4
        self.stages = nn.Sequential(*[ResBlock(cin if i == 0 else cout, cout, down=s > 0 and i == 0)
                                      for s, (cin, cout) in enumerate(zip(ins, outs)) for i in range(depth)])
        self.norm = nn.BatchNorm2d(top)
        self.head = nn.Sequential(nn.Linear(top, top), nn.BatchNorm1d(top), nn.ReLU(), nn.Linear(top, embed_dim))
        self.whiten = Whitening(embed_dim)
        self.feature_dim, self.embed_dim = top, embed_dim

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """img: (N, 3, H, W) in [-1, 1] -> (N, 8w) pooled backbone features."""
        h = F.relu(self.norm(self.stages(self.stem(img))))  # (N, 8w, H/16, W/16)
        return h.mean(dim=(2, 3))

    def represent(self, img: torch.Tensor) -> torch.Tensor:
        """img: (N, 3, H, W) in [-1, 1] -> (N, embed_dim) unit-norm representation before whitening."""
        return F.normalize(self.head(self.features(img)), dim=1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img: (N, 3, H, W) in [-1, 1] -> (N, embed_dim) unit-norm representation (whitened once fitted)."""
        return self.whiten(self.represent(img))
