"""Reference feature extractors that need no training (what a learned encoder must beat).

Both take ``images`` as a uint8 array ``(N, H, W, 3)`` (RGB, HWC) and return float32 ``(N, D)``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import center_crop, resize

__all__ = ["color_histogram_features", "random_cnn_features"]


def _check_images(images) -> np.ndarray:
    """Validate a uint8 ``(N, H, W, 3)`` image array."""
    a = np.asarray(images)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"images must have shape (N, H, W, 3), got {a.shape}")
    if a.dtype != np.uint8:
        raise ValueError(f"images must be uint8 in [0, 255], got dtype {a.dtype}")
    return a


def color_histogram_features(images, bins: int = 8, sqrt: bool = True) -> np.ndarray:
    """Joint RGB colour histogram per image.

    images: uint8 (N, H, W, 3). Each channel is quantised into ``bins`` equal-width bins and the
    joint bin index is ``r * bins**2 + g * bins + b``. The histogram is L1-normalised (sums to 1
    per image); with ``sqrt=True`` (default) its element-wise square root is returned instead
    (Hellinger embedding: each row then has unit L2 norm, so cosine/L2 distances between rows
    are Hellinger distances between the histograms). Returns float32 (N, bins**3).
    """
    a = _check_images(images)
    if not 1 <= bins <= 256:
        raise ValueError(f"bins must be in [1, 256], got {bins}")
    n = a.shape[0]
    q = (a.astype(np.int64) * bins) // 256                      # (N, H, W, 3) in [0, bins)
    idx = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]      # (N, H, W)
    idx = idx.reshape(n, -1) + (np.arange(n) * bins**3)[:, None]
    hist = np.bincount(idx.ravel(), minlength=n * bins**3).reshape(n, bins**3).astype(np.float64)
    hist /= hist.sum(axis=1, keepdims=True)
    return (np.sqrt(hist) if sqrt else hist).astype(np.float32)


class _RandomConvNet(nn.Module):
    """Four stride-2 3x3 conv + ReLU blocks (64 -> 4 px), then global average pooling.

    Input (B, 3, 64, 64) in [-1, 1]; output (B, 8 * width). PyTorch's default init; never trained.
    """

    def __init__(self, width: int):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)


def _to_64(batch: np.ndarray, device: str) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, 64, 64) in [-1, 1]: shorter side to 64, centre crop."""
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device).permute(0, 3, 1, 2).float()
    x = x / 127.5 - 1.0
    if x.shape[-2:] != (64, 64):
        x = center_crop(resize(x, 64, antialias=True), [64, 64])
    return x


def random_cnn_features(images, seed: int = 0, width: int = 64, batch_size: int = 256,
                        device: str = "cpu") -> np.ndarray:
    """Features of a seeded, randomly initialised (never trained) small CNN.

    images: uint8 (N, H, W, 3), any H, W (resized so the shorter side is 64, then centre-cropped
    to 64x64), scaled to [-1, 1]. The weights depend only on ``seed`` and ``width``; the global
    torch RNG state is left untouched. Returns float32 (N, 8 * width).
    """
    a = _check_images(images)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _RandomConvNet(width)
    net = net.to(device).eval()
    out = []
    with torch.no_grad():
        for i in range(0, a.shape[0], batch_size):
            out.append(net(_to_64(a[i:i + batch_size], device)).cpu())
    if not out:
        return np.zeros((0, 8 * width), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32)
