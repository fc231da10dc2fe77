"""The representation's PCA whitening (models/whitening.py) and how the encoders carry it."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from metrics.encoder import knn_accuracy
from models.encoder import SourceEncoder
from models.text_encoder import TextEncoder
from models.whitening import Whitening


def _anisotropic(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, -2, d, dtype=torch.float64)  # variances spread over 4 orders of magnitude
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64) * scales @ basis + 0.5, dim=1)


def test_identity_until_fitted():
    w, z = Whitening(8), _anisotropic(50, 8).float()
    assert w(z) is z and not bool(w.fitted)


def test_fit_gives_identity_covariance_and_unit_norm():
    z = _anisotropic(4000, 8)
    w = Whitening(8).double()
    w.fit(z, eps=1e-12)
    white = (z - w.mean) @ w.proj
    torch.testing.assert_close(torch.cov(white.t()), torch.eye(8, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(white.mean(0), torch.zeros(8, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(w(z).norm(dim=1), torch.ones(4000, dtype=torch.float64))


def test_eps_floor_bounds_the_gain_of_low_variance_directions():
    z = _anisotropic(2000, 8)
    lam_max = torch.linalg.eigvalsh(torch.cov(z.t())).max()
    for eps in (1e-2, 1.0):
        w = Whitening(8).double()
        w.fit(z, eps)
        gains = torch.linalg.svdvals(w.proj)
        assert gains.max() <= 1 / (eps * lam_max).sqrt() + 1e-9
    assert gains.max() / gains.min() < 1.5  # eps = 1: close to plain centring, hardly any re-weighting


def test_whitening_lets_a_low_variance_direction_decide_cosine_knn():
    """Two classes that differ only along a direction of small variance, beside a large nuisance one:
    cosine kNN barely beats chance on the raw vectors and separates them once whitened."""
    g = torch.Generator().manual_seed(1)
    n = 400
    labels = torch.arange(n) % 2
    x = torch.randn(n, 4, generator=g, dtype=torch.float64) * torch.tensor([3.0, 3.0, 0.05, 0.05],
                                                                           dtype=torch.float64)
    x[:, 2] += 0.12 * (2 * labels - 1)  # the class signal, small against the nuisance
    z = F.normalize(x + torch.tensor([0.0, 0.0, 0.0, 4.0], dtype=torch.float64), dim=1)
    w = Whitening(4).double()
    w.fit(z, eps=1e-6)
    raw, white = knn_accuracy(z.numpy(), labels.numpy()), knn_accuracy(w(z).numpy(), labels.numpy())
    assert raw < 0.7 and white > 0.9


def test_state_dict_round_trip_and_older_state_dicts_load_as_identity():
    z = _anisotropic(300, 8).float()
    enc = SourceEncoder(width=8, embed_dim=8).eval()
    old = {k: v for k, v in enc.state_dict().items() if not k.startswith("whiten.")}  # saved before whitening
    enc.whiten.fit(z, 0.01)
    again = SourceEncoder(width=8, embed_dim=8).eval()
    again.load_state_dict(enc.state_dict())  # strict
    img = torch.rand(4, 3, 64, 64) * 2 - 1
    assert bool(again.whiten.fitted) and torch.equal(again(img), enc(img))
    assert not torch.allclose(enc(img), enc.represent(img))
    legacy = SourceEncoder(width=8, embed_dim=8).eval()
    legacy.load_state_dict(old)  # strict: the missing whitening keys mean "not fitted"
    assert not bool(legacy.whiten.fitted) and torch.equal(legacy(img), legacy.represent(img))
    assert torch.equal(legacy(img), enc.represent(img))


def test_text_prior_goes_through_its_whitening():
    text = TextEncoder(vocab_size=20, width=8, text_dim=8, embed_dim=8).eval()
    enc = text(torch.tensor([[3, 4, 5]]), torch.tensor([3]))
    before = text.predict_representation(enc)
    text.whiten.fit(_anisotropic(300, 8).float(), 0.01)
    after = text.predict_representation(enc)
    torch.testing.assert_close(after, text.whiten(before))
    assert not torch.allclose(after, before)


@pytest.mark.parametrize("z,eps,match", [(torch.zeros(1, 8), 0.01, r"\(M >= 2, 8\)"),
                                         (torch.zeros(10, 4), 0.01, r"got \(10, 4\)"),
                                         (torch.randn(10, 8), 0.0, "eps must be > 0")])
def test_fit_rejects_what_it_cannot_use(z, eps, match):
    w = Whitening(8)
    with pytest.raises(ValueError, match=match):
        w.fit(z, eps)
    assert not bool(w.fitted) and torch.equal(w.proj, torch.eye(8)) and not w.mean.any()  # left as it was
