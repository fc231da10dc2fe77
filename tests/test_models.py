"""Tier 1: every network's shapes and ranges on random tensors, and the generator = 1/2 x encoder rule."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from models.discriminator import Discriminator
from models.encoder import SourceEncoder
from models.generator import Generator
from models.text_encoder import TextEncoder
from core.config import Config, ModelConfig, apply_dict
from models.build import (
    RATIO_TOLERANCE, build_networks, count_params, generator_widths, param_table, size_on_disk,
)

REPO = Path(__file__).resolve().parents[1]
VOCAB = 57


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _unit_norm(x: torch.Tensor) -> bool:
    return torch.allclose(x.norm(dim=1), torch.ones(x.shape[0]), atol=1e-5)


def _tokens(lengths: list[int], max_len: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    """Random word ids (>= 2, i.e. no <pad>/<unk>) up to each length, <pad> (0) after."""
    tokens = torch.zeros(len(lengths), max_len, dtype=torch.long)
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(2, VOCAB, (n,))
    return tokens, torch.tensor(lengths, dtype=torch.long)


# ---------------------------------------------------------------- text encoder
def test_text_encoder_shapes_and_unit_norm_heads():
    te = TextEncoder(VOCAB, width=16, text_dim=24, embed_dim=12)
    tokens, lengths = _tokens([9, 1, 4, 2])  # includes a length-1 caption and a full-length one
    enc = te(tokens, lengths)
    assert enc.shape == (4, 24) and enc.dtype == torch.float32
    assert torch.isfinite(enc).all()
    emb, prior = te.embed(enc), te.predict_representation(enc)
    assert emb.shape == (4, 12) and prior.shape == (4, 12)
    assert _unit_norm(emb) and _unit_norm(prior)
    assert not torch.allclose(emb, prior)  # two different heads


def test_text_encoder_ignores_padding_and_depends_on_words():
    te = TextEncoder(VOCAB, width=16, text_dim=24, embed_dim=12).eval()
    tokens, lengths = _tokens([3, 1])
    base = te(tokens, lengths)
    garbage = tokens.clone()
    garbage[0, 3:] = torch.randint(2, VOCAB, (garbage.shape[1] - 3,))  # beyond the length: masked out
    garbage[1, 1:] = 5
    assert torch.allclose(te(garbage, lengths), base, atol=1e-6)
    other = tokens.clone()
    other[0, 1] = 2 if tokens[0, 1] != 2 else 3  # a word inside the caption changes the encoding
    assert not torch.allclose(te(other, lengths)[0], base[0])
    # a caption encodes the same alone as in a batch (per-row pooling, no cross-row leakage)
    assert torch.allclose(te(tokens[1:], lengths[1:])[0], base[1], atol=1e-6)


# ---------------------------------------------------------------- source encoder
def test_source_encoder_shapes_and_unit_norm():
    enc = SourceEncoder(width=8, embed_dim=20)
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    r = enc(x)
    assert r.shape == (4, 20) and _unit_norm(r)
    feats = enc.features(x)
    assert feats.shape == (4, 64) == (4, enc.feature_dim)
    assert enc.embed_dim == 20
    enc.eval()
    r1 = enc(x[:1])  # eval mode: a single image works (BatchNorm running statistics)
    assert r1.shape == (1, 20) and _unit_norm(r1)


def test_source_encoder_depth_adds_blocks_at_every_stage_with_the_same_shapes():
    shallow, deep = SourceEncoder(width=8, embed_dim=20), SourceEncoder(width=8, embed_dim=20, depth=2)
    assert (len(shallow.stages), len(deep.stages)) == (4, 8)
    assert sum(isinstance(b.skip, torch.nn.Conv2d) and b.skip.stride == (2, 2) for b in deep.stages) == 3
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    assert deep(x).shape == (3, 20) and deep.features(x).shape == (3, 64)
    assert count_params(deep) > count_params(shallow)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        SourceEncoder(width=8, embed_dim=20, depth=0)


# ---------------------------------------------------------------- generator
def _generator(**kw) -> Generator:
    args = dict(width=16, map_width=24, noise_dim=10, cond_dim=6, embed_dim=12, text_dim=14)
    args.update(kw)
    return Generator(**args)


def test_generator_output_shape_and_range():
    g = _generator()
    n = 3
    z, t, r = torch.randn(n, 10), torch.randn(n, 14) * 50, torch.randn(n, 12) * 50  # large inputs: tanh bounds
    img = g(z, t, r)
    assert img.shape == (n, 3, 64, 64)
    assert img.min() >= -1 and img.max() <= 1
    assert img.std() > 0


def test_generator_condition_and_synthesize():
    g = _generator().eval()
    t = torch.randn(5, 14)
    c, mu, logvar = g.condition(t)
    assert c.shape == mu.shape == logvar.shape == (5, 6)
    assert not torch.allclose(c, mu)  # c is sampled around mu
    c2, mu2, _ = g.condition(t)
    assert torch.equal(mu, mu2) and not torch.equal(c, c2)
    _, _, lv = g.condition(t * 1e4)  # huge text encodings: log-variance clamped to [-10, 10]
    assert lv.abs().max() <= 10 and lv.abs().max() == 10
    z, r = torch.randn(5, 10), torch.randn(5, 12)
    img = g.synthesize(z, mu, r)
    assert img.shape == (5, 3, 64, 64)
    assert torch.equal(img, g.synthesize(z, mu, r))  # deterministic given (z, c, r)
    assert not torch.allclose(img, g.synthesize(torch.randn(5, 10), mu, r))  # noise matters
    assert not torch.allclose(img, g.synthesize(z, mu, torch.randn(5, 12)))  # source representation matters


def test_generator_rejects_other_resolutions():
    with pytest.raises(ValueError, match="64x64"):
        _generator(img_resolution=128)


# ---------------------------------------------------------------- discriminator
def test_discriminator_logits_and_text_dependence():
    d = Discriminator(width=8, text_dim=14)
    img, t = torch.rand(4, 3, 64, 64) * 2 - 1, torch.randn(4, 14)
    out = d(img, t)
    assert out.shape == (4,) and torch.isfinite(out).all()
    d.eval()  # no power-iteration update: the same inputs give the same logits
    a = d(img, t)
    assert torch.equal(a, d(img, t))
    b = d(img, torch.randn(4, 14))
    assert (a - b).abs().min() > 0  # every row's logit depends on its text
    c = d(img.flip(-2), t)
    assert not torch.allclose(a, c)  # and on the image



def test_discriminator_features_scored_against_several_captions():
    d = Discriminator(width=8, text_dim=14).eval()
    img, t, t2 = torch.rand(4, 3, 64, 64) * 2 - 1, torch.randn(4, 14), torch.randn(4, 14)
    h = d.features(img)
    assert h.shape == (4, 64)
    assert torch.allclose(d.logits(h, t), d(img, t), atol=1e-6)  # one conv pass, any caption
    assert torch.allclose(d.logits(h, t2), d(img, t2), atol=1e-6)


def test_discriminator_with_representation_projection():
    plain, d = Discriminator(width=8, text_dim=14), Discriminator(width=8, text_dim=14, rep_dim=6)
    assert count_params(d) - count_params(plain) == 6 * 64 + 64  # one more projection, nothing else
    d.eval()
    img, t, r = torch.rand(4, 3, 64, 64) * 2 - 1, torch.randn(4, 14), torch.randn(4, 6)
    h = d.features(img)
    a = d(img, t, r)
    assert a.shape == (4,) and torch.allclose(a, d.logits(h, t, r), atol=1e-6)
    assert (a - d(img, t, torch.randn(4, 6))).abs().min() > 0  # every row's logit depends on its r
    assert (a - d(img, torch.randn(4, 14), r)).abs().min() > 0  # and still on its text
    with pytest.raises(ValueError, match="rep_dim"):
        d(img, t)
    with pytest.raises(ValueError, match="rep_dim"):
        plain(img, t, r)


# ---------------------------------------------------------------- parameter budget
def _tiny_model_config() -> ModelConfig:
    cfg = Config()
    apply_dict(cfg, {"model": yaml.safe_load((REPO / "experiments" / "tiny.yaml").read_text())["model"]})
    return cfg.model


def _ratio(nets) -> float:
    return count_params(nets.generator) / count_params(nets.encoder)


VARIED = [
    dict(enc_width=16, embed_dim=64, g_width=16, noise_dim=32),
    dict(enc_width=24, embed_dim=128, g_width=32),
    dict(enc_width=32, embed_dim=256, g_width=64, noise_dim=128),
    dict(enc_width=48, embed_dim=64, g_width=32, noise_dim=16),
    dict(enc_width=48, embed_dim=256, g_width=16),
    dict(enc_width=16, embed_dim=256, g_width=64),
    dict(enc_width=24, embed_dim=64, g_width=64, cond_dim=32, text_dim=96),
    dict(g_upsample="bilinear"),  # the mode has no parameters: the same widths as nearest
    dict(enc_width=16, embed_dim=64, g_width=16, g_upsample="nearest,bilinear,nearest,bilinear"),
    dict(enc_depth=2),  # two residual blocks per encoder stage: a larger encoder, so a larger generator
    dict(enc_width=16, embed_dim=64, g_width=16, enc_depth=3),
]


@pytest.mark.parametrize("kw", [None, "tiny", *VARIED],
                         ids=["default", "tiny", *[f"varied{i}" for i in range(len(VARIED))]])
def test_generator_is_half_the_encoder(kw):
    mc = ModelConfig() if kw is None else _tiny_model_config() if kw == "tiny" else ModelConfig(**kw)
    assert mc.g_ratio == 0.5
    nets = build_networks(mc, vocab_size=300)
    assert abs(_ratio(nets) - 0.5) <= 0.01 * 0.5
    assert ",".join(b.mode for b in nets.generator.blocks) in (mc.g_upsample, ",".join([mc.g_upsample] * 4))
    assert nets.encoder.embed_dim == mc.embed_dim and nets.text_encoder.text_dim == mc.text_dim
    # the networks fit together: G consumes T's encoding and E's representation, D scores G's images
    n = 2
    tokens, lengths = _tokens([3, 1])
    tokens = tokens.clamp(max=299)
    t = nets.text_encoder(tokens, lengths)
    r = nets.encoder(torch.rand(n, 3, 64, 64) * 2 - 1)
    img = nets.generator(torch.randn(n, mc.noise_dim), t, r)
    assert img.shape == (n, 3, 64, 64)
    assert nets.discriminator(img, t).shape == (n,)


def test_tiny_config_is_the_tiny_experiment():
    mc = _tiny_model_config()
    assert (mc.enc_width, mc.embed_dim, mc.g_width) == (12, 32, 8)  # read from the YAML, not defaults


@pytest.mark.parametrize("upsample", ["nearest", "bilinear,nearest,nearest,bilinear"])
def test_generator_widths_prefers_g_width_and_hits_target(upsample):
    mc = ModelConfig(g_upsample=upsample)
    for target, same_width in ((666_992, True), (100_000, False)):  # default budget; one too small for w=32
        w, m = generator_widths(target, mc, mc.text_dim)
        assert (w == mc.g_width) is same_width and m >= 16
        size = count_params(Generator(w, m, mc.noise_dim, mc.cond_dim, mc.embed_dim, mc.text_dim,
                                      upsample=upsample))
        assert abs(size - target) / target <= RATIO_TOLERANCE


def test_param_table_rows():
    nets = build_networks(_tiny_model_config(), vocab_size=300)
    rows = param_table(nets)
    assert [r["network"] for r in rows] == ["text_encoder", "encoder", "generator", "discriminator"]
    for row, (name, m) in zip(rows, nets.items()):
        assert set(row) == {"network", "total_params", "trainable_params", "size_on_disk_bytes", "ratio_to_encoder"}
        assert row["total_params"] == sum(p.numel() for p in m.parameters()) > 0
        assert row["trainable_params"] == row["total_params"]
        # float32 weights: at least 4 bytes per parameter on disk, plus some overhead (not absurdly more)
        assert 4 * row["total_params"] <= row["size_on_disk_bytes"] <= 4 * row["total_params"] + 200_000
        assert row["size_on_disk_bytes"] == size_on_disk(m)
    assert rows[1]["ratio_to_encoder"] == 1.0
    assert rows[2]["ratio_to_encoder"] == pytest.approx(0.5, rel=0.01)
    assert rows[0]["ratio_to_encoder"] == pytest.approx(rows[0]["total_params"] / rows[1]["total_params"])
    nets.text_encoder.requires_grad_(False)  # frozen (stage 2): trainable drops to 0, total unchanged
    frozen = param_table(nets)[0]
    assert frozen["trainable_params"] == 0 and frozen["total_params"] == rows[0]["total_params"]


@pytest.mark.parametrize("kw", [dict(g_ratio=0.01), dict(enc_width=4), dict(g_ratio=0.0)])
def test_impossible_config_raises_clear_error(kw):
    with pytest.raises(ValueError, match="no generator fits .* parameters"):
        build_networks(ModelConfig(**kw), vocab_size=300)


def test_generator_upsampling_modes_share_parameters_and_differ_in_output():
    torch.manual_seed(0)
    near = Generator(16, 32, 8, 8, 16, 16).eval()
    bil = Generator(16, 32, 8, 8, 16, 16, upsample="bilinear").eval()
    bil.load_state_dict(near.state_dict())  # same parameters: the mode has none
    z, t, r = torch.randn(4, 8), torch.randn(4, 16), torch.randn(4, 16)
    c = near.condition(t)[1]  # the mean, no sampling
    a, b = near.synthesize(z, c, r), bil.synthesize(z, c, r)
    assert a.shape == b.shape == (4, 3, 64, 64) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="bicubic.*one per block"):
        Generator(16, 32, 8, 8, 16, 16, upsample="bicubic")
    from core.config import ConfigError, build_config
    with pytest.raises(ValueError, match="subpixel.*one per block"):  # sub-pixel upsampling was removed
        Generator(16, 32, 8, 8, 16, 16, upsample="nearest,nearest,subpixel,subpixel")
    for bad in ("bicubic", "subpixel", "nearest,nearest,subpixel", "nearest,nearest,nearest,bicubic",
                "nearest,nearest,subpixel,subpixel"):
        with pytest.raises(ConfigError, match=f"model.g_upsample.*{bad}"):
            build_config(None, {"model.g_upsample": bad})
    mixed = Generator(16, 32, 8, 8, 16, 16, upsample="bilinear, nearest,nearest,nearest")  # spaces allowed
    assert [b.mode for b in mixed.blocks] == ["bilinear", "nearest", "nearest", "nearest"]


def test_generator_conditional_norm_starts_plain_and_reaches_every_block():
    torch.manual_seed(0)
    g = Generator(16, 32, 8, 8, 16, 16).eval()
    affine = {k for k in g.state_dict() if ".affine." in k}
    assert len(affine) == 8  # a (weight, bias) pair per block
    # the BatchNorms have no parameters of their own: scale and shift come from s = (c, r) (8 + 16 dims)
    assert all(not list(b.bn.parameters()) for b in g.blocks)
    assert [b.affine.in_features for b in g.blocks] == [8 + 16] * 4
    assert sum(b.affine.weight.numel() + b.affine.bias.numel() for b in g.blocks) == sum(
        2 * (8 + 16 + 1) * b.conv.out_channels for b in g.blocks)
    # zero-initialised affine: every block starts as a plain BatchNorm (unit scale, zero shift), whatever s is
    for block, size in zip(g.blocks, (4, 8, 16, 32)):
        x = torch.randn(2, block.conv.in_channels, size, size)
        plain = F.relu(block.bn(block.conv(F.interpolate(x, scale_factor=2.0, mode=block.mode))))
        torch.testing.assert_close(block(x, torch.randn(2, 24)), plain)
        torch.testing.assert_close(block(x, torch.randn(2, 24)), block(x, torch.zeros(2, 24)))
    z, t, r = torch.randn(4, 8), torch.randn(4, 16), torch.randn(4, 16)
    c = g.condition(t)[1]
    g.train()
    g.synthesize(z, c, r).square().mean().backward()
    for i, block in enumerate(g.blocks):  # the condition reaches every resolution
        assert block.affine.weight.grad.abs().sum() > 0, f"block {i}"
    g.eval()
    before = g.synthesize(z, c, r)
    nn.init.normal_(g.blocks[-1].affine.weight, std=0.1)  # a learned affine: the condition changes the image
    assert not torch.allclose(before, g.synthesize(z, c, r))


# ---------------------------------------------------------------- model.g_ratio: the scaling study's sizes
def test_generator_scales_with_g_ratio():
    """model.g_ratio sets the generator's size for the same encoder (the scaling study's 4x cell), each size
    within the tolerance of its target."""
    sizes = {}
    for ratio in (0.5, 2.0):
        nets = build_networks(ModelConfig(g_ratio=ratio), vocab_size=300)
        assert abs(_ratio(nets) - ratio) <= RATIO_TOLERANCE * ratio
        sizes[ratio] = count_params(nets.generator)
    assert sizes[2.0] / sizes[0.5] == pytest.approx(4, rel=0.02)
