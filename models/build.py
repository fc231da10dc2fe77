"""Build the four networks from a config, enforcing the generator = 1/2 x encoder parameter rule; the
parameter table (total / trainable / size on disk) of a set of networks."""
from __future__ import annotations

import io
from dataclasses import dataclass

import torch
import torch.nn as nn

from .discriminator import Discriminator
from .encoder import SourceEncoder
from .generator import Generator
from .text_encoder import TextEncoder

RATIO_TOLERANCE = 0.01  # |params(G) / params(E) - g_ratio| <= 1 % of g_ratio
INIT_WIDTH_RANGE = (4, 12)  # the generator's 4 px width C4 may lie in [4w, 12w] (8w by default)


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def generator_size(mc, text_dim: int, width: int, init_width: int = 0) -> int:
    """Parameters of the Generator that `mc` (ModelConfig) builds with these widths (built on the meta device:
    nothing is allocated)."""
    with torch.device("meta"):
        return count_params(Generator(width, mc.noise_dim, mc.cond_dim, mc.embed_dim, text_dim, init_width,
                                      upsample=mc.g_upsample))


def generator_widths(target: int, mc, text_dim: int) -> tuple[int, int]:
    """(width, init_width) of a Generator with `target` parameters, width as close to mc.g_width as fits.

    The width w (a multiple of 4) sets the coarse size; the 4 px width C4 = init_width fine-tunes it: the
    parameter count is exactly quadratic in C4 (the linear layer's d_in x 16 C4, the 4 px conv's 9 C4^2, the
    first 8 px conv's 36 w C4, the 32 px excitation's 16 w C4, BatchNorm scales), so it is solved from three
    sizes, and C4 must lie in INIT_WIDTH_RANGE x w. One unit of C4 is ~0.4 % of the default generator.
    """
    lo, hi = INIT_WIDTH_RANGE
    for w in sorted(range(4, 257, 4), key=lambda w: (abs(w - mc.g_width), -w)):
        s0, s1, s2 = (generator_size(mc, text_dim, w, c) for c in (1, 2, 3))
        qa = (s2 - 2 * s1 + s0) / 2  # size(c) = s0 + b (c - 1) + qa (c - 1)^2
        b = s1 - s0 - qa
        disc = b * b + 4 * qa * (target - s0)
        if disc < 0:
            continue
        c = round(1 + (-b + disc ** 0.5) / (2 * qa))
        if lo * w <= c <= hi * w and abs(generator_size(mc, text_dim, w, c) - target) <= RATIO_TOLERANCE * target:
            return w, c
    raise ValueError(f"no generator fits {target} parameters (encoder too small for model.g_ratio)")


@dataclass
class Networks:
    text_encoder: TextEncoder
    encoder: SourceEncoder
    generator: Generator
    discriminator: Discriminator

    def items(self):
        return [("text_encoder", self.text_encoder), ("encoder", self.encoder),
                ("generator", self.generator), ("discriminator", self.discriminator)]

    def to(self, device) -> Networks:
        for _, m in self.items():
            m.to(device)
        return self


def build_networks(mc, vocab_size: int) -> Networks:
    """mc: ModelConfig. Asserts the generator/encoder parameter ratio and returns all networks."""
    text = TextEncoder(vocab_size, mc.text_width, mc.text_dim, mc.embed_dim)
    enc = SourceEncoder(mc.enc_width, mc.embed_dim, mc.enc_depth, mc.enc_head_width, mc.enc_head_layers)
    e_params = count_params(enc)
    w, c4 = generator_widths(round(mc.g_ratio * e_params), mc, mc.text_dim)
    gen = Generator(w, mc.noise_dim, mc.cond_dim, mc.embed_dim, mc.text_dim, c4, upsample=mc.g_upsample)
    ratio = count_params(gen) / e_params
    if abs(ratio - mc.g_ratio) > RATIO_TOLERANCE * mc.g_ratio:
        raise AssertionError(f"generator/encoder parameter ratio {ratio:.4f} is not within 1 % of {mc.g_ratio}")
    disc = Discriminator(mc.d_width, mc.text_dim, mc.embed_dim if mc.d_rep else 0, dec_width=mc.d_dec_width)
    return Networks(text, enc, gen, disc)


def size_on_disk(module: nn.Module) -> int:
    """Bytes of the module's state_dict saved with torch.save (what a checkpoint of it costs)."""
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.tell()


def param_table(nets: Networks) -> list[dict]:
    """One row per network: total and trainable parameters and size on disk."""
    rows = [{"network": name, "total_params": count_params(m), "trainable_params": count_params(m, True),
             "size_on_disk_bytes": size_on_disk(m)} for name, m in nets.items()]
    e = rows[1]["total_params"]
    for row in rows:
        row["ratio_to_encoder"] = row["total_params"] / e
    return rows
