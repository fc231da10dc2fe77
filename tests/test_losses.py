"""Tier 2: losses and DiffAugment on hand-made inputs with known answers."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training import losses
from core.config import parse_policy
from training.diffaug import diff_augment


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------- InfoNCE
@pytest.mark.parametrize("n", [2, 5, 16])
def test_info_nce_uniform_logits_is_log_n(n):
    a = F.normalize(torch.ones(n, 8), dim=1)  # every row identical: all logits equal
    assert losses.info_nce(a, a, 0.1).item() == pytest.approx(math.log(n), rel=1e-6)
    a, b = F.normalize(torch.randn(n, 8), dim=1), F.normalize(torch.randn(n, 8), dim=1)
    assert losses.info_nce(a, b, 1e6).item() == pytest.approx(math.log(n), rel=1e-5)  # logits ~ 0


def test_info_nce_perfect_pairs_small_temperature_is_zero():
    a = torch.eye(6, 10)  # orthonormal rows: positives score 1, negatives 0
    assert losses.info_nce(a, a.clone(), 0.01).item() == pytest.approx(0.0, abs=1e-20)
    # with temperature 1 the same pairs cost exactly log(1 + (N-1) / e)
    assert losses.info_nce(a, a, 1.0).item() == pytest.approx(math.log(1 + 5 / math.e), rel=1e-6)
    # swapped pairs are the worst case: the positive scores 0, one negative 1/T
    assert losses.info_nce(a, a.roll(1, dims=0), 0.01).item() == pytest.approx(100.0, rel=1e-4)


def test_info_nce_hand_computed_asymmetric_case():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # logits [[1, 1], [0, 0]]: rows a->b each cost log 2; columns b->a cost log(e+1) - 1 and log(e+1)
    expected = 0.5 * (math.log(2) + math.log(math.e + 1) - 0.5)
    assert losses.info_nce(a, b, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_is_symmetric():
    a, b = F.normalize(torch.randn(7, 5), dim=1), F.normalize(torch.randn(7, 5), dim=1)
    ab, ba = losses.info_nce(a, b, 0.2), losses.info_nce(b, a, 0.2)
    assert ab.item() == pytest.approx(ba.item(), rel=1e-6)
    assert ab.item() != pytest.approx(F.cross_entropy(a @ b.t() / 0.2, torch.arange(7)).item(), rel=1e-3)


def test_soft_info_nce_identity_target_is_info_nce():
    a, b = F.normalize(torch.randn(6, 5), dim=1), F.normalize(torch.randn(6, 5), dim=1)
    assert losses.soft_info_nce(a, b, torch.eye(6), 0.3).item() == pytest.approx(
        losses.info_nce(a, b, 0.3).item(), rel=1e-6)


def test_soft_info_nce_hand_computed():
    e = torch.eye(2)
    target = torch.tensor([[0.75, 0.25], [0.25, 0.75]])
    # logits [[1, 0], [0, 1]]: each row costs -(0.75 (1 - L) + 0.25 (-L)) = L - 0.75, L = log(e + 1)
    expected = math.log(math.e + 1) - 0.75
    assert losses.soft_info_nce(e, e, target, 1.0).item() == pytest.approx(expected, rel=1e-6)
    uniform = torch.full((2, 2), 0.5)
    assert losses.soft_info_nce(e, e, uniform, 1.0).item() == pytest.approx(
        math.log(math.e + 1) - 0.5, rel=1e-6)


def test_affinity_targets_rows():
    sim = torch.tensor([[1.0, 0.9, 0.0], [0.9, 1.0, 0.1], [0.0, 0.1, 1.0]])
    assert torch.equal(losses.affinity_targets(sim, 0.0, 0.05), torch.eye(3))
    tgt = losses.affinity_targets(sim, 0.4, 0.05)
    assert torch.allclose(tgt.sum(1), torch.ones(3))
    assert torch.allclose(tgt.diagonal(), torch.full((3,), 0.6))
    assert tgt[0, 1] > tgt[0, 2] and tgt[2, 1] > tgt[2, 0]  # caption-similar images get the mass
    # known value: row 0 spreads 0.4 over the others by softmax([0.9, 0.0] / 0.05)
    w = 1 / (1 + math.exp(-0.9 / 0.05))
    assert tgt[0, 1].item() == pytest.approx(0.4 * w, rel=1e-5)
    assert (tgt >= 0).all()


# ---------------------------------------------------------------- cosine distance
def test_cosine_distance_known_values():
    a = torch.randn(4, 6)
    assert losses.cosine_distance(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.cosine_distance(a, 3 * a).item() == pytest.approx(0.0, abs=1e-6)  # scale-invariant
    assert losses.cosine_distance(a, -a).item() == pytest.approx(2.0, abs=1e-6)
    e = torch.eye(2)
    assert losses.cosine_distance(e, e.flip(0)).item() == pytest.approx(1.0, abs=1e-6)  # orthogonal
    mixed = losses.cosine_distance(torch.stack([e[0], e[0]]), torch.stack([e[0], -e[0]]))
    assert mixed.item() == pytest.approx(1.0, abs=1e-6)  # mean of 0 and 2


# ---------------------------------------------------------------- GAN losses
def t(*v):
    return torch.tensor(v, dtype=torch.float32)


def test_d_hinge_beyond_margins_is_zero():
    assert losses.d_hinge(t(1.0, 3.0), t(-1.0, -5.0), t(-2.0, -1.5)).item() == 0.0


def test_d_hinge_at_zero_logits_is_two():
    z = torch.zeros(5)
    for w in (0.0, 0.3, 0.5, 1.0):
        assert losses.d_hinge(z, z, z, mismatch_weight=w).item() == pytest.approx(2.0)


def test_d_hinge_mismatch_weight_blends_negatives():
    real, fake, mismatch = t(5.0, 0.5), t(0.0, 0.0), t(1.0, 1.0)  # real part: mean(0, 0.5) = 0.25
    for w, neg in ((0.0, 1.0), (0.5, 1.5), (1.0, 2.0), (0.25, 1.25)):
        got = losses.d_hinge(real, mismatch, fake, mismatch_weight=w).item()
        assert got == pytest.approx(0.25 + neg), w
    assert losses.d_hinge(real, mismatch, fake).item() == pytest.approx(1.75)  # default weight 0.5


def test_g_hinge_is_minus_mean():
    assert losses.g_hinge(t(1.0, -3.0, 5.0)).item() == pytest.approx(-1.0)


def test_r1_penalty_of_linear_critic_is_squared_weight_norm():
    w = torch.randn(3, 4, 4, requires_grad=True)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * w).flatten(1).sum(1)  # D(x) = <w, x> per sample: gradient w for every sample
    r1 = losses.r1_penalty(logits, x)
    assert r1.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    (gw,) = torch.autograd.grad(r1, w)  # create_graph: the penalty trains D (d/dw ||w||^2 = 2w)
    assert torch.allclose(gw, 2 * w.detach(), atol=1e-5)


def test_r1_penalty_quadratic_critic_averages_over_batch():
    x = torch.tensor([[1.0, 0.0], [0.0, 3.0]], requires_grad=True)
    logits = x.pow(2).sum(1)  # gradient 2x: norms^2 4 and 36 -> mean 20
    assert losses.r1_penalty(logits, x).item() == pytest.approx(20.0)


def test_kl_normal_known_values():
    z = torch.zeros(4, 6)
    assert losses.kl_normal(z, z).item() == 0.0
    mu = t(1.0, 2.0)[None]
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    expected = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (4 + 2 - 1 - math.log(2))  # summed over the two dims
    assert losses.kl_normal(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    both = losses.kl_normal(torch.cat([mu, torch.zeros(1, 2)]), torch.cat([logvar, torch.zeros(1, 2)]))
    assert both.item() == pytest.approx(expected / 2, rel=1e-6)  # averaged over the batch
    assert losses.kl_normal(torch.zeros(1, 3), torch.full((1, 3), -1.0)).item() == pytest.approx(
        1.5 * (math.exp(-1) - 1 + 1), rel=1e-6)


# ---------------------------------------------------------------- DiffAugment
POLICIES = ["color", "translation", "cutout", "color,translation,cutout", "translation, cutout"]


@pytest.mark.parametrize("policy", POLICIES)
def test_diffaug_shape_and_gradient(policy):
    x = (torch.rand(4, 3, 64, 64) * 2 - 1).requires_grad_(True)
    y = diff_augment(x, policy)
    assert y.shape == x.shape and y.is_contiguous()
    assert not torch.equal(y.detach(), x.detach())
    y.pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_diffaug_unknown_policy_raises():
    with pytest.raises(ValueError, match="unknown DiffAugment op.*'flip'"):
        diff_augment(torch.zeros(1, 3, 8, 8), "color,flip")
    with pytest.raises(ValueError, match="unknown"):
        parse_policy("Color")  # names are exact
    with pytest.raises(ValueError, match="unknown DiffAugment op.*'blur'"):  # removed with train.distill_aug
        diff_augment(torch.zeros(1, 3, 8, 8), "color,blur")


def test_diffaug_empty_policy_is_identity():
    assert parse_policy("") == [] and parse_policy(" , ,") == []
    assert parse_policy(" color , cutout ") == ["color", "cutout"]
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(diff_augment(x, ""), x)
    assert torch.equal(diff_augment(x, " , "), x)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    assert diff_augment(x_cl, "") is x_cl  # no copy, no layout change


def test_cutout_zeroes_one_square_and_keeps_the_rest():
    x = torch.rand(16, 3, 64, 64) + 0.5  # no zeros anywhere
    y = diff_augment(x, "cutout")
    zero = y == 0
    assert torch.equal(zero[:, :1].expand_as(zero), zero)  # same region in every channel
    assert torch.equal(y[~zero], x[~zero])  # everything else untouched
    for m in zero[:, 0]:
        rows, cols = m.any(1), m.any(0)
        assert torch.equal(m, rows[:, None] & cols[None, :])  # a rectangle
        # half-size (32 px) square centred anywhere, clipped at the border: 17..33 rows/cols
        assert 17 <= rows.sum() <= 33 and 17 <= cols.sum() <= 33
        nz = torch.nonzero(rows).squeeze(1)
        assert nz[-1] - nz[0] + 1 == rows.sum()  # contiguous


def test_translation_is_a_zero_filled_shift():
    n, h = 12, 32
    x = torch.arange(1, n * 3 * h * h + 1, dtype=torch.float32).view(n, 3, h, h)  # all values distinct, > 0
    y = diff_augment(x, "translation")
    assert set(y.unique().tolist()) <= set(x.unique().tolist()) | {0.0}
    s = int(h * 0.125 + 0.5)
    padded = F.pad(x, [s, s, s, s])
    shifts = []
    for i in range(n):
        match = [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)
                 if torch.equal(y[i], padded[i, :, s + dy:s + dy + h, s + dx:s + dx + h])]
        assert len(match) == 1, f"sample {i} is not a shift of at most {s} px"
        shifts.append(match[0])
    assert len(set(shifts)) > 1  # each sample draws its own shift
    assert (y == 0).any()  # some shift moved content out and zeros in
