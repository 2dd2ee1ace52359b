"""Same-data Gaussian anchors (issue 33): the dequantised bound against closed forms computed here, the diagonal
against the full covariance, the cache, and the shipped CIFAR-10 sample."""

import json
import math

import numpy as np
import pytest
import torch

from drawviz import anchors, data

LN2 = math.log(2)


def _quantised(n, cov, mean=128.0, seed=0):
    """n draws of N(mean, cov) on the 0..255 scale, rounded and clipped to 8 bits, as images k/255 (n, 1, 1, D)."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.full(len(cov), mean), cov, size=n)
    k = np.clip(np.round(z), 0, 255)
    return torch.from_numpy(k / 255).float().reshape(n, 1, 1, -1), k


COV = 400.0 * np.array(  # correlated, standard deviation 20 levels: clipping at 0 or 255 never happens
    [[1.0, 0.8, 0.5, 0.2], [0.8, 1.0, 0.6, 0.3], [0.5, 0.6, 1.0, 0.4], [0.2, 0.3, 0.4, 1.0]]
)


def test_the_full_covariance_anchor_is_the_closed_form():
    train, k_train = _quantised(20_000, COV, seed=0)
    test, k_test = _quantised(5_000, COV, seed=1)
    D = len(COV)
    # the fit, independently: moments of the plain 8-bit values; dequantisation adds 1/2 to the mean and I/12
    mu = k_train.mean(0) + 0.5
    sigma = np.cov(k_train, rowvar=False, bias=True) + np.eye(D) / 12
    # on its own training images, the moment-matched Gaussian's expected NLL is its entropy: ½ log det(2πe Σ)
    entropy = 0.5 * np.linalg.slogdet(2 * math.pi * math.e * sigma)[1] / (D * LN2)
    assert anchors.gaussian_bits_per_dim(train, train, shrinkage=None) == pytest.approx(entropy, abs=1e-9)
    # on test images: E_u[−log p(k + u)] = −log p(k + ½) + tr(Σ⁻¹)/24, with torch's own Gaussian density
    mvn = torch.distributions.MultivariateNormal(torch.from_numpy(mu), torch.from_numpy(sigma))
    nll = -mvn.log_prob(torch.from_numpy(k_test + 0.5)).mean().item() + np.trace(np.linalg.inv(sigma)) / 24
    exact = anchors.gaussian_bits_per_dim(train, test, shrinkage=None)
    assert exact == pytest.approx(nll / (D * LN2), abs=1e-9)
    # the closed form over u agrees with dequantising by seeded draws of u
    sampled = anchors.gaussian_bits_per_dim(train, test, shrinkage=None, samples=20, seed=3)
    assert sampled == pytest.approx(exact, abs=2e-3) and sampled != exact
    # and with the generating Gaussian's differential entropy (rounding adds only ~1/12 to variances of 400)
    truth = 0.5 * np.linalg.slogdet(2 * math.pi * math.e * COV)[1] / (D * LN2)
    assert exact == pytest.approx(truth, abs=0.01)


def test_diagonal_is_worse_on_correlated_data_and_equal_on_independent_data():
    train, k_train = _quantised(20_000, COV, seed=0)
    test, _ = _quantised(5_000, COV, seed=1)
    full = anchors.gaussian_bits_per_dim(train, test)
    diagonal = anchors.gaussian_bits_per_dim(train, test, diagonal=True)
    # on its own training images the diagonal Gaussian's expected NLL is its entropy too: Σᵢ ½ log(2πe (Sᵢᵢ + 1/12))
    var = np.var(k_train, axis=0) + 1 / 12
    entropy = 0.5 * np.log(2 * math.pi * math.e * var).sum() / (len(var) * LN2)
    assert anchors.gaussian_bits_per_dim(train, train, diagonal=True) == pytest.approx(entropy, abs=1e-9)
    # the diagonal Gaussian on correlated data pays ½ log(det diag Σ / det Σ) nats per image
    gap = 0.5 * (np.log(np.diag(COV)).sum() - np.linalg.slogdet(COV)[1]) / (len(COV) * LN2)
    assert diagonal - full == pytest.approx(gap, rel=0.05) and gap > 0.2
    independent = np.diag([400.0, 100.0, 900.0, 250.0])
    train, _ = _quantised(20_000, independent, seed=2)
    test, _ = _quantised(5_000, independent, seed=3)
    full = anchors.gaussian_bits_per_dim(train, test)
    diagonal = anchors.gaussian_bits_per_dim(train, test, diagonal=True)
    assert full == pytest.approx(diagonal, abs=2e-3)


def test_ledoit_wolf_intensity_from_its_definition():
    rng = np.random.default_rng(0)
    k = np.round(rng.uniform(0, 255, size=(30, 6)) * 0.5 + rng.uniform(0, 127, size=(30, 1)))
    fit = anchors.fit_gaussian(torch.from_numpy(k / 255), shrinkage="ledoit-wolf")
    c = k - k.mean(0)
    S = c.T @ c / len(k)
    m = np.trace(S) / 6
    d2 = np.sum((S - m * np.eye(6)) ** 2) / 6
    b2 = sum(np.sum((np.outer(x, x) - S) ** 2) for x in c) / len(k) ** 2 / 6
    assert fit.shrinkage == pytest.approx(min(b2, d2) / d2, rel=1e-9) and 0 < fit.shrinkage < 1
    np.testing.assert_allclose(fit.full().numpy(), (1 - fit.shrinkage) * S + (fit.shrinkage * m + 1 / 12) * np.eye(6), rtol=1e-12)


def _held_out_cost(k_fit, k_held, delta):
    """−mean E_u log p(k + u) of held-out images under the fit to the others, with Σ shrunk by δ (numpy, Cholesky-free)."""
    S = np.cov(k_fit, rowvar=False, bias=True)
    D = len(S)
    sigma = (1 - delta) * S + (delta * np.trace(S) / D + 1 / 12) * np.eye(D)
    r = k_held - k_fit.mean(0)
    inv = np.linalg.inv(sigma)
    quad = np.einsum("ni,ij,nj->n", r, inv, r).mean() + np.trace(inv) / 12
    return 0.5 * (np.linalg.slogdet(sigma)[1] + quad)


def test_the_held_out_shrinkage_is_the_best_on_the_grid_for_the_held_out_images():
    # fewer images than dimensions: the covariance is singular and needs shrinking. Variances of a few levels², so
    # that the dequantisation noise (1/12) weighs in the choice too
    rng = np.random.default_rng(0)
    D, n = 12, 20
    loadings = rng.normal(size=(D, 3))
    k = np.clip(np.round(128 + rng.normal(size=(n, 3)) @ loadings.T + rng.normal(size=(n, D)) * 0.3), 0, 255)
    fit = anchors.fit_gaussian(torch.from_numpy(k / 255), seed=4)
    held = np.zeros(n, bool)  # the seeded 10% held out
    held[torch.randperm(n, generator=torch.Generator().manual_seed(4))[:2].numpy()] = True
    costs = [_held_out_cost(k[~held], k[held], d) for d in anchors.DELTAS]
    assert fit.shrinkage == anchors.DELTAS[int(np.argmin(costs))] and 0 < fit.shrinkage < 1
    # many images per dimension: (almost) nothing to shrink
    many, _ = _quantised(20_000, COV)
    assert anchors.fit_gaussian(many).shrinkage < 1e-4
    with pytest.raises(ValueError, match="shrinkage"):
        anchors.fit_gaussian(many, shrinkage="lots")


def test_images_that_are_not_8_bit_are_refused():
    smooth = torch.rand(50, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(anchors.NotEightBitError, match="8-bit"):
        anchors.gaussian_bits_per_dim(smooth, smooth)
    with pytest.raises(anchors.NotEightBitError, match="8-bit"):
        anchors.levels(torch.full((2, 3), 2.0))  # k/255 beyond 255


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The CIFAR-10 sample's anchors, computed once into a fresh cache: (anchors, cache folder)."""
    cache = tmp_path_factory.mktemp("cache")
    return anchors.anchors("cifar10-sample", cache_dir=cache, shipped=False), cache


