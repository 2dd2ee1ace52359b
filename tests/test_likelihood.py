"""D(x | c_T): the Bernoulli of the paper and the discretised logistic on 8-bit values."""

import math

import pytest
import torch

from drawviz import likelihood
from drawviz.model import DRAW, DrawConfig, bits_per_dim
from drawviz.evaluation import evaluate


def test_the_probabilities_of_the_256_values_sum_to_1():
    canvas = torch.randn(2, 3, 5, 5) * 4  # means from near 0 to near 1
    for log_scale in (math.log(1e-4), math.log(0.02), math.log(0.5), math.log(5.0)):
        p = likelihood.logistic_probs(canvas, torch.full((3, 5, 5), log_scale))
        assert p.shape == (2, 3, 5, 5, 256) and (p >= 0).all()
        assert torch.allclose(p.sum(-1), torch.ones(2, 3, 5, 5), atol=1e-5)


def test_the_logistic_nll_is_minus_the_log_of_the_value_s_probability():
    canvas, log_scale = torch.randn(4, 3, 6, 6), torch.randn(3, 6, 6) * 0.3 - 2  # no mass underflows
    k = torch.randint(0, 256, (4, 3, 6, 6))
    k[0, 0, 0, :3] = torch.tensor([0, 255, 128])  # both edge bins and the middle
    p = likelihood.logistic_probs(canvas, log_scale)
    expected = -p.gather(-1, k.unsqueeze(-1)).squeeze(-1).log().flatten(1).sum(1)
    assert torch.allclose(likelihood.logistic_nll(canvas, k.float() / 255, log_scale), expected, rtol=1e-4)


def test_a_sharp_logistic_on_the_right_value_costs_almost_nothing_and_on_a_wrong_one_a_lot():
    x = torch.tensor([[[[100 / 255]]]])
    mean_logit = torch.logit(x)
    tight = torch.full((1, 1, 1), math.log(1e-4))
    assert likelihood.logistic_nll(mean_logit, x, tight).item() < 1e-3
    assert likelihood.logistic_nll(mean_logit, x + 3 / 255, tight).item() > 50
    # gradients stay finite where the bin mass underflows
    canvas = mean_logit.clone().requires_grad_()
    likelihood.logistic_nll(canvas, x + 50 / 255, tight).backward()
    assert torch.isfinite(canvas.grad).all()


def test_bits_per_dim_are_on_8_bit_values_no_logistic_beats_8_bits_on_uniform_values():
    # every 8-bit value once: the entropy is 8 bits, a proper mass on the values cannot do better,
    # and the best logistic centred at 0.5 (scale ~0.2) loses only its tails' share
    config = DrawConfig(16, 16, 1, T=2, enc_size=8, dec_size=8, z_size=2, likelihood="logistic")
    x = torch.arange(256.0).view(1, 1, 16, 16) / 255
    best = min(
        bits_per_dim(likelihood.logistic_nll(torch.zeros_like(x), x, torch.tensor(math.log(s))).item(), config)
        for s in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0)
    )
    assert 8.0 < best < 8.4


def test_the_likelihood_is_chosen_in_the_config_and_saved_in_checkpoints(tmp_path):
    from drawviz.checkpoints import model_from_checkpoint
    from drawviz.train import train
    from drawviz.data import ImageSet

    config = DrawConfig(8, 8, 3, T=3, enc_size=16, dec_size=16, z_size=4, read_n=2, write_n=2, likelihood="logistic")
    assert DrawConfig.preset("cifar10").likelihood == "logistic" and DrawConfig().likelihood == "bernoulli"
    with pytest.raises(ValueError, match="likelihood"):
        DrawConfig(likelihood="gaussian")
    images = (torch.rand(64, 3, 8, 8) * 255).round() / 255
    result = train(
        config,
        ImageSet("toy", "train", images, torch.zeros(64), "test"),
        steps=20,
        batch_size=16,
        binarize=None,
        checkpoint=tmp_path / "m.pt",
        progress=False,
    )
    model = model_from_checkpoint(tmp_path / "m.pt")
    assert model.config.likelihood == "logistic"
    assert torch.equal(model.log_scale, result.model.log_scale)
    assert not torch.allclose(model.log_scale, torch.full_like(model.log_scale, likelihood.INITIAL_LOG_SCALE))
    metrics = evaluate(model, images)
    assert 0 < metrics["bits_per_dim"] < 9  # the 8-bit values' bits, not a cross-entropy of intensities


def test_the_fast_path_gives_the_same_logistic_loss_and_gradient():
    from drawviz.fast import make_fast

    config = DrawConfig(10, 10, 3, T=4, enc_size=16, dec_size=16, z_size=4, read_n=3, write_n=3, likelihood="logistic")
    m = DRAW(config)
    x = (torch.rand(6, 3, 10, 10) * 255).round() / 255
    eps = m.sample_eps(6)
    ref = m(x, eps)
    ref.loss.backward()
    g_ref = m.log_scale.grad.clone()
    m.zero_grad()
    out = make_fast(m, compile=False)(x, eps)
    out.loss.backward()
    assert torch.allclose(out.loss, ref.loss, rtol=1e-5)
    assert torch.allclose(m.log_scale.grad, g_ref, rtol=1e-4, atol=1e-6)


def test_a_saturated_canvas_is_still_pulled_back_as_under_a_bernoulli():
    # canvas logit 40 (σ = 1 to float precision) for a mid-grey pixel: on the logit scale the gradient
    # stays 1/s, where a logistic with mean σ(c) on the intensity scale would pass back σ'(40) ≈ 4e-18
    canvas = torch.full((1, 1, 1, 1), 40.0, requires_grad=True)
    likelihood.logistic_nll(canvas, torch.full((1, 1, 1, 1), 0.5), torch.zeros(1, 1, 1)).sum().backward()
    assert canvas.grad.item() == pytest.approx(1.0, rel=1e-3)


def test_the_median_of_the_logistic_is_the_canvas_as_shown():
    canvas = torch.tensor([-3.0, -0.4, 0.0, 1.5, 4.0]).view(1, 1, 1, 5)
    p = likelihood.logistic_probs(canvas, torch.full((1, 1, 5), math.log(0.2)))
    median = (p.cumsum(-1) >= 0.5).float().argmax(-1).float() / 255  # the first value with half the mass
    assert torch.allclose(median, torch.sigmoid(canvas), atol=1.5 / 255)
