"""The judge's network: a small residual CNN classifier at 64 px, trained from scratch (evaluation only)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Block(nn.Module):
    """Post-activation basic residual block (two 3x3 convs); stride 2 halves the resolution (1x1 shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Identity() if cin == cout and stride == 1 else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.skip(x))


class JudgeNet(nn.Module):
    """(B, 3, 64, 64) in [-1, 1] -> logits (B, n_classes); ``features`` -> (B, 8 * width).

    Stem: 3x3 conv, stride 2, + BN + ReLU (B, w, 32, 32); three basic residual blocks, each stride 2:
    (B, 2w, 16, 16), (B, 4w, 8, 8), (B, 8w, 4, 4); global average pooling; a linear head.
    """

    def __init__(self, n_classes: int, width: int = 32, input_size: int = 64):
        super().__init__()
        if input_size != 64:
            raise ValueError(f"JudgeNet takes 64-px images, got input_size {input_size}")
        w = width
        self.body = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                                  _Block(w, 2 * w, 2), _Block(2 * w, 4 * w, 2), _Block(4 * w, 8 * w, 2))
        self.head = nn.Linear(8 * w, n_classes)
        self.feature_dim = 8 * w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
