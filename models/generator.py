"""Target generator: (noise, text condition, source representation) -> 64x64 image."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


UPSAMPLE_MODES = ("nearest", "bilinear", "subpixel")
N_BLOCKS = 4  # 4 -> 8 -> 16 -> 32 -> 64 px


def block_modes(upsample: str) -> list[str]:
    """The x2 upsampling of each of the generator's four blocks from `upsample`: one mode for all blocks, or four
    comma-separated modes from the first block (to 8 px) to the last (to 64 px). ValueError naming the value."""
    modes = [m.strip() for m in upsample.split(",")]
    if len(modes) == 1:
        modes = modes * N_BLOCKS
    bad = [m for m in modes if m not in UPSAMPLE_MODES]
    if len(modes) != N_BLOCKS or bad:
        raise ValueError(f"upsampling {upsample!r}: give one of {', '.join(UPSAMPLE_MODES)}, or {N_BLOCKS} of them "
                         "separated by commas (one per block, to 8, 16, 32 and 64 px)")
    return modes


class UpBlock(nn.Module):
    """x2 upsample, 3x3 conv, BatchNorm, ReLU: (N, cin, H, W) -> (N, cout, 2H, 2W).

    `mode` nearest | bilinear: a fixed x2 interpolation, then the 3x3 conv at the output resolution. `mode`
    subpixel: a learned upsampling (Shi et al. 2016): the 3x3 conv runs at the input resolution with 4 x cout
    outputs, which a pixel shuffle puts on the 2x2 sub-pixel grid, so each of the four output phases has its own
    kernel (4x the conv's parameters, the same multiply-adds). ICNR init (Aitken et al. 2017): the four phases start
    with the same kernel, so the block starts as nearest upsampling of a low-resolution conv and learns from there.

    With `cond_dim` > 0 the BatchNorm is conditional: its scale and shift are 1 + gamma(s) and beta(s), linear in
    a condition s (N, cond_dim) passed to forward (BigGAN's conditional BN; DF-GAN's per-block text affine). The
    linear map starts at zero, so the block starts as a plain BatchNorm with unit scale and zero shift.

    With `noise` the block adds per-pixel noise after the conv (StyleGAN): scale * n, n (N, 1, 2H, 2W) ~ N(0, 1)
    shared by the channels, scale (cout,) learned from zero. Training draws fresh n; in eval mode n is a fixed
    buffer drawn at construction (StyleGAN's "const" noise), so sampling stays a function of z and the seed.
    """

    def __init__(self, cin: int, cout: int, mode: str = "nearest", cond_dim: int = 0, noise: bool = False,
                 out_size: int = 0):
        super().__init__()
        if mode not in UPSAMPLE_MODES:
            raise ValueError(f"upsampling mode must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
        self.conv = nn.Conv2d(cin, 4 * cout if mode == "subpixel" else cout, 3, 1, 1, bias=False)
        if mode == "subpixel":  # ICNR: output channel 4c + k (k = the sub-pixel phase) starts as channel c's kernel
            with torch.no_grad():
                self.conv.weight.copy_(self.conv.weight[:cout].repeat_interleave(4, dim=0))
        self.bn = nn.BatchNorm2d(cout, affine=not cond_dim)
        self.affine = nn.Linear(cond_dim, 2 * cout) if cond_dim else None
        if self.affine is not None:
            nn.init.zeros_(self.affine.weight)
            nn.init.zeros_(self.affine.bias)
        self.noise_scale = nn.Parameter(torch.zeros(cout)) if noise else None
        if noise:
            if out_size <= 0:
                raise ValueError("a noise-injecting UpBlock needs its output size out_size")
            self.register_buffer("const_noise", torch.randn(1, 1, out_size, out_size))
        self.mode = mode

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, cin, H, W), s: (N, cond_dim) when the block is conditional -> (N, cout, 2H, 2W)."""
        if (s is None) != (self.affine is None):
            raise ValueError("a conditional UpBlock needs its condition s; a plain one takes none")
        if self.mode == "subpixel":
            h = F.pixel_shuffle(self.conv(x), 2)  # (N, 4 cout, H, W) -> (N, cout, 2H, 2W)
        else:
            align = None if self.mode == "nearest" else False  # nearest takes no align_corners
            h = self.conv(F.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=align))
        if self.noise_scale is not None:
            n = (torch.randn(h.shape[0], 1, *h.shape[2:], device=h.device, dtype=h.dtype) if self.training
                 else self.const_noise)
            h = h + self.noise_scale[None, :, None, None] * n
        h = self.bn(h)
        if self.affine is not None:
            gamma, beta = self.affine(s)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + gamma) + beta
        return F.relu(h)


