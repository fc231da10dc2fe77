"""Build the four networks from a config, enforcing the generator = 1/2 x encoder parameter rule; the parameter
table (total / trainable / size on disk) of a set of networks."""
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
MIN_MAP_WIDTH = 16


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def generator_widths(target: int, mc, text_dim: int) -> tuple[int, int]:
    """(width, map_width) of a Generator with `target` parameters, width as close to mc.g_width as fits.

    The conv width sets the coarse size; the mapping MLP's hidden width (each unit adds
    d_in + 1 + 64 * width parameters, < 0.5 % of the total) fine-tunes it to the target.
    """
    def size(w: int, m: int) -> int:
        return count_params(Generator(w, m, mc.noise_dim, mc.cond_dim, mc.embed_dim, text_dim,
                                      upsample=mc.g_upsample))

    for w in sorted(range(8, 129, 4), key=lambda w: (abs(w - mc.g_width), -w)):
        slope = size(w, 2) - size(w, 1)
        m = round((target - size(w, 1)) / slope) + 1
        if m >= MIN_MAP_WIDTH:
            return w, m
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
    enc = SourceEncoder(mc.enc_width, mc.embed_dim, mc.enc_depth)
    e_params = count_params(enc)
    w, m = generator_widths(round(mc.g_ratio * e_params), mc, mc.text_dim)
    gen = Generator(w, m, mc.noise_dim, mc.cond_dim, mc.embed_dim, mc.text_dim, upsample=mc.g_upsample)
    ratio = count_params(gen) / e_params
    if abs(ratio - mc.g_ratio) > RATIO_TOLERANCE * mc.g_ratio:
        raise AssertionError(f"generator/encoder parameter ratio {ratio:.4f} is not within 1 % of {mc.g_ratio}")
    disc = Discriminator(mc.d_width, mc.text_dim, mc.embed_dim if mc.d_rep else 0)
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