@pytest.mark.slow
def test_a_second_call_reads_the_cache_and_a_damaged_cache_is_recomputed(sample, monkeypatch):
    first, cache = sample
    (path,) = cache.glob(f"anchors-cifar10-sample-*-v{anchors.VERSION}.json")
    assert first["train_images"] == 800 and first["test_images"] == 200 and first["dimensions"] == 3072

    def refuse(*args, **kwargs):
        raise AssertionError("fitted again")

    monkeypatch.setattr(anchors, "fit_gaussian", refuse)
    assert anchors.anchors("cifar10-sample", cache_dir=cache, shipped=False) == first

    calls, real_fit = [], anchors.fit_gaussian.__wrapped__ if hasattr(anchors.fit_gaussian, "__wrapped__") else None
    monkeypatch.undo()
    real_fit = anchors.fit_gaussian

    def counted(*args, **kwargs):  # the same fit, its shrinkage given rather than chosen again (the slow part)
        calls.append(1)
        return real_fit(*args, **{**kwargs, "shrinkage": first["shrinkage"]})

    monkeypatch.setattr(anchors, "fit_gaussian", counted)
    for damage in ("{not json", json.dumps({**first, "full_covariance": None}), json.dumps({**first, "digest": "0" * 32})):
        path.write_text(damage)
        again = anchors.anchors("cifar10-sample", cache_dir=cache, shipped=False)
        assert again["full_covariance"] == first["full_covariance"] and json.loads(path.read_text()) == again
    assert len(calls) == 3


