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
from training.config import Config, ModelConfig, apply_dict
from training.networks import (
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


def test_discriminator_patch_logits_come_from_the_same_pass():
    plain, d = Discriminator(width=8, text_dim=14), Discriminator(width=8, text_dim=14, patch=True)
    assert count_params(d) - count_params(plain) == 4 * 8 + 1  # a 1x1 conv from 4d channels to one logit
    d.eval()
    img = torch.rand(4, 3, 64, 64) * 2 - 1
    h, p = d.features_and_patches(img)
    assert p.shape == (4, 64) and torch.allclose(h, d.features(img), atol=1e-6)
    local = img.clone()
    local[:, :, :8, :8] = -local[:, :, :8, :8]  # change only the top-left corner
    p2 = d.features_and_patches(local)[1].view(4, 8, 8)
    changed = (p2 - p.view(4, 8, 8)).abs().amax(0) > 0
    assert changed[0, 0] and not changed[4:, 4:].any()  # a patch logit sees its own neighbourhood only
    with pytest.raises(ValueError, match="patch"):
        plain.features_and_patches(img)


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
    dict(g_cond_norm=False),  # the plain generator (the default is conditional norm in every block)
    dict(enc_width=16, embed_dim=256, g_width=64, g_cond_norm=False),
    dict(g_noise=True),  # per-pixel noise injection (learned per-channel scales)
    dict(g_upsample="nearest,nearest,subpixel,subpixel"),  # learned upsampling in the last two blocks (4x params)
    dict(g_upsample="subpixel"),  # learned in all four: does not fit at width 48, so a narrower generator
    dict(g_skip=True),  # RGB from every resolution
    dict(enc_width=16, embed_dim=64, g_width=16, g_upsample="nearest,bilinear,nearest,subpixel", g_skip=True),
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
    assert nets.generator.cond_norm == mc.g_cond_norm and nets.generator.noise == mc.g_noise
    assert nets.generator.skip == mc.g_skip
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


@pytest.mark.parametrize("cond_norm", [True, False])
def test_generator_widths_prefers_g_width_and_hits_target(cond_norm):
    mc = ModelConfig(g_cond_norm=cond_norm)
    for target, same_width in ((666_992, True), (100_000, False)):  # default budget; one too small for w=32
        w, m = generator_widths(target, mc, mc.text_dim)
        assert (w == mc.g_width) is same_width and m >= 16
        size = count_params(Generator(w, m, mc.noise_dim, mc.cond_dim, mc.embed_dim, mc.text_dim,
                                      cond_norm=cond_norm))
        assert abs(size - target) / target <= RATIO_TOLERANCE


def test_noise_injection_starts_silent_is_fresh_in_training_and_fixed_in_eval():
    g = Generator(16, 32, 8, 8, 16, 12, noise=True)
    z, c, r = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 16)
    g.eval()
    plain = Generator(16, 32, 8, 8, 16, 12, noise=False).eval()
    plain.load_state_dict({k: v for k, v in g.state_dict().items() if "noise" not in k})
    assert torch.equal(g.synthesize(z, c, r), plain.synthesize(z, c, r))  # scales start at zero: no effect
    for block in g.blocks:
        block.noise_scale.data.fill_(0.5)
    a, b = g.synthesize(z, c, r), g.synthesize(z, c, r)
    assert torch.equal(a, b) and not torch.allclose(a, plain.synthesize(z, c, r), atol=1e-3)  # eval: fixed noise
    g.train()
    a, b = g.synthesize(z, c, r), g.synthesize(z, c, r)
    assert not torch.allclose(a, b, atol=1e-3)  # training: fresh noise per call
    assert [blk.const_noise.shape[-1] for blk in g.blocks] == [8, 16, 32, 64]
    assert "blocks.0.const_noise" in g.state_dict() and count_params(g) == count_params(plain) + sum(
        blk.noise_scale.numel() for blk in g.blocks)


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
    from training.config import ConfigError, build_config
    for bad in ("bicubic", "nearest,nearest,subpixel", "nearest,nearest,nearest,bicubic"):
        with pytest.raises(ConfigError, match=f"model.g_upsample.*{bad}"):
            build_config(None, {"model.g_upsample": bad})
    mixed = Generator(16, 32, 8, 8, 16, 16, upsample="bilinear, nearest,nearest,nearest")  # spaces allowed
    assert [b.mode for b in mixed.blocks] == ["bilinear", "nearest", "nearest", "nearest"]


