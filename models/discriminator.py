"""Matching-aware residual projection discriminator with spectral normalisation and a self-supervised decoder."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

MBSTD_GROUP = 4


def minibatch_std(x: torch.Tensor, group: int = MBSTD_GROUP, eps: float = 1e-8) -> torch.Tensor:
    """StyleGAN's minibatch standard deviation channel: x (N, C, H, W) -> (N, C + 1, H, W).

    The rows are split into consecutive groups of `group` (the last one smaller when N is not a multiple; a group
    of one row gets std sqrt(eps)); in each group the standard deviation of every feature over the group's rows
    (biased, + eps under the root) is averaged over C, H, W, and that one number is appended as a constant channel
    to each of the group's rows. Consecutive (not strided) groups: in a concatenated [real | fake] batch whose
    halves have a multiple of `group` rows, no group mixes real and generated images.
    """
    n, _, hgt, wid = x.shape
    idx = torch.arange(n, device=x.device) // group  # (N,) group of each row
    onehot = F.one_hot(idx, -(-n // group)).to(x.dtype)  # (N, G)
    count = onehot.sum(0)[:, None]  # (G, 1)
    flat = x.reshape(n, -1)
    mean = onehot.t() @ flat / count  # (G, CHW)
    var = onehot.t() @ (flat - mean[idx]).square() / count
    std = (var + eps).sqrt().mean(1)  # (G,)
    return torch.cat([x, std[idx].view(n, 1, 1, 1).expand(n, 1, hgt, wid)], dim=1)


class DownBlock(nn.Module):
    """Residual x1/2 block with spectral norm: (N, cin, H, W) -> (N, cout, H/2, W/2).

    main: LeakyReLU(0.2) -> 3x3 conv cin -> cin at H -> LeakyReLU -> 2x2 average pool -> 3x3 conv cin -> cout at
    H/2; shortcut: 2x2 average pool -> 1x1 conv cin -> cout; out = main + shortcut. BigGAN's D block (Brock et al.
    2019) with the pooling between the two convs instead of after them, so the second conv runs at the lower
    resolution (1/4 of its multiply-adds).

    `first` (the block on the RGB image): no activation on the input, and the first conv is a 3x3 conv cin x 4 ->
    cout on the 2x2 space-to-depth image (pixel_unshuffle, i.e. a 6x6 stride-2 conv on the image) instead of a
    3x3 conv at H and pooling: the same multiply-adds, at half the resolution (~1.8x faster on the CPU).
    """

    def __init__(self, cin: int, cout: int, first: bool = False):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(4 * cin, cout, 3, 1, 1) if first else nn.Conv2d(cin, cin, 3, 1, 1))
        self.conv2 = spectral_norm(nn.Conv2d(cout if first else cin, cout, 3, 1, 1))
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1))
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.first:
            h = F.leaky_relu(self.conv1(F.pixel_unshuffle(x, 2)), 0.2)
        else:
            h = F.avg_pool2d(F.leaky_relu(self.conv1(F.leaky_relu(x, 0.2)), 0.2), 2)
        return self.conv2(h) + self.skip(F.avg_pool2d(x, 2))


class Decoder(nn.Module):
    """FastGAN's self-supervised decoder (Liu et al. 2021), without SN: (N, cin, 8, 8) -> (N, 3, 32, 32) in [-1, 1].

    3x3 conv cin -> c at 8 px, then twice (x2 nearest upsample, 3x3 conv halving the width) to 32 px, each conv
    followed by BatchNorm and LeakyReLU(0.2); a 3x3 conv to RGB and tanh. Widths c, c/2, c/4 with c = `width`.
    """

    def __init__(self, cin: int, width: int):
        super().__init__()
        c = [width, max(width // 2, 4), max(width // 4, 4)]

        def block(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.LeakyReLU(0.2)]

        self.net = nn.Sequential(*block(cin, c[0]), nn.Upsample(scale_factor=2.0, mode="nearest"),
                                 *block(c[0], c[1]), nn.Upsample(scale_factor=2.0, mode="nearest"),
                                 *block(c[1], c[2]), nn.Conv2d(c[2], 3, 3, 1, 1), nn.Tanh())

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)


def quadrant_slices(quadrant: int, size: int) -> tuple[slice, slice]:
    """Rows and columns of quadrant 0 (top left), 1 (top right), 2 (bottom left) or 3 (bottom right) of a
    size x size map."""
    if quadrant not in (0, 1, 2, 3):
        raise ValueError(f"quadrant must be 0, 1, 2 or 3, got {quadrant!r}")
    half = size // 2
    r, c = divmod(quadrant, 2)
    return slice(r * half, (r + 1) * half), slice(c * half, (c + 1) * half)


def reconstruction_targets(img: torch.Tensor, quadrant: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What `Discriminator.reconstruct` should give for real images img (N, 3, 64, 64): the whole image
    average-pooled to (N, 3, 32, 32) and its quadrant `quadrant` (see quadrant_slices) at full resolution,
    (N, 3, 32, 32)."""
    rows, cols = quadrant_slices(quadrant, img.shape[-1])
    return F.avg_pool2d(img, 2), img[:, :, rows, cols]


