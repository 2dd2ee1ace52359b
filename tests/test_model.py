"""Section 2 of the paper: the network, its loss, generation; and the checks on its input."""

import dataclasses

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from drawviz.model import DRAW, DrawConfig, InputError, PRESETS
from drawviz.probes import record


def small(**kw):
    return DrawConfig(**{"T": 5, "enc_size": 32, "dec_size": 32, "z_size": 6, **kw})


def test_presets_follow_table_3():
    m, s, c = PRESETS["mnist"], PRESETS["svhn"], PRESETS["cifar10"]
    assert (m.height, m.width, m.channels, m.T, m.enc_size, m.dec_size, m.z_size, m.read_n, m.write_n) == (
        28,
        28,
        1,
        64,
        256,
        256,
        100,
        2,
        5,
    )
    assert (s.channels, s.T, s.enc_size, s.z_size, s.read_n, s.write_n) == (3, 32, 800, 100, 12, 12)
    assert (c.channels, c.T, c.enc_size, c.z_size, c.read_n, c.write_n) == (3, 64, 400, 200, 5, 5)
    assert PRESETS["mnist-noattn"].attention is False
    assert DrawConfig.preset("mnist", T=8).T == 8


def test_config_is_frozen_and_travels_as_plain_data():
    config = DrawConfig.preset("cifar10")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.T = 3
    data = config.to_dict()
    assert all(isinstance(v, (int, bool, str)) for v in data.values())
    assert DrawConfig.from_dict(data) == config


def test_a_fresh_epsilon_every_step():
    model = DRAW(small())
    x = torch.rand(16, 1, 28, 28)
    trace = record(model, x, seed=0)
    eps = (trace.z - trace.mu) / trace.sigma_z  # (T, batch, z)
    expected = model.sample_eps(16, torch.Generator().manual_seed(0)).numpy()
    assert abs(eps - expected).max() < 1e-4  # the reparameterisation uses the drawn noise
    for t in range(1, model.config.T):
        assert abs(eps[t] - eps[0]).min() > 0  # never the same ε twice
    flat = torch.from_numpy(eps).reshape(model.config.T, -1)
    assert torch.corrcoef(flat).fill_diagonal_(0).abs().max() < 0.3  # independent draws


def test_kl_per_step_equals_torch_distributions():
    model = DRAW(small())
    x = torch.rand(8, 1, 28, 28)
    out = model(x, generator=torch.Generator().manual_seed(0))
    trace = record(model, x, seed=0)
    mu, sigma = torch.from_numpy(trace.mu), torch.from_numpy(trace.sigma_z)
    reference = kl_divergence(Normal(mu, sigma), Normal(0.0, 1.0)).sum(-1)  # (T, batch)
    assert out.kl.shape == (5, 8)
    assert torch.allclose(out.kl.detach(), reference, rtol=1e-4, atol=1e-5)


def test_loss_is_bernoulli_nll_of_the_final_canvas_plus_summed_kl():
    model = DRAW(small())
    x = torch.bernoulli(torch.rand(8, 1, 28, 28))
    out = model(x, generator=torch.Generator().manual_seed(0))
    nll = -Bernoulli(logits=out.canvas).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(out.nll, nll, rtol=1e-5)
    assert torch.allclose(out.loss, (nll + out.kl.sum(0)).mean(), rtol=1e-5)


def test_an_untrained_model_costs_about_784_ln2_nats():
    # c_0 = 0 paints σ(0) = ½ everywhere: −log ½ per pixel, and KL ≈ 0 at initialisation
    model = DRAW(small())
    torch.nn.init.zeros_(model.write.patch.weight)
    torch.nn.init.zeros_(model.write.patch.bias)
    out = model(torch.bernoulli(torch.rand(4, 1, 28, 28)), generator=torch.Generator().manual_seed(0))
    assert out.nll.mean().item() == pytest.approx(784 * torch.log(torch.tensor(2.0)).item(), rel=1e-5)


@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("channels", [1, 3])
def test_generation_gives_a_canvas_sequence_in_0_1(attention, channels):
    model = DRAW(small(channels=channels, height=12, width=10, attention=attention))
    frames = model.generate(7, generator=torch.Generator().manual_seed(1))
    assert frames.shape == (5, 7, channels, 12, 10)
    assert frames.min() >= 0 and frames.max() <= 1
    assert not torch.equal(frames[0], frames[-1])  # the canvas grows


def test_no_attention_baseline_reads_the_whole_image():
    model = DRAW(small(attention=False))
    assert model.encoder.input_size == 2 * 784 + 32
    out = model(torch.rand(3, 1, 28, 28))
    assert torch.isfinite(out.loss)


def test_gradients_reach_read_and_write():
    model = DRAW(small())
    model(torch.rand(4, 1, 28, 28)).loss.backward()
    for layer in (model.read.params, model.write.params, model.write.patch, model.encoder, model.decoder, model.q):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.rand(4, 28, 28), "unsqueeze"),
        (torch.rand(4, 3, 28, 28), r"\(batch, 1, 28, 28\)"),
        (torch.rand(4, 1, 32, 32), r"\(batch, 1, 28, 28\)"),
        (torch.rand(4, 1, 28, 28) * 255, r"\[0, 1\]"),
        (-torch.rand(4, 1, 28, 28), r"\[0, 1\]"),
        (torch.full((4, 1, 28, 28), float("nan")), "NaN"),
        (torch.randint(0, 255, (4, 1, 28, 28), dtype=torch.uint8), "255"),
        (torch.rand(0, 1, 28, 28), "empty"),
    ],
)
def test_bad_input_says_what_was_expected(bad, message):
    with pytest.raises(InputError, match=message):
        DRAW(small())(bad)


def test_channels_last_colour_input_gets_a_hint():
    with pytest.raises(InputError, match="permute"):
        DRAW(small(channels=3, height=32, width=32))(torch.rand(2, 32, 32, 3))


# issue 14
def test_attention_must_be_a_bool():
    with pytest.raises(ValueError, match="attention"):
        DrawConfig(attention="no")  # a non-empty string would have kept attention on


def test_raw_tracebacks_become_clear_errors():
    """Issue 14: a wrong dtype, eps of the wrong shape, a negative sample count, a GPU that is not there."""
    from drawviz import probes
    from drawviz.device import pick_device

    model = DRAW(DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2, read_n=2, write_n=2))
    with pytest.raises(InputError, match="images are torch.float64 but the model is torch.float32"):
        model(torch.rand(2, 1, 28, 28, dtype=torch.float64))
    with pytest.raises(InputError, match="positive number of samples"):
        probes.record_generation(model, -1)
    with pytest.raises(InputError, match=r"\(T, batch, z_size\) = \(2, 3, 2\)"):
        model(torch.rand(3, 1, 28, 28), eps=torch.randn(2, 3, 5))
    with pytest.raises(InputError, match="eps must have shape"):
        model.generate(3, eps=torch.randn(2, 1, 2))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")