def test_subpixel_upsampling_starts_as_nearest_and_learns_per_phase():
    """Sub-pixel blocks: the conv runs at the low resolution with 4x outputs (ICNR init: all four sub-pixel phases
    share a kernel, so the block starts as nearest upsampling of a low-resolution conv)."""
    torch.manual_seed(0)
    near = Generator(16, 32, 8, 8, 16, 16)
    sub = Generator(16, 32, 8, 8, 16, 16, upsample="nearest,nearest,subpixel,subpixel")
    assert [b.mode for b in sub.blocks] == ["nearest", "nearest", "subpixel", "subpixel"]
    extra = sum(3 * b.conv.weight.numel() for b in near.blocks[2:])  # 4x the conv of the last two blocks
    assert count_params(sub) - count_params(near) == extra
    block = sub.blocks[3]
    x = torch.randn(2, block.conv.in_channels, 32, 32)
    h = F.pixel_shuffle(block.conv(x), 2)  # (2, cout, 64, 64)
    low = F.conv2d(x, block.conv.weight[::4], padding=1)  # one kernel per output channel, at 32 px
    torch.testing.assert_close(h, F.interpolate(low, scale_factor=2.0, mode="nearest"))
    assert block(x).shape == (2, block.conv.out_channels // 4, 64, 64)
    # the phases are separate parameters: a loss on one phase's pixels moves only that phase's kernels
    s = torch.randn(2, block.affine.in_features) if block.affine is not None else None
    block.eval()(x, s)[..., ::2, ::2].square().mean().backward()  # eval: BatchNorm does not mix the phases
    g = block.conv.weight.grad.view(block.conv.out_channels // 4, 4, -1)
    assert g[:, 0].abs().sum() > 0 and torch.equal(g[:, 1:], torch.zeros_like(g[:, 1:]))  # only phase (0, 0)


def test_skip_generator_sums_every_resolution():
    """g_skip: 1x1 RGB convs on the 8, 16 and 32 px blocks, upsampled and added to the 64 px RGB before the tanh;
    with them at zero the output is the plain generator's."""
    torch.manual_seed(0)
    plain, skip = Generator(16, 32, 8, 8, 16, 16).eval(), Generator(16, 32, 8, 8, 16, 16, skip=True).eval()
    assert [m.in_channels for m in skip.skip_rgb] == [b.conv.out_channels for b in skip.blocks[:3]]
    assert count_params(skip) - count_params(plain) == sum(3 * m.in_channels + 3 for m in skip.skip_rgb)
    skip.load_state_dict(plain.state_dict(), strict=False)
    z, t, r = torch.randn(4, 8), torch.randn(4, 16), torch.randn(4, 16)
    c = plain.condition(t)[1]
    assert not torch.allclose(skip.synthesize(z, c, r), plain.synthesize(z, c, r))
    for m in skip.skip_rgb:
        nn.init.zeros_(m.weight)
        nn.init.zeros_(m.bias)
    torch.testing.assert_close(skip.synthesize(z, c, r), plain.synthesize(z, c, r))
    skip.train()
    skip.synthesize(z, c, r).square().mean().backward()
    for i, m in enumerate(skip.skip_rgb):  # every resolution's RGB reaches the image
        assert m.bias.grad.abs().sum() > 0, f"skip {i}"


def test_generator_conditional_norm_starts_plain_and_reaches_every_block():
    torch.manual_seed(0)
    plain, cond = Generator(16, 32, 8, 8, 16, 16).eval(), Generator(16, 32, 8, 8, 16, 16, cond_norm=True).eval()
    affine = {k for k in cond.state_dict() if ".affine." in k}
    assert len(affine) == 8  # a (weight, bias) pair per block
    # plain BatchNorm's scale/shift are parameters; the conditional ones come from s = (c, r) (8 + 16 dims)
    extra = sum(2 * (8 + 16 + 1) * b.conv.out_channels - 2 * b.conv.out_channels for b in plain.blocks)
    assert count_params(cond) - count_params(plain) == extra
    shared = {k: v for k, v in plain.state_dict().items() if k in cond.state_dict()}
    cond.load_state_dict(shared, strict=False)
    z, t, r = torch.randn(4, 8), torch.randn(4, 16), torch.randn(4, 16)
    c = plain.condition(t)[1]
    torch.testing.assert_close(cond.synthesize(z, c, r), plain.synthesize(z, c, r))  # zero-initialised affine
    cond.train()
    cond.synthesize(z, c, r).square().mean().backward()
    for i, block in enumerate(cond.blocks):  # the condition reaches every resolution
        assert block.affine.weight.grad.abs().sum() > 0, f"block {i}"
    with pytest.raises(ValueError, match="condition"):
        cond.blocks[0](torch.randn(2, 64, 4, 4))
