"""Analytic tests for metrics/ (each checks a closed-form or limiting value, so each can fail)."""
import numpy as np
import pytest
import torch

from metrics import (
    class_consistency, color_histogram_features, encoder_report, fid, fid_kid_from_images, kid,
    kmeans_nmi, knn_accuracy, linear_probe_accuracy, ms_ssim_diversity, r_precision,
    random_cnn_features, real_floor, silhouette,
)


def clusters(n_classes=5, per_class=30, dim=16, spread=0.05, seed=0):
    """Well-separated clusters: class c around a random unit centre, tiny isotropic noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 10
    y = np.repeat(np.arange(n_classes), per_class)
    return centres[y] + spread * rng.normal(size=(len(y), dim)), y


# ---------------------------------------------------------------- generation: FID / KID
def test_fid_gaussians_equal_cov_is_squared_mean_distance():
    rng = np.random.default_rng(0)
    d, n = 8, 20000
    shift = np.zeros(d)
    shift[:3] = [1.0, -2.0, 0.5]                                   # ||shift||^2 = 5.25
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    a, b = a - a.mean(0), b - b.mean(0) + shift                    # exact sample means
    assert fid(a, b) == pytest.approx(5.25, abs=0.02)              # covariance term ~ d^2 / n


def test_fid_gaussians_scaled_cov_closed_form():
    # N(0, I) vs N(0, 4I): Tr(I + 4I - 2 * 2I) = d.
    rng = np.random.default_rng(1)
    d, n = 8, 20000
    assert fid(rng.normal(size=(n, d)), 2 * rng.normal(size=(n, d))) == pytest.approx(d, abs=0.25)


def test_fid_self_is_zero_and_accepts_torch():
    x = torch.randn(500, 10)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_too_few_samples():
    with pytest.raises(ValueError, match=">= 2 samples"):
        fid(np.zeros((1, 4)), np.ones((10, 4)))


def test_kid_same_distribution_near_zero_and_grows_with_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    same, _ = kid(a, b, subset_size=200, subsets=20)
    assert abs(same) < 0.01
    vals = [kid(a, b + s, subset_size=200, subsets=20)[0] for s in (0.25, 0.5, 1.0, 2.0)]
    assert vals[0] > 0.01 and all(x < y for x, y in zip(vals, vals[1:]))


def test_kid_deterministic_and_shrinks_subset_with_warning():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(40, 4))
    with pytest.warns(UserWarning, match="subset_size"):
        m1, s1 = kid(a, b, subset_size=100, subsets=5, seed=3)
    assert kid(a, b, subset_size=40, subsets=5, seed=3) == (m1, s1)


def test_real_floor_and_from_images():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 6))
    floor = real_floor(x, kid_subset_size=100, kid_subsets=10)
    shifted = kid(x[:200], x[200:] + 0.5, subset_size=100, subsets=10)[0]
    assert floor["n_per_half"] == 200 and floor["fid"] < 0.3 and abs(floor["kid_mean"]) < 0.1 < shifted
    imgs = torch.rand(64, 3, 8, 8)
    out = fid_kid_from_images(imgs, imgs, lambda t: t.mean(dim=(2, 3)), batch_size=16, kid_subset_size=32)
    assert out["fid"] == pytest.approx(0.0, abs=1e-6) and out["n_real"] == out["n_fake"] == 64


# ---------------------------------------------------------------- encoder
def test_knn_linear_perfect_on_separated_clusters():
    x, y = clusters()
    assert knn_accuracy(x, y) == 1.0
    assert linear_probe_accuracy(x, y) == 1.0
    assert silhouette(x, y) > 0.95
    assert kmeans_nmi(x, y) == pytest.approx(1.0)


def test_knn_linear_chance_on_shuffled_labels():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(600, 16))
    y = rng.permutation(np.repeat(np.arange(4), 150))
    assert abs(knn_accuracy(x, y) - 0.25) < 0.07
    assert abs(linear_probe_accuracy(x, y) - 0.25) < 0.07
    assert abs(silhouette(x, y)) < 0.05


def test_knn_reduces_folds_and_rejects_singletons():
    x, y = clusters(n_classes=3, per_class=4)
    assert knn_accuracy(x, y, k=3, folds=5) == 1.0                # folds -> 4 automatically
    with pytest.raises(ValueError, match="2 samples"):
        knn_accuracy(x[:9], y[:9])                                  # class 2 has one sample


def test_encoder_report_structure_and_unavailable_group():
    x, y = clusters(n_classes=4, per_class=12)
    is_test = y == 3                                                # held-out group has 1 class
    rep = encoder_report(x, y, is_test)
    assert set(rep) == {"all", "train", "test"}
    for key in ("knn_acc", "linear_acc", "silhouette", "nmi", "n", "n_classes"):
        assert key in rep["all"] and key in rep["train"] and key in rep["test"]
    assert rep["all"]["knn_acc"] == 1.0 and rep["train"]["n_classes"] == 3 and rep["all"]["n"] == 48
    assert "unavailable" not in rep["train"]
    t = rep["test"]
    assert t["n"] == 12 and t["n_classes"] == 1 and "class" in t["unavailable"]
    assert t["knn_acc"] is None and t["linear_acc"] is None and t["silhouette"] is None and t["nmi"] is None


# ---------------------------------------------------------------- alignment
def test_r_precision_perfect_and_random():
    rng = np.random.default_rng(5)
    e = rng.normal(size=(300, 32))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    assert r_precision(e, e, candidates=100) == 1.0
    txt = rng.normal(size=(2000, 32))
    img = rng.normal(size=(2000, 32))
    assert abs(r_precision(img, txt, candidates=10) - 0.1) < 0.03
    with pytest.raises(ValueError, match="candidates"):
        r_precision(e[:50], e[:50], candidates=100)


def test_class_consistency():
    x, y = clusters(n_classes=5, per_class=20)
    assert class_consistency(x, y, x, y, k=10) == 1.0
    assert class_consistency(x, (y + 1) % 5, x, y, k=10) == 0.0


# ---------------------------------------------------------------- diversity
def test_ms_ssim_diversity_identical_vs_noise():
    torch.manual_seed(0)
    one = torch.rand(3, 1, 3, 64, 64) * 2 - 1
    assert ms_ssim_diversity(one.expand(3, 4, 3, 64, 64)) == pytest.approx(1.0, abs=1e-9)
    # low contrast (a barely trained generator's flat images): float32 sums gave ~0.9999 here, float64 gives 1
    flat = 0.6 + 1e-3 * one
    assert ms_ssim_diversity(flat.expand(3, 4, 3, 64, 64)) == pytest.approx(1.0, abs=1e-9)
    noise = torch.rand(3, 4, 3, 64, 64) * 2 - 1
    assert ms_ssim_diversity(noise) < 0.2
    with pytest.raises(ValueError, match="S=1"):
        ms_ssim_diversity(one)


def test_ms_ssim_matches_torchmetrics():
    """The matrix-product Gaussian gives torchmetrics' MS-SSIM (grouped convolution) on related, unrelated
    and smooth image pairs."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm_ms_ssim
    from metrics import MS_SSIM_BETAS_3
    from metrics.diversity import ms_ssim
    g = torch.Generator().manual_seed(3)
    a = torch.rand(6, 3, 64, 64, generator=g, dtype=torch.float64)
    near = (a + 0.3 * torch.rand(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    smooth = torch.nn.functional.interpolate(torch.rand(6, 3, 16, 16, generator=g, dtype=torch.float64),
                                             size=64, mode="bilinear")
    for x, y in ((a, near), (a, smooth), (smooth, smooth.flip(0))):
        ref = tm_ms_ssim(x, y, kernel_size=11, sigma=1.5, betas=MS_SSIM_BETAS_3, data_range=1.0, reduction="none")
        torch.testing.assert_close(ms_ssim(x, y), ref, rtol=0, atol=1e-7)   # betas as float32 in torchmetrics
    assert torch.equal(ms_ssim(a, a), torch.ones(6, dtype=torch.float64))
    with pytest.raises(ValueError, match="too small"):  # as torchmetrics: the 16-px scale must hold the kernel
        ms_ssim(a[..., :40, :40], near[..., :40, :40])


# ---------------------------------------------------------------- baselines
def test_color_histogram_normalisation_and_pure_red():
    rng = np.random.default_rng(6)
    imgs = rng.integers(0, 256, size=(5, 16, 16, 3), dtype=np.uint8)
    h = color_histogram_features(imgs, bins=4, sqrt=False)
    assert h.shape == (5, 64) and h.dtype == np.float32
    np.testing.assert_allclose(h.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose((color_histogram_features(imgs, bins=4) ** 2).sum(1), 1.0, atol=1e-5)
    red = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    red[..., 0] = 255
    r = color_histogram_features(red, bins=8, sqrt=False)[0]
    assert r[7 * 64] == 1.0 and np.count_nonzero(r) == 1           # bin (r=7, g=0, b=0)


def test_random_cnn_deterministic_shape_and_rng_untouched():
    rng = np.random.default_rng(7)
    imgs = rng.integers(0, 256, size=(6, 80, 96, 3), dtype=np.uint8)
    state = torch.get_rng_state()
    f1 = random_cnn_features(imgs, seed=0, width=8, batch_size=4)
    assert torch.equal(state, torch.get_rng_state())
    assert f1.shape == (6, 64) and f1.dtype == np.float32 and np.isfinite(f1).all()
    np.testing.assert_array_equal(f1, random_cnn_features(imgs, seed=0, width=8))
    assert not np.allclose(f1, random_cnn_features(imgs, seed=1, width=8))


def test_ms_ssim_constant_images_closed_form():
    # Constant images: every contrast-structure term is 1, so MS-SSIM = l ** beta_3 with
    # luminance l = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1), C1 = 0.01^2 (data range 1 after mapping).
    from metrics import MS_SSIM_BETAS_3
    m1, m2 = 0.1, 0.9                                               # -0.8, 0.8 in [-1, 1]
    x = torch.stack([torch.full((3, 64, 64), -0.8), torch.full((3, 64, 64), 0.8)])[None]
    lum = (2 * m1 * m2 + 1e-4) / (m1 ** 2 + m2 ** 2 + 1e-4)
    expected = lum ** MS_SSIM_BETAS_3[2]
    assert ms_ssim_diversity(x) == pytest.approx(expected, abs=1e-4)
    assert ms_ssim_diversity((x + 1) / 2, value_range=(0.0, 1.0)) == pytest.approx(expected, abs=1e-4)


# ---------------------------------------------------------------- spectra (metrics/spectrum.py)
def test_power_by_period_finds_a_periodic_pattern():
    from metrics.spectrum import horizontal_power, power_by_period
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(8, 3, 32, 64, generator=g)
    cols = torch.arange(64.0)
    pattern = noise + 3 * torch.cos(2 * torch.pi * cols / 4)  # a 4-px period along the width
    flat, peaked = power_by_period(noise), power_by_period(pattern)
    assert all(0.5 < v < 2 for pair in flat.values() for v in pair)  # white noise: no peak anywhere
    assert peaked[4][0] > 20 and peaked[4][1] > 20
    assert all(0.5 < peaked[p][1] < 2 for p in (16, 8, 2))
    assert horizontal_power(pattern).shape == (33,)
    scaled = power_by_period(2 * pattern)  # relative measures: scale-free
    assert [v for p in scaled for v in scaled[p]] == pytest.approx([v for p in peaked for v in peaked[p]])
    with pytest.raises(ValueError, match="periods \\[3\\]"):
        power_by_period(noise, periods=(3,))


def test_grid_steps_see_a_gradient_that_smooths_or_sharpens_the_cells():
    import torch.nn.functional as F
    from metrics.spectrum import grid_steps
    g = torch.Generator().manual_seed(0)
    cells = F.interpolate(torch.rand(8, 3, 16, 16, generator=g), scale_factor=2.0, mode="nearest")  # 2-px cells
    fake = torch.rand(8, 3, 32, 32, generator=g) + 0.5 * cells  # noise (no grid) plus some blocky pattern
    out = grid_steps(fake, {"towards smooth": cells, "towards cells": -cells}, step=0.2)  # steps go down a gradient
    assert list(out) == ["towards smooth", "towards cells", "white noise (control)", "smoothed noise (control)"]
    assert out["towards smooth"] < out["white noise (control)"] < 0 < out["towards cells"]


# ---------------------------------------------------------------- the upsampling grid (metrics/grid.py)
def test_grid_contrast_finds_nearest_upsampling_cells_and_not_photos(mini_cache):
    import h5py
    import torch.nn.functional as F
    from metrics.grid import grid_contrast, grid_contrasts
    g = torch.Generator().manual_seed(0)
    low = torch.rand(16, 3, 16, 16, generator=g)
    blocky = F.interpolate(low, scale_factor=4.0, mode="nearest") + 0.01 * torch.rand(16, 3, 64, 64, generator=g)
    c = grid_contrasts(blocky)
    assert set(c) == {"2", "4", "8"} and c["4"] > 10 and c["2"] > 2  # 4-px cells: edges only on the 4-px lines
    assert 1 < c["8"] < c["4"]  # the 8-px lines have those edges, but so do the 4-px lines counted as off-grid
    assert grid_contrast(torch.roll(blocky, (2, 2), dims=(2, 3)), 4) < 0.1  # shifted off the grid: below 1
    assert 0.9 < grid_contrast(torch.rand(16, 3, 64, 64, generator=g), 2) < 1.1  # white noise: no grid
    assert grid_contrast(255 * blocky, 4) == pytest.approx(c["4"])  # scale-free
    with h5py.File(mini_cache, "r") as f:  # real photos (centre 64 px of the cache's 72): no grid
        photos = torch.from_numpy(f["images"][:, 4:68, 4:68]).permute(0, 3, 1, 2)
    assert all(0.9 < v < 1.1 for v in grid_contrasts(photos).values())
    with pytest.raises(ValueError, match="period must be >= 2"):
        grid_contrast(blocky, 1)
    with pytest.raises(ValueError, match="smaller than two 8-px cells"):
        grid_contrast(blocky[..., :12, :12], 8)
    with pytest.raises(ValueError, match="no neighbouring-pixel differences"):
        grid_contrast(F.interpolate(low, scale_factor=4.0, mode="nearest"), 4)
    with pytest.raises(ValueError, match="shape \\(N, C, H, W\\)"):
        grid_contrast(blocky[0], 2)


# ---------------------------------------------------------------- caption colour (metrics/colour.py)
GREEN, DISC = (40, 140, 40), {"red": (220, 30, 30), "pink": (240, 130, 180), "purple": (140, 60, 200),
                               "blue": (40, 80, 220), "yellow": (240, 220, 30), "orange": (240, 140, 20),
                               "white": (245, 245, 245)}


def disc_image(rgb, radius=20, background=GREEN, size=64, centre=None) -> np.ndarray:
    """uint8 (3, size, size): a disc of colour `rgb` on a plain background (a centred flower on leaves)."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx = centre or ((size - 1) / 2, (size - 1) / 2)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = background
    img[np.hypot(yy - cy, xx - cx) < radius] = rgb
    return img.transpose(2, 0, 1)


def test_caption_colour_names_one_colour_or_none():
    from metrics.colour import caption_colour
    assert caption_colour("this flower has bright red petals") == "red"
    assert caption_colour("The petals are DARK Purple, with a green stem.") == "purple"
    assert caption_colour("light violet petals and violet sepals") == "purple"  # synonym, one colour twice
    assert caption_colour("a magenta flower") == "pink"
    assert caption_colour("pink and white petals") is None  # several colours
    assert caption_colour("no colour words here") is None
    assert caption_colour("a flower with green leaves") is None  # green is not a flower colour
    assert caption_colour("reddened bluebell") is None  # whole words only


def test_dominant_colour_of_discs_on_leaves():
    from metrics.colour import COLOURS, dominant_colour
    discs = np.stack([disc_image(DISC[c]) for c in COLOURS])
    assert dominant_colour(discs) == list(COLOURS)
    assert dominant_colour(torch.from_numpy(discs)) == list(COLOURS)  # tensors too
    odd = np.stack([disc_image(GREEN), disc_image(DISC["red"], radius=10), disc_image((10, 10, 10)),
                    disc_image((128, 128, 128)), disc_image(DISC["red"], radius=8, centre=(4, 4)),
                    disc_image(DISC["red"], background=DISC["yellow"], radius=30)])
    # leaves only / a small red flower / dark / grey / a red flower off-centre / red filling most of the centre
    assert dominant_colour(odd) == [None, "red", None, None, None, "red"]
    pink, centre = disc_image(DISC["pink"]), disc_image(DISC["yellow"], radius=8)
    stamens = np.where((centre == np.array(DISC["yellow"])[:, None, None]).all(0), centre, pink)
    assert dominant_colour(stamens[None]) == ["pink"]  # a pink flower with a yellow centre is pink
    with pytest.raises(ValueError, match="shape \\(N, 3, H, W\\)"):
        dominant_colour(discs.transpose(0, 2, 3, 1))  # NHWC is refused, not misread


def test_colour_agreement_counts_only_single_colour_captions():
    from metrics.colour import colour_agreement
    caps = ["bright red petals", "yellow petals", "pink and white petals", "a white flower", "purple flower"]
    imgs = np.stack([disc_image(DISC["red"]), disc_image(DISC["blue"]), disc_image(DISC["red"]),
                     disc_image(DISC["white"]), disc_image(DISC["purple"])])
    r = colour_agreement(caps, imgs)
    assert r["n"] == 4 and r["value"] == pytest.approx(3 / 4)  # the pink-and-white caption is left out
    assert r["per_colour"] == {"red": {"n": 1, "agreed": 1}, "yellow": {"n": 1, "agreed": 0},
                               "white": {"n": 1, "agreed": 1}, "purple": {"n": 1, "agreed": 1}}
    assert colour_agreement(caps, torch.from_numpy(imgs)) == r
    with pytest.raises(ValueError, match="no caption names exactly one colour"):
        colour_agreement(["no colour words here", "pink and white"], imgs[:2])
    with pytest.raises(ValueError, match="2 captions for 5 images"):
        colour_agreement(caps[:2], imgs)


def test_caption_colour_family_scores_samples_and_their_own_photos():
    from types import SimpleNamespace
    from evaluation.context import Samples
    from evaluation.families import caption_colour
    photos = torch.from_numpy(np.stack([disc_image(DISC[c], size=72, radius=22) for c in ("red", "blue", "white")]))
    caps = np.repeat(["a red flower", "blue petals", "pink and white"], 2)  # 2 samples per caption
    fake = torch.from_numpy(np.stack([disc_image(DISC[c]) for c in ("red", "yellow", "blue", "blue", "red", "red")]))
    ctx = SimpleNamespace(samples=Samples(fake, np.zeros(6), None, None, [0, 1, 2], caps),
                          cfg=SimpleNamespace(eval=SimpleNamespace(samples_per_caption=2)),
                          real_test_images=lambda size=64: photos[..., 4:68, 4:68])
    out = caption_colour(ctx)["caption_colour"]
    assert out["value"] == pytest.approx(3 / 4) and out["real_reference"] == 1.0 and out["n"] == 4
    assert out["chance"] == pytest.approx(1 / 7)
    assert out["per_colour"] == {"red": {"n": 2, "agreed": 1, "agreed_real": 2},
                                 "blue": {"n": 2, "agreed": 2, "agreed_real": 2}}
    ctx.samples.captions = np.repeat(["no colour", "pink and white", "none"], 2)
    assert "unavailable" in caption_colour(ctx)["caption_colour"]