class Discriminator(nn.Module):
    """(image, text encoding[, source representation]) -> realism-and-match logit, with a reconstruction decoder.

    img (N, 3, 64, 64) -> residual SN down blocks (DownBlock) 64 -> 32 -> 16 -> 8 -> 4 px with widths d, 2d, 4d, 8d
    (the 8 px map f8 (N, 4d, 8, 8) is kept for the decoder) -> LeakyReLU -> minibatch standard
    deviation channel (minibatch_std, groups of 4 rows) -> 3x3 SN conv 8d + 1 -> 8d -> LeakyReLU -> global sum pool
    h (N, 8d). Logit = linear(h) + <text_proj(text), h> (projection discriminator, Miyato & Koyama 2018), so a real
    image with a caption of another image scores lower than with its own caption. With rep_dim > 0 the source
    representation r (N, rep_dim) is projected the same way and added, <rep_proj(r), h>: D then also judges
    whether the image fits r. The minibatch-std channel makes a row's h depend on the other rows of its group.

    Self-supervision (FastGAN): `reconstruct(f8, quadrant)` decodes f8 to the whole real image at 32x32 and the
    4x4 quadrant of f8 (nearest-upsampled to 8x8) to that quadrant of the image at 32x32, with one small decoder
    (Decoder, widths `dec_width` = d by default: d, d/2, d/4 at 8, 16, 32 px); `reconstruction_targets` gives the
    targets.
    """

    def __init__(self, width: int, text_dim: int, rep_dim: int = 0, dec_width: int = 0):
        super().__init__()
        d = width
        self.blocks = nn.ModuleList([DownBlock(3, d, first=True), DownBlock(d, 2 * d), DownBlock(2 * d, 4 * d),
                                     DownBlock(4 * d, 8 * d)])
        self.conv_out = spectral_norm(nn.Conv2d(8 * d + 1, 8 * d, 3, 1, 1))
        self.linear = spectral_norm(nn.Linear(8 * d, 1))
        self.text_proj = spectral_norm(nn.Linear(text_dim, 8 * d))
        self.rep_proj = spectral_norm(nn.Linear(rep_dim, 8 * d)) if rep_dim else None
        self.decoder = Decoder(4 * d, dec_width or d)
        self.feature_dim = 8 * d

    def features_and_map(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """img: (N, 3, 64, 64) -> h (N, 8d) as `features`, and the 8x8 map f8 (N, 4d, 8, 8) of the same pass."""
        f8 = self.blocks[2](self.blocks[1](self.blocks[0](img)))
        x = F.leaky_relu(self.blocks[3](f8), 0.2)  # (N, 8d, 4, 4)
        x = F.leaky_relu(self.conv_out(minibatch_std(x)), 0.2)
        return x.sum(dim=(2, 3)), f8

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """img: (N, 3, 64, 64) -> (N, 8d) pooled image features h (text-independent)."""
        return self.features_and_map(img)[0]

    def reconstruct(self, f8: torch.Tensor, quadrant: int) -> tuple[torch.Tensor, torch.Tensor]:
        """f8: (N, 4d, 8, 8) from `features_and_map`, quadrant 0..3 (see quadrant_slices) -> (whole, part), each
        (N, 3, 32, 32) in [-1, 1]: the whole image (downsampled to 32 px) decoded from f8, and the quadrant of the
        64 px image decoded from f8's matching 4x4 quadrant (nearest-upsampled to 8x8). The same decoder, two passes
        (its BatchNorm statistics are per pass)."""
        rows, cols = quadrant_slices(quadrant, f8.shape[-1])
        part = F.interpolate(f8[:, :, rows, cols], scale_factor=2.0, mode="nearest")
        return self.decoder(f8), self.decoder(part)

    def logits(self, h: torch.Tensor, text: torch.Tensor, rep: torch.Tensor | None = None) -> torch.Tensor:
        """h: (N, 8d) from `features`, text: (N, text_dim), rep: (N, rep_dim) or None -> (N,) logits. One
        `features` pass can be scored against several conditions (matching and mismatched) without re-running
        the conv body. rep is required exactly when the discriminator was built with rep_dim > 0."""
        if (rep is None) != (self.rep_proj is None):
            raise ValueError("Discriminator: pass rep exactly when built with rep_dim > 0")
        out = self.linear(h).squeeze(1) + (self.text_proj(text) * h).sum(1)
        return out if rep is None else out + (self.rep_proj(rep) * h).sum(1)

    def forward(self, img: torch.Tensor, text: torch.Tensor, rep: torch.Tensor | None = None) -> torch.Tensor:
        """img: (N, 3, 64, 64), text: (N, text_dim), rep: (N, rep_dim) or None -> (N,) logits."""
        return self.logits(self.features(img), text, rep)
