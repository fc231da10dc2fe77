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
    global average pool (N, 8w); an MLP projection head -> embed_dim, L2-normalised; then `whiten`, a PCA whitening
    (models/whitening.py) that is the identity while the network trains and is fitted on the training images'
    representations at the end of the encoder stage.
    `features()` returns the pooled backbone features, `represent()` the trained (unwhitened) representation,
    `forward()` the representation.

    The head (SimCLR's projection MLP): `head_layers` hidden layers of `head_width` units, each Linear
    -> BatchNorm1d -> ReLU, then a Linear to embed_dim: 8w -> head_width (-> head_width ...) -> embed_dim
    (layer for layer the earlier head's modules, so its checkpoints load into head_width=0, head_layers=1).
    head_width = 0 means 8w; (head_width=0, head_layers=1) is the earlier head (8w -> 8w -> embed_dim, ~0.1 M
    parameters at w = 32). The default (2048, 2) holds ~5 M parameters for ~5 M multiply-adds per image (the
    backbone needs ~75 M): the parameters that the generator's 1/2 rule counts, where they cost few FLOPs.
    """

    def __init__(self, width: int = 32, embed_dim: int = 128, depth: int = 1, head_width: int = 2048,
                 head_layers: int = 2):
        super().__init__()
        if depth < 1:
            raise ValueError(f"encoder depth must be >= 1 residual block per stage, got {depth}")
        if head_layers < 1 or head_width < 0:
            raise ValueError(f"encoder head needs head_layers >= 1 and head_width >= 0, got {head_layers}, "
                             f"{head_width}")
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                                  nn.Conv2d(w, w, 3, 2, 1, bias=False))  # 64 -> 32
        ins, outs = (w, w, 2 * w, 4 * w), (w, 2 * w, 4 * w, 8 * w)  # 32 px, then 32 -> 16 -> 8 -> 4
        self.stages = nn.Sequential(*[ResBlock(cin if i == 0 else cout, cout, down=s > 0 and i == 0)
                                      for s, (cin, cout) in enumerate(zip(ins, outs)) for i in range(depth)])
        self.norm = nn.BatchNorm2d(8 * w)
        hw = head_width or 8 * w
        dims = [8 * w] + [hw] * head_layers
        hidden = [m for cin, cout in zip(dims[:-1], dims[1:])
                  for m in (nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU())]
        self.head = nn.Sequential(*hidden, nn.Linear(hw, embed_dim))
        self.whiten = Whitening(embed_dim)
        self.feature_dim, self.embed_dim = 8 * w, embed_dim

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