def test_the_cache_key_names_dataset_sources_and_version(tmp_path):
    a = anchors.cache_path("cifar10", "x", "y", tmp_path)
    assert a.parent == tmp_path and a.name.startswith("anchors-cifar10-") and a.name.endswith(f"-v{anchors.VERSION}.json")
    assert len({a, anchors.cache_path("cifar10", "x2", "y", tmp_path), anchors.cache_path("svhn", "x", "y", tmp_path)}) == 3


@pytest.mark.slow
def test_the_shipped_cifar10_sample(sample):
    a, _ = sample
    train, test = data.load("cifar10-sample", "train"), data.load("cifar10-sample", "test")
    fit = anchors.fit_gaussian(train.images)
    full = anchors.bits_per_dim(fit, test.images)
    diagonal = anchors.bits_per_dim(fit, test.images, diagonal=True)
    assert math.isfinite(full) and math.isfinite(diagonal) and 1 < full < diagonal < 12
    assert 0 < fit.shrinkage < 0.1  # 800 images, 3072 dimensions: shrinkage is needed, and small
    unshrunk = anchors.bits_per_dim(anchors.GaussianFit(fit.mean, fit.covariance, 0.0, fit.n), test.images)
    assert unshrunk > diagonal  # why: unseen directions keep a variance of 1/12 level²
    assert (a["full_covariance"], a["diagonal"], a["shrinkage"]) == (full, diagonal, fit.shrinkage)
    assert "<data root>" not in a["source"] and "cifar10_sample.npz" in a["source"]
    t = anchors.table(a, DRAW=5.0)
    assert set(t["name"]) == {"DRAW", "full-covariance Gaussian", "diagonal Gaussian"}
    assert t["bits_per_dim"].is_monotonic_increasing and set(t["kind"]) == {"model", "anchor (dequantised bound)"}
    s = anchors.sentence(5.0, a)
    assert s.startswith("DRAW 5.00 bits/dim beside a full-covariance Gaussian") and "200 test images" in s


@pytest.mark.slow
def test_the_anchors_shipped_for_the_samples_are_a_fresh_fit_of_the_same_images(sample, tmp_path, monkeypatch):
    fresh, _ = sample
    shipped = json.loads(anchors.SHIPPED.read_text())
    assert set(shipped) == {"cifar10-sample", "fashion-mnist-sample"}
    ship, numbers = shipped["cifar10-sample"], ("full_covariance", "diagonal")
    # the same fit: equal up to the last bits, which the number of threads a matrix product runs on may change
    assert {k: v for k, v in ship.items() if k not in ("seconds", *numbers)} == {
        k: v for k, v in fresh.items() if k not in ("seconds", *numbers)
    }
    assert [ship[k] for k in numbers] == pytest.approx([fresh[k] for k in numbers], rel=1e-9)

    def refuse(*args, **kwargs):
        raise AssertionError("fitted again")

    monkeypatch.setattr(anchors, "fit_gaussian", refuse)  # read from the package, not fitted, in an empty cache
    assert anchors.anchors("cifar10-sample", cache_dir=tmp_path) == shipped["cifar10-sample"]
    assert not list(tmp_path.iterdir())
    damaged = tmp_path / "shipped.json"  # of other images (digest): not used
    damaged.write_text(json.dumps({"cifar10-sample": {**shipped["cifar10-sample"], "digest": "0" * 32}}))
    monkeypatch.setattr(anchors, "SHIPPED", damaged)
    with pytest.raises(AssertionError, match="fitted again"):
        anchors.anchors("cifar10-sample", cache_dir=tmp_path)
    # not finite, or not anchors at all: not used either (the same check as the cache's)
    for bad in ({**shipped["cifar10-sample"], "full_covariance": float("nan")}, ["not", "a", "dict"]):
        damaged.write_text(json.dumps({"cifar10-sample": bad}))
        with pytest.raises(AssertionError, match="fitted again"):
            anchors.anchors("cifar10-sample", cache_dir=tmp_path)
    damaged.write_text("[1, 2]")
    with pytest.raises(AssertionError, match="fitted again"):
        anchors.anchors("cifar10-sample", cache_dir=tmp_path)
