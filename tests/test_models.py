"""Tier 1: every network's shapes and ranges on random tensors, and the generator = 1/2 x encoder rule."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from models.discriminator import Discriminator, minibatch_std, quadrant_slices, reconstruction_targets
from models.encoder import SourceEncoder
from models.generator import CondBatchNorm, Generator, SkipExcitation, generator_channels
from models.text_encoder import TextEncoder
from core.config import Config, ModelConfig, apply_dict
from models.build import (
    INIT_WIDTH_RANGE, RATIO_TOLERANCE, build_networks, count_params, generator_size, generator_widths, param_table,
    size_on_disk,
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


def test_source_encoder_projection_head_sizes():
    """head_layers hidden Linear-BN-ReLU layers of head_width units (0: 8w), then a Linear to embed_dim."""
    def head_params(dims):  # Linear with bias + BatchNorm1d (weight, bias) per hidden layer, then the last Linear
        hidden = sum(i * o + o + 2 * o for i, o in zip(dims[:-2], dims[1:-1]))
        return hidden + dims[-2] * dims[-1] + dims[-1]

    earlier = SourceEncoder(width=8, embed_dim=20, head_width=0, head_layers=1)
    default, wide = SourceEncoder(width=8, embed_dim=20), SourceEncoder(width=8, embed_dim=20, head_width=96,
                                                                        head_layers=3)
    assert count_params(earlier.head) == head_params([64, 64, 20])
    assert count_params(default.head) == head_params([64, 2048, 2048, 20])
    assert count_params(wide.head) == head_params([64, 96, 96, 96, 20])
    backbone = count_params(earlier) - count_params(earlier.head)
    assert count_params(default) - count_params(default.head) == backbone  # the head is all that changes
    # (0, 1) is the earlier head module for module: its state_dict keys are the earlier network's
    assert [k for k in earlier.state_dict() if k.startswith("head.") and "running" not in k
            and "num_batches" not in k] == ["head.0.weight", "head.0.bias", "head.1.weight", "head.1.bias",
                                            "head.3.weight", "head.3.bias"]
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    assert wide(x).shape == (3, 20) and _unit_norm(wide(x))
    for bad in (dict(head_layers=0), dict(head_width=-1)):
        with pytest.raises(ValueError, match="head"):
            SourceEncoder(width=8, embed_dim=20, **bad)


# ---------------------------------------------------------------- generator
def _generator(**kw) -> Generator:
    args = dict(width=8, noise_dim=10, cond_dim=6, embed_dim=12, text_dim=14)
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


def test_generator_rejects_other_resolutions_and_removed_options():
    with pytest.raises(ValueError, match="64x64"):
        _generator(img_resolution=128)
    for removed in (dict(noise=True), dict(skip=True), dict(map_width=32), dict(cond_norm=False)):
        with pytest.raises(TypeError):
            _generator(**removed)
    with pytest.raises(ValueError, match="subpixel"):
        _generator(upsample="subpixel")


@pytest.mark.parametrize("init_width", [0, 40])
def test_generator_feature_shapes_at_every_resolution(init_width):
    """C4 (init_width, default 8w), 4w, 2w, w, w/2 channels at 4, 8, 16, 32, 64 px; two convs in the 8 and 16 px
    blocks, one in the 32 and 64 px blocks; the excitations gate the 32 px map from 4 px and 64 px from 8 px."""
    w = 8
    g = _generator(width=w, init_width=init_width)
    c4 = init_width or 8 * w
    assert generator_channels(w, init_width) == [c4, 4 * w, 2 * w, w, w // 2] and g.init_width == c4
    assert [len(b.convs) for b in g.blocks] == [2, 2, 1, 1]
    shapes = {}
    for name in ("conv4", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "sle32", "sle64", "to_rgb"):
        g.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape))
    n = 3
    g(torch.randn(n, 10), torch.randn(n, 14), torch.randn(n, 12))
    assert shapes == {"conv4": (n, c4, 4, 4), "blocks.0": (n, 4 * w, 8, 8), "blocks.1": (n, 2 * w, 16, 16),
                      "blocks.2": (n, w, 32, 32), "blocks.3": (n, w // 2, 64, 64), "sle32": (n, w, 32, 32),
                      "sle64": (n, w // 2, 64, 64), "to_rgb": (n, 3, 64, 64)}
    assert g.sle32.gate[1].in_channels == c4 and g.sle64.gate[1].in_channels == 4 * w


def test_skip_excitation_gates_channels_and_every_gate_learns():
    sle = SkipExcitation(6, 5)
    small, big = torch.randn(2, 6, 8, 8), torch.randn(2, 5, 32, 32)
    gates = sle.gate(small)
    assert gates.shape == (2, 5, 1, 1) and (gates > 0).all() and (gates < 1).all()
    torch.testing.assert_close(sle(small, big), big * gates)  # one factor per image and channel
    g = _generator().train()
    g(torch.randn(4, 10), torch.randn(4, 14), torch.randn(4, 12)).square().mean().backward()
    for name in ("sle32", "sle64"):
        for p in getattr(g, name).parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_generator_conditional_norm_starts_plain_and_reaches_every_norm():
    torch.manual_seed(0)
    g = _generator().eval()
    norms = [m for m in g.modules() if isinstance(m, CondBatchNorm)]
    assert len(norms) == 8  # the linear layer's, the 4 px conv's, 2 + 2 + 1 + 1 in the blocks
    assert all(not m.bn.affine for m in norms)  # scale and shift come from s = (c, r) only
    z, t, r = torch.randn(4, 10), torch.randn(4, 14), torch.randn(4, 12)
    c = g.condition(t)[1]
    before = g.synthesize(z, c, r)
    other = g.synthesize(z, c, r.flip(0))
    # zero-initialised affine maps: r only enters through the linear layer at first
    for m in norms:
        torch.testing.assert_close(m.affine(torch.cat([c, r], 1)), torch.zeros(4, 2 * m.bn.num_features))
    g.train()
    g.synthesize(z, c, r).square().mean().backward()
    for i, m in enumerate(norms):  # the condition reaches every resolution
        assert m.affine.weight.grad.abs().sum() > 0, f"norm {i}"
    assert not torch.allclose(before, other)

def test_generator_upsampling_modes_share_parameters_and_differ_in_output():
    torch.manual_seed(0)
    near = _generator().eval()
    bil = _generator(upsample="bilinear").eval()
    bil.load_state_dict(near.state_dict())  # same parameters: the mode has none
    z, t, r = torch.randn(4, 10), torch.randn(4, 14), torch.randn(4, 12)
    c = near.condition(t)[1]  # the mean, no sampling
    a, b = near.synthesize(z, c, r), bil.synthesize(z, c, r)
    assert a.shape == b.shape == (4, 3, 64, 64) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="bicubic.*one per block"):
        _generator(upsample="bicubic")
    from core.config import ConfigError, build_config
    for bad in ("bicubic", "subpixel", "nearest,nearest,bilinear", "nearest,nearest,subpixel,subpixel"):
        with pytest.raises(ConfigError, match=f"model.g_upsample.*{bad}"):
            build_config(None, {"model.g_upsample": bad})
    mixed = _generator(upsample="bilinear, nearest,nearest,nearest")  # spaces allowed
    assert [b.mode for b in mixed.blocks] == ["bilinear", "nearest", "nearest", "nearest"]


def test_default_generator_keeps_its_parameters_at_low_resolution():
    """The default build: the one linear layer holds < half the parameters, the 4-16 px part > 3/4 of them and
    the 32 and 64 px blocks < 5 %."""
    g = build_networks(ModelConfig(), vocab_size=300).generator
    total = count_params(g)
    assert count_params(g.fc) < 0.5 * total
    low = sum(count_params(m) for m in (g.fc, g.fc_norm, g.conv4, g.norm4, g.blocks[0], g.blocks[1]))
    assert low > 0.75 * total
    assert count_params(g.blocks[2]) + count_params(g.blocks[3]) < 0.05 * total


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
    assert h.shape == (4, 64) == (4, d.feature_dim)
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


def test_discriminator_is_residual_with_its_widths_and_size():
    d = Discriminator(width=32, text_dim=128)
    assert [(b.skip.in_channels, b.skip.out_channels) for b in d.blocks] == [(3, 32), (32, 64), (64, 128), (128, 256)]
    assert d.conv_out.in_channels == 8 * 32 + 1  # the minibatch-std channel
    assert 1.2e6 < count_params(d) < 1.5e6  # near the earlier ~1.31 M at width 32
    assert count_params(d.decoder) < 0.05 * count_params(d)
    shapes = []
    for b in d.blocks:
        b.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    d.features(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert shapes == [(2, 32, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]


@pytest.mark.parametrize("n", [1, 2, 4, 6, 7, 8])
def test_minibatch_std_groups_of_four_any_batch_size(n):
    x = torch.randn(n, 5, 4, 4)
    y = minibatch_std(x)
    assert y.shape == (n, 6, 4, 4) and torch.equal(y[:, :5], x)
    for start in range(0, n, 4):  # consecutive groups of 4, the last one smaller
        g = x[start:start + 4]
        expected = (g.var(0, unbiased=False) + 1e-8).sqrt().mean() if len(g) > 1 else torch.tensor(1e-4)
        torch.testing.assert_close(y[start:start + 4, 5], expected.expand(len(g), 4, 4))


def test_minibatch_std_hand_computed_and_does_not_mix_real_with_fake():
    x = torch.tensor([0.0, 2.0, 4.0, 6.0, 1.0, 1.0]).view(6, 1, 1, 1)  # groups [0, 2, 4, 6] and [1, 1]
    y = minibatch_std(x, eps=0.0)[:, 1].flatten()
    torch.testing.assert_close(y, torch.tensor([5 ** 0.5] * 4 + [0.0, 0.0]))  # population std of 0, 2, 4, 6
    real, fake = torch.randn(8, 3, 4, 4), torch.randn(8, 3, 4, 4)
    both = minibatch_std(torch.cat([real, fake]))
    torch.testing.assert_close(both[:8], minibatch_std(real))
    torch.testing.assert_close(both[8:], minibatch_std(fake))


@pytest.mark.parametrize("n", [1, 6])
def test_discriminator_runs_on_batches_not_divisible_by_four(n):
    d = Discriminator(width=8, text_dim=14, rep_dim=5)
    img = (torch.rand(n, 3, 64, 64) * 2 - 1).requires_grad_(True)
    out = d(img, torch.randn(n, 14), torch.randn(n, 5))
    assert out.shape == (n,) and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0
    assert d.eval()(img.detach(), torch.randn(n, 14), torch.randn(n, 5)).shape == (n,)


def test_discriminator_features_and_map_and_reconstruction_shapes():
    d = Discriminator(width=8, text_dim=14)
    img = torch.rand(5, 3, 64, 64) * 2 - 1
    h, f8 = d.features_and_map(img)
    assert h.shape == (5, 64) and f8.shape == (5, 32, 8, 8)
    d.eval()
    torch.testing.assert_close(d.features_and_map(img)[0], d.features(img))  # the same pass
    for q in range(4):
        whole, part = d.reconstruct(f8, q)
        assert whole.shape == part.shape == (5, 3, 32, 32)
        assert whole.abs().max() <= 1 and part.abs().max() <= 1
    for bad in (-1, 4):
        with pytest.raises(ValueError, match="quadrant"):
            d.reconstruct(f8, bad)


@pytest.mark.parametrize("q", [0, 1, 2, 3])
def test_reconstruction_part_reads_only_its_quadrant(q):
    d = Discriminator(width=8, text_dim=14).eval()  # eval: the decoder's BatchNorm uses running statistics
    f8 = torch.randn(3, 32, 8, 8)
    whole, part = d.reconstruct(f8, q)
    rows, cols = quadrant_slices(q, 8)
    other = f8.clone()
    mask = torch.ones(8, 8, dtype=torch.bool)
    mask[rows, cols] = False
    other[:, :, mask] = torch.randn_like(other[:, :, mask])  # everything outside the quadrant
    whole2, part2 = d.reconstruct(other, q)
    torch.testing.assert_close(part2, part)
    assert not torch.allclose(whole2, whole)
    inside = f8.clone()
    inside[:, :, rows, cols] += 1
    assert not torch.allclose(d.reconstruct(inside, q)[1], part)


def test_reconstruction_targets_are_the_pooled_image_and_its_quadrant():
    img = torch.arange(2 * 3 * 64 * 64, dtype=torch.float32).view(2, 3, 64, 64)
    expected_slices = {0: (slice(0, 32), slice(0, 32)), 1: (slice(0, 32), slice(32, 64)),
                       2: (slice(32, 64), slice(0, 32)), 3: (slice(32, 64), slice(32, 64))}
    for q, (rows, cols) in expected_slices.items():
        assert quadrant_slices(q, 64) == (rows, cols)
        whole, part = reconstruction_targets(img, q)
        assert whole.shape == part.shape == (2, 3, 32, 32)
        assert torch.equal(part, img[:, :, rows, cols])
        # a 2x2 average: pixel (i, j) of the whole target is the mean of img[2i:2i+2, 2j:2j+2]
        assert whole[1, 2, 5, 7] == img[1, 2, 10:12, 14:16].mean()
    assert quadrant_slices(3, 8) == (slice(4, 8), slice(4, 8))


def test_discriminator_decoder_learns_from_a_reconstruction_loss():
    from training.losses import reconstruction_loss
    d = Discriminator(width=8, text_dim=14)
    img = torch.rand(4, 3, 64, 64) * 2 - 1
    h, f8 = d.features_and_map(img)
    whole, part = d.reconstruct(f8, 2)
    t_whole, t_part = reconstruction_targets(img, 2)
    (reconstruction_loss(whole, t_whole) + reconstruction_loss(part, t_part)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.decoder.parameters())
    assert d.blocks[0].conv1.parametrizations.weight.original.grad.abs().sum() > 0  # and the body under f8
    assert d.blocks[3].conv1.parametrizations.weight.original.grad is None  # not the layers after it
    assert d.conv_out.parametrizations.weight.original.grad is None


# ---------------------------------------------------------------- parameter budget
def _tiny_model_config() -> ModelConfig:
    cfg = Config()
    apply_dict(cfg, {"model": yaml.safe_load((REPO / "experiments" / "tiny.yaml").read_text())["model"]})
    return cfg.model


def _ratio(nets) -> float:
    return count_params(nets.generator) / count_params(nets.encoder)


EARLIER_HEAD = dict(enc_head_width=0, enc_head_layers=1)  # the encoder head before the SimCLR-sized one
VARIED = [
    dict(enc_width=16, embed_dim=64, g_width=16, noise_dim=32),
    dict(enc_width=24, embed_dim=128, g_width=24),
    dict(enc_width=32, embed_dim=256, g_width=48, noise_dim=128),
    dict(enc_width=48, embed_dim=64, g_width=32, noise_dim=16),
    dict(enc_width=48, embed_dim=256, g_width=16),
    dict(enc_width=16, embed_dim=256, g_width=64),
    dict(enc_width=24, embed_dim=64, g_width=64, cond_dim=32, text_dim=96),
    dict(g_upsample="bilinear"),
    dict(g_upsample="nearest,nearest,nearest,bilinear"),
    dict(enc_head_width=1024),
    dict(enc_head_width=512, enc_head_layers=3),
    EARLIER_HEAD,  # the earlier encoder: a ~0.67 M generator (narrower than g_width)
    dict(EARLIER_HEAD, g_width=16, enc_depth=2),
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
    g = nets.generator
    assert ",".join(b.mode for b in g.blocks) in (mc.g_upsample, ",".join([mc.g_upsample] * 4))
    assert INIT_WIDTH_RANGE[0] * g.width <= g.init_width <= INIT_WIDTH_RANGE[1] * g.width
    assert count_params(g) == generator_size(mc, mc.text_dim, g.width, g.init_width)
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


def test_default_sizes():
    """The default design: a ~6.2 M encoder (5 M of it in the projection head), so a ~3.1 M generator at width
    g_width; the discriminator ~1.3 M."""
    mc = ModelConfig()
    nets = build_networks(mc, vocab_size=300)
    e, g, d = (count_params(m) for m in (nets.encoder, nets.generator, nets.discriminator))
    assert 6.0e6 < e < 6.5e6 and 3.0e6 < g < 3.25e6 and 1.2e6 < d < 1.5e6
    assert nets.generator.width == mc.g_width
    earlier = build_networks(ModelConfig(**EARLIER_HEAD), vocab_size=300)
    assert 1.3e6 < count_params(earlier.encoder) < 1.4e6  # the earlier encoder, 1.33 M


def test_tiny_config_is_the_tiny_experiment():
    mc = _tiny_model_config()
    assert (mc.enc_width, mc.embed_dim, mc.g_width) == (12, 32, 8)  # read from the YAML, not defaults
    assert (mc.enc_head_width, mc.enc_head_layers) == (128, 2)


@pytest.mark.parametrize("upsample", ["nearest", "nearest,nearest,nearest,bilinear"])
def test_generator_widths_prefers_g_width_and_hits_target(upsample):
    mc = ModelConfig(g_upsample=upsample)
    for target, same_width in ((3_113_968, True), (2_500_000, True), (300_000, False)):  # default budget, ...
        w, c4 = generator_widths(target, mc, mc.text_dim)
        assert (w == mc.g_width) is same_width
        assert INIT_WIDTH_RANGE[0] * w <= c4 <= INIT_WIDTH_RANGE[1] * w
        size = count_params(Generator(w, mc.noise_dim, mc.cond_dim, mc.embed_dim, mc.text_dim, c4,
                                      upsample=upsample))
        assert size == generator_size(mc, mc.text_dim, w, c4)
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


@pytest.mark.parametrize("kw", [dict(g_ratio=0.01), dict(EARLIER_HEAD, enc_width=4), dict(g_ratio=0.0)])
def test_impossible_config_raises_clear_error(kw):
    with pytest.raises(ValueError, match="no generator fits .* parameters"):
        build_networks(ModelConfig(**kw), vocab_size=300)