class Generator(nn.Module):
    """DCGAN-style generator conditioned on a source representation and a text condition.

    The text encoding t (N, text_dim) goes through conditioning augmentation (StackGAN): a linear
    layer gives mu, logvar (N, cond_dim) and c = mu + eps * exp(logvar / 2). Then z (N, noise_dim),
    c (N, cond_dim) and the source representation r (N, embed_dim) are concatenated and passed through a 2-layer mapping MLP of width
    `map_width` to a 4x4 x 4w tensor, then upsampled 4 -> 8 -> 16 -> 32 -> 64 with widths
    4w, 2w, w, w/2, and a 3x3 conv to RGB with tanh: output (N, 3, 64, 64) in [-1, 1].
    `upsample` is the x2 upsampling of every block, or of each block from the first to the last as four
    comma-separated modes (`block_modes`): nearest | bilinear (no parameters) | subpixel (learned, see UpBlock;
    4x the block's conv parameters, so under the 1/2 rule at width 48 only the two last blocks' fit:
    "nearest,nearest,subpixel,subpixel"). `skip` (StyleGAN2's skip generator): a 1x1 conv turns the 8, 16 and
    32 px blocks' outputs into RGB too, and the image is the sum of every resolution's RGB, each bilinearly
    upsampled to 64 px, before the tanh (so coarse structure reaches the output smoothly, not only through nearest
    copies). `cond_norm`: every
    block's BatchNorm takes its scale and shift from s = (c, r) (N, cond_dim + embed_dim), so the condition reaches
    every resolution, not only the 4x4 input (see UpBlock). `noise`: per-pixel noise with learned per-channel
    scales after every block's conv (see UpBlock).
    `width` and `map_width` are computed by `training.networks.generator_widths` so that this network
    has half the parameters of the source encoder.
    """

    def __init__(self, width: int, map_width: int, noise_dim: int, cond_dim: int, embed_dim: int,
                 text_dim: int, img_resolution: int = 64, upsample: str = "nearest", cond_norm: bool = False,
                 noise: bool = False, skip: bool = False):
        super().__init__()
        if img_resolution != 64:
            raise ValueError(f"Generator produces 64x64 images, got img_resolution={img_resolution}")
        w = width
        d_in = noise_dim + cond_dim + embed_dim
        self.ca = nn.Linear(text_dim, 2 * cond_dim)
        self.mapping = nn.Sequential(nn.Linear(d_in, map_width), nn.LeakyReLU(0.2),
                                     nn.Linear(map_width, 4 * 4 * 4 * w), nn.BatchNorm1d(4 * 4 * 4 * w),
                                     nn.ReLU())
        s_dim = cond_dim + embed_dim if cond_norm else 0
        chans = [4 * w, 2 * w, w, w, max(w // 2, 8)]
        modes = block_modes(upsample)
        self.blocks = nn.ModuleList([UpBlock(cin, cout, mode, s_dim, noise, 8 * 2 ** i)
                                     for i, (cin, cout, mode) in enumerate(zip(chans[:-1], chans[1:], modes))])
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, 1, 1)
        self.skip_rgb = nn.ModuleList([nn.Conv2d(c, 3, 1) for c in chans[1:-1]]) if skip else None
        self.width, self.noise_dim, self.cond_norm, self.noise, self.skip = w, noise_dim, cond_norm, noise, skip

    def condition(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """t: (N, text_dim) -> c, mu, logvar, each (N, cond_dim); c is sampled (reparameterised)."""
        mu, logvar = self.ca(t).chunk(2, dim=1)
        logvar = logvar.clamp(-10, 10)
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp(), mu, logvar

    def synthesize(self, z: torch.Tensor, c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """z: (N, noise_dim), c: (N, cond_dim), r: (N, embed_dim) -> (N, 3, 64, 64) in [-1, 1]."""
        h = self.mapping(torch.cat([z, c, r], dim=1))
        h = h.view(h.shape[0], 4 * self.width, 4, 4)  # (N, 4w, 4, 4)
        s = torch.cat([c, r], dim=1) if self.cond_norm else None
        rgb = None  # with skip: the running sum of the lower resolutions' RGB, (N, 3, H, W)
        for i, block in enumerate(self.blocks):
            h = block(h, s)
            if self.skip_rgb is not None and i < len(self.skip_rgb):
                y = self.skip_rgb[i](h)
                rgb = y if rgb is None else y + F.interpolate(rgb, scale_factor=2.0, mode="bilinear",
                                                              align_corners=False)
        out = self.to_rgb(h)
        if rgb is not None:
            out = out + F.interpolate(rgb, scale_factor=2.0, mode="bilinear", align_corners=False)
        return torch.tanh(out)

    def forward(self, z: torch.Tensor, t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """z: (N, noise_dim), t: (N, text_dim) text encoding, r: (N, embed_dim) -> (N, 3, 64, 64)."""
        return self.synthesize(z, self.condition(t)[0], r)
