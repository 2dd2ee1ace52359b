"""Arms beyond the paper (issue 33): a scale canvas and a learned prior, as DrawConfig options that leave the
paper's model exactly as it was when they are off."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from drawviz import probes
from drawviz import quantities as Q
from drawviz.interventions import InterventionError, run_with_hooks
from drawviz.likelihood import logistic_nll
from drawviz.model import DRAW, PRESETS, DrawConfig, with_arms

ROOT = Path(__file__).resolve().parents[1]
# the parameters of the paper's network (eq. 1-8, 21-29) and the logistic's log-scale: what every model had before
PAPER_KEYS = [
    "c0",
    "h_enc0",
    "h_dec0",
    "read.params.weight",
    "read.params.bias",
    "write.params.weight",
    "write.params.bias",
    "write.patch.weight",
    "write.patch.bias",
    "encoder.weight_ih",
    "encoder.weight_hh",
    "encoder.bias_ih",
    "encoder.bias_hh",
    "decoder.weight_ih",
    "decoder.weight_hh",
    "decoder.bias_ih",
    "decoder.bias_hh",
    "q.weight",
    "q.bias",
]


def colour(**kw):
    base = dict(height=12, width=10, channels=3, T=4, enc_size=16, dec_size=12, z_size=5, read_n=3, write_n=3)
    return DrawConfig(**{**base, "likelihood": "logistic", **kw})


def shaken(config, seed=0):
    """A model off its initial state (the arms start at zero: N(0, I), s_t = s_0), so every path carries a signal."""
    torch.manual_seed(seed)
    model = DRAW(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


def images(config, n=6, seed=0):
    return (torch.rand(n, *config.image_shape, generator=torch.Generator().manual_seed(seed)) * 255).round() / 255


def paper_pass(model, x, eps):
    """Eq. 3-12 written out again from the model's own modules: the paper's pass, to compare the model with."""
    c = model.config
    canvas, (h_enc, c_enc), (h_dec, c_dec) = model.initial_state(x.shape[0])
    kls = []
    for t in range(c.T):
        x_hat = x - torch.sigmoid(canvas)
        if c.attention:
            r = model.read.glimpse(x, x_hat, model.read.window(h_dec)).flatten(1)
        else:
            r = torch.cat((x.flatten(1), x_hat.flatten(1)), 1)
        h_enc, c_enc = model.encoder(torch.cat((r, h_dec), 1), (h_enc, c_enc))
        mu, log_sigma = model.q(h_enc).chunk(2, 1)
        sigma = torch.exp(log_sigma)
        z = mu + sigma * eps[t]
        kls.append(0.5 * (mu.pow(2) + sigma.pow(2) - 2 * log_sigma - 1).sum(1))
        h_dec, c_dec = model.decoder(z, (h_dec, c_dec))
        if c.attention:
            window = model.write.window(h_dec)
            canvas = canvas + model.write.paint(model.write.patch_from(h_dec), window)
        else:
            canvas = canvas + model.write(h_dec)[0]
    if c.likelihood == "logistic":
        nll = logistic_nll(canvas, x, model.log_scale)
    else:
        nll = torch.nn.functional.binary_cross_entropy_with_logits(canvas, x, reduction="none").flatten(1).sum(1)
    kl = torch.stack(kls)
    return (nll + kl.sum(0)).mean(), nll, kl, canvas


# ----------------------------------------------------------------------------- off: the paper's model, unchanged


@pytest.mark.parametrize("config", [DrawConfig(T=3, enc_size=16, dec_size=16, z_size=4), colour(), colour(attention=False)])
def test_with_the_arms_off_the_model_is_the_papers_bit_for_bit(config):
    model = shaken(config)
    keys = [k for k in PAPER_KEYS if config.attention or not k.startswith(("read.", "write."))]
    keys += [] if config.attention else ["write.linear.weight", "write.linear.bias"]
    keys += ["log_scale"] if config.likelihood == "logistic" else []
    assert sorted(model.state_dict()) == sorted(keys)  # no parameter added, none removed
    assert config.beyond_paper() == {} and (config.scale_canvas, config.prior) == (False, "standard")
    x = images(config) if config.likelihood == "logistic" else torch.bernoulli(images(config))
    eps = model.sample_eps(x.shape[0], torch.Generator().manual_seed(1))
    out = model(x, eps)
    for got, expected in zip(out, paper_pass(model, x, eps)):
        assert torch.equal(got, expected)  # the same floating-point operations, in the same order
    g = torch.autograd.grad(out.loss, list(model.parameters()))
    g_ref = torch.autograd.grad(paper_pass(model, x, eps)[0], list(model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(g, g_ref))


def test_the_presets_are_the_papers_models_and_the_arms_leave_the_papers_parameters_as_a_seed_draws_them():
    assert all(config.beyond_paper() == {} for config in PRESETS.values())
    assert DrawConfig.preset("cifar10", prior="learned", scale_canvas=True).beyond_paper() == {
        "scale_canvas": True,
        "prior": "learned",
    }
    torch.manual_seed(0)
    plain = DRAW(colour()).state_dict()
    torch.manual_seed(0)
    armed = DRAW(colour(scale_canvas=True, prior="learned")).state_dict()
    assert set(armed) == set(plain) - {"log_scale"} | {"p.weight", "p.bias", "write_scale.weight", "write_scale.bias", "s0"}
    assert all(torch.equal(armed[k], plain[k]) for k in plain if k != "log_scale")  # built last: the same initial values
    assert torch.equal(armed["s0"], plain["log_scale"])  # s_0 starts where the learned log-scale does


# a checkpoint written before the arms existed (fashion-mnist.pt, discretised logistic: the likelihood the scale canvas
# draws) on the first 32 images of its sample, eps from seed 0: its loss computed by the code before the arms (acc0b64^)
OLD = ROOT / "models" / "fashion-mnist.pt"
OLD_LOSS = 1988.718017578125


def test_an_old_checkpoint_loads_with_the_arms_off_and_evaluates_as_before():
    from drawviz import data
    from drawviz.checkpoints import load_checkpoint, model_from_checkpoint

    saved = torch.load(OLD, map_location="cpu", weights_only=True)["config"]
    assert "prior" not in saved and "scale_canvas" not in saved  # written before the arms
    assert load_checkpoint(OLD)["config"] == DrawConfig.preset("fashion-mnist", likelihood="logistic")
    model = model_from_checkpoint(OLD, "cpu")
    assert model.config.beyond_paper() == {}
    x = data.load("fashion-mnist-sample", "test", limit=32).images
    with torch.no_grad():
        out = model(x, generator=torch.Generator().manual_seed(0))
        eps = model.sample_eps(32, torch.Generator().manual_seed(0))
        assert torch.equal(out.loss, paper_pass(model, x, eps)[0])
    assert float(out.loss) == pytest.approx(OLD_LOSS, rel=1e-4)  # another machine's BLAS: ~1e-6


# ----------------------------------------------------------------------------- the learned prior


def test_the_learned_priors_kl_is_the_closed_form_between_the_two_gaussians():
    config = colour(prior="learned")
    model = shaken(config)
    x = images(config)
    out = model(x, generator=torch.Generator().manual_seed(0))
    trace = probes.record(model, x, seed=0)
    mu, sigma = torch.from_numpy(trace.mu).double(), torch.from_numpy(trace.sigma_z).double()
    mu_p, sigma_p = torch.from_numpy(trace["mu_prior"]).double(), torch.from_numpy(trace["sigma_prior"]).double()
    reference = kl_divergence(Normal(mu, sigma), Normal(mu_p, sigma_p)).sum(-1)  # (T, batch)
    assert torch.allclose(out.kl.detach().double(), reference, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(reference, kl_divergence(Normal(mu, sigma), Normal(0.0, 1.0)).sum(-1), rtol=1e-2)
    # p(z_t | h_dec_(t−1)): step 1 reads the learned h_dec_0, step t the decoder's output of step t − 1
    with torch.no_grad():
        h_before = torch.cat((model.h_dec0.expand(1, x.shape[0], -1), torch.from_numpy(trace.h_dec[:-1])))
        expected_mu, expected_log_sigma = model.p(h_before).chunk(2, -1)
    np.testing.assert_allclose(trace["mu_prior"], expected_mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trace["sigma_prior"], expected_log_sigma.exp().numpy(), rtol=1e-5, atol=1e-6)


def test_a_zeroed_prior_layer_is_the_standard_normal_and_gives_the_standard_kl():
    learned = shaken(colour(prior="learned"))
    with torch.no_grad():
        learned.p.weight.zero_(), learned.p.bias.zero_()
    standard = DRAW(colour())
    standard.load_state_dict({k: v for k, v in learned.state_dict().items() if not k.startswith("p.")})
    x = images(learned.config)
    eps = learned.sample_eps(x.shape[0], torch.Generator().manual_seed(2))
    a, b = learned(x, eps), standard(x, eps)
    assert torch.allclose(a.kl, b.kl, rtol=1e-5, atol=1e-5) and torch.allclose(a.loss, b.loss, rtol=1e-6)
    assert torch.equal(a.canvas, b.canvas)  # the prior only enters the KL
    torch.testing.assert_close(learned.generate(3, eps=eps[:, :3]), standard.generate(3, eps=eps[:, :3]))


def test_generation_samples_z_from_the_learned_prior():
    model = shaken(colour(prior="learned"))
    eps = model.sample_eps(4, torch.Generator().manual_seed(3))
    trace = probes.run(model, n=4, eps=eps)
    assert trace.names[:3] == ["mu_prior", "sigma_prior", "z"]  # computed before z, as declared
    z = trace["mu_prior"] + trace["sigma_prior"] * eps.numpy()
    np.testing.assert_allclose(trace.z, z, rtol=1e-5, atol=1e-6)
    assert not np.allclose(trace.z, eps.numpy(), atol=1e-2)  # not the standard prior's ε
    # what generation uses is the prior's μ_p: moved by a hook, z moves with it, and the drawing with z
    moved = run_with_hooks(model, n=4, eps=eps, hooks={"mu_prior": lambda v, t: v + 3.0})
    np.testing.assert_allclose(moved["mu_prior"][0], trace["mu_prior"][0] + 3.0, rtol=1e-6, atol=1e-6)  # h_dec_0 alike
    np.testing.assert_allclose(moved.z, moved["mu_prior"] + moved["sigma_prior"] * eps.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(moved.z[0], trace.z[0] + 3.0, rtol=1e-5, atol=1e-5)
    assert not np.allclose(moved.canvas, trace.canvas)
    wide = run_with_hooks(model, n=4, eps=eps, hooks={"sigma_prior": lambda v, t: 2 * v})
    np.testing.assert_allclose(wide.z[0] - trace["mu_prior"][0], 2 * (trace.z[0] - trace["mu_prior"][0]), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- the scale canvas


def test_the_likelihoods_log_scale_is_the_scale_canvas_s_T():
    config = colour(scale_canvas=True)
    model = shaken(config)
    assert not hasattr(model, "log_scale")  # s_T takes the place of the one learned log-scale
    x = images(config)
    out = model(x, generator=torch.Generator().manual_seed(0))
    trace = run_with_hooks(model, x, seed=0)  # measures −log D(x | c_t, s_t) at every step
    s = torch.from_numpy(trace["scale_canvas"])  # (T, batch, C, H, W)
    assert s.shape == (config.T, x.shape[0], *config.image_shape)
    assert torch.allclose(out.nll, logistic_nll(out.canvas, x, s[-1]), rtol=1e-6)
    assert not torch.allclose(out.nll, logistic_nll(out.canvas, x, model.s0), rtol=1e-3)  # s_T is not s_0
    np.testing.assert_allclose(trace.recon_nll[-1], out.nll.detach().numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="scale="):
        model.nll(out.canvas, x)  # the canvas alone does not say how sure the model is
    from drawviz.comparisons import what_each_step_buys

    steps = what_each_step_buys(model, x, trace=trace)  # the error before step 1: c_0 with s_0
    initial = logistic_nll(model.c0.expand_as(x), x, model.s0).detach().mean() / np.log(2)
    assert float(steps["error_bits"].iloc[0] + steps["error_drop_bits"].iloc[0]) == pytest.approx(float(initial), rel=1e-5)


@pytest.mark.parametrize("attention", [True, False])
def test_the_scale_canvas_is_written_through_the_canvass_write_window(attention):
    config = colour(scale_canvas=True, attention=attention)
    model = shaken(config)
    x = images(config)
    t = 2
    # at step t the canvas's write window is a narrow spot at (3, 3): the scale canvas changes only there too
    spot = {"write_window": lambda w, s: w._replace(g_x=3.0, g_y=3.0, delta=1.0, sigma2=0.1) if s == t else None}
    trace = run_with_hooks(model, x, hooks=spot if attention else {}, seed=0)
    s = trace["scale_canvas"]
    step = np.abs(s[t - 1] - s[t - 2])  # s_t − s_(t−1), (batch, C, H, W)
    assert step.max() > 1e-3
    if attention:  # filters of σ² = 0.1 at 3 ± 1 pixel: nothing beyond 8 pixels from the corner
        assert step[..., 8:, :].max() < 1e-6 and step[..., :, 8:].max() < 1e-6
    else:  # without attention its own update of the whole canvas, as eq. 18
        assert (step > 1e-4).mean() > 0.9


def test_the_scale_canvas_needs_a_likelihood_with_a_scale_and_the_prior_one_of_two():
    with pytest.raises(ValueError, match="scale_canvas.*'bernoulli' likelihood has no scale.*likelihood='logistic'"):
        DrawConfig(scale_canvas=True)
    with pytest.raises(ValueError, match="scale_canvas must be True or False"):
        colour(scale_canvas="yes")
    with pytest.raises(ValueError, match="prior must be one of standard, learned"):
        colour(prior="vamp")


def test_a_model_with_both_arms_trains_on_the_cifar10_sample_and_checkpoints(tmp_path):
    from drawviz import data
    from drawviz.checkpoints import model_from_checkpoint
    from drawviz.train import train

    config = DrawConfig(32, 32, 3, T=4, enc_size=32, dec_size=32, z_size=8, read_n=3, write_n=4, likelihood="logistic")
    config = DrawConfig(**{**config.to_dict(), "scale_canvas": True, "prior": "learned"})
    train_set = data.load("cifar10-sample", "train")
    torch.manual_seed(0)
    model = DRAW(config)
    x = train_set.images[:100]  # a fixed batch and noise: the loss before and after, without a batch's noise
    eps = model.sample_eps(100, torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = float(model(x, eps).loss)
    result = train(
        model,
        train_set,
        steps=50,
        batch_size=32,
        lr=1e-2,
        binarize=None,
        checkpoint=tmp_path / "m.pt",
        progress=False,
        device="cpu",
    )
    with torch.no_grad():
        after = float(result.model(x, eps).loss)
    assert after < 0.95 * before, (before, after)  # it learns: 7.6 % down in these 50 steps (the plain model: 8.3 %)
    model = result.model
    assert model.p.weight.abs().max() > 0 and model.write_scale.weight.abs().max() > 0  # both arms took gradients
    assert not torch.allclose(model.s0, torch.full_like(model.s0, model.s0.flatten()[0].item()))
    again = model_from_checkpoint(tmp_path / "m.pt", "cpu")
    assert again.config == config and all(
        torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values())
    )


def test_where_the_bits_go_measures_an_armed_model_against_its_own_scale_and_prior(tmp_path):
    import importlib.util
    import math

    from drawviz.checkpoints import save_checkpoint

    spec = importlib.util.spec_from_file_location("where_the_bits_go", ROOT / "benchmarks" / "where_the_bits_go.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    config = DrawConfig(
        32, 32, 3, T=3, enc_size=16, dec_size=16, z_size=4, likelihood="logistic", scale_canvas=True, prior="learned"
    )
    path = save_checkpoint(tmp_path / "c.pt", model=shaken(config), train_args={"dataset": "cifar10-sample"})
    m = bench.measure(path, None, 12)
    assert m["arms"] == {"scale_canvas": True, "prior": "learned"}
    # the channels' bits average to the reconstruction's (under s_T); the units' KL (to the learned prior) sums to the bound's
    assert sum(m["channels_bits_per_dim"].values()) / 3 == pytest.approx(m["reconstruction_bits_per_dim"], rel=1e-5)
    assert sum(m["kl_per_unit_nats"]) / (32 * 32 * 3 * math.log(2)) == pytest.approx(m["kl_bits_per_dim"], rel=1e-3)


# ----------------------------------------------------------------------------- quantities, the fast path, the CLI


@pytest.mark.parametrize("mode", ["reconstruction", "generation"])
def test_the_arms_quantities_are_declared_tapped_in_step_order_and_hookable_only_where_they_exist(mode):
    config = colour(scale_canvas=True, prior="learned", T=3)
    model = shaken(config)
    seen = []

    def tap(name, t, value):
        seen.append((t, name))
        assert tuple(value.shape if not Q.is_window(name) else value.g_x.shape) == Q.expected_shape(name, config, 2)
        return value

    if mode == "reconstruction":
        model(images(config, 2), tap=tap)
    else:
        model.generate(2, tap=tap)
    order = Q.available(config, mode)
    assert {"mu_prior", "sigma_prior", "scale_canvas"} <= set(order)
    assert seen == [(t, name) for t in (1, 2, 3) for name in order]
    plain = DRAW(colour())
    assert not {"mu_prior", "sigma_prior", "scale_canvas"} & set(Q.available(plain.config, mode))
    x = images(plain.config, 2) if mode == "reconstruction" else None
    with pytest.raises(InterventionError, match="only a model with prior='learned' computes it"):
        run_with_hooks(plain, x, n=None if x is not None else 2, hooks={"mu_prior": lambda v, t: v})
    with pytest.raises(InterventionError, match="only a model with scale_canvas=True computes it"):
        run_with_hooks(plain, x, n=None if x is not None else 2, hooks={"scale_canvas": lambda v, t: v})


def test_the_fast_path_refuses_the_learned_prior_and_says_how_to_train_it_but_takes_the_scale_canvas():
    from drawviz.fast import FastDRAW, make_fast
    from drawviz.train import train

    model = DRAW(colour(prior="learned", scale_canvas=True))
    with pytest.raises(ValueError, match=r"not prior='learned': train it with fast=False"):
        make_fast(model, compile=False)
    with pytest.raises(ValueError, match="fast=False"):
        FastDRAW(model)
    with pytest.raises(ValueError, match="fast=False"):
        train(model, images(model.config, 8), steps=1, batch_size=4, binarize=None, fast=True, progress=False, device="cpu")
    scaled = DRAW(colour(scale_canvas=True))  # the fast path paints [c_t | s_t] (tests/test_fast.py: the same numbers)
    train(scaled, images(scaled.config, 8), steps=2, batch_size=4, binarize=None, fast=True, progress=False, device="cpu")
    assert scaled.write_scale.weight.abs().max() > 0  # write_s took gradients on the fast path


def test_the_cli_takes_the_arms_and_a_resumed_model_refuses_them_when_it_lacks_them(tmp_path):
    from drawviz.__main__ import parser
    from drawviz.start import CLI, start_from

    args = parser().parse_args(["train", "--dataset", "cifar10-sample", "--scale-canvas", "--prior", "learned"])
    assert (args.scale_canvas, args.prior) == (True, "learned")
    plain = parser().parse_args(["train"])
    assert (plain.scale_canvas, plain.prior) == (False, None)  # not given: never compared with a resumed model
    with pytest.raises(SystemExit):
        parser().parse_args(["train", "--prior", "vamp"])
    new = start_from(tmp_path / "new.pt", dataset="cifar10", fields={"scale_canvas": True, "prior": "learned"}, words=CLI)
    assert new.config == DrawConfig.preset("cifar10", scale_canvas=True, prior="learned")
    shutil.copyfile(OLD, tmp_path / "old.pt")  # written before the arms: it has neither
    with pytest.raises(ValueError, match=r"prior = 'standard'.*not prior = 'learned'.*--checkpoint"):
        start_from(tmp_path / "old.pt", dataset="fashion-mnist", fields={"prior": "learned"}, words=CLI)
    with pytest.raises(ValueError, match=r"scale_canvas = False.*not scale_canvas = True"):
        start_from(tmp_path / "old.pt", dataset="fashion-mnist", fields={"scale_canvas": True}, words=CLI)
    assert start_from(tmp_path / "old.pt", dataset="fashion-mnist", fields={"prior": None}, words=CLI).config.prior == "standard"
    shutil.copyfile(ROOT / "models" / "cifar10.pt", tmp_path / "scaled.pt")  # the shipped CIFAR-10 model has a scale canvas
    with pytest.raises(ValueError, match=r"scale_canvas = True.*not scale_canvas = False"):
        start_from(tmp_path / "scaled.pt", dataset="cifar10", fields={"scale_canvas": False}, words=CLI)


@pytest.mark.parametrize("arms", [dict(scale_canvas=True), dict(prior="learned"), dict(scale_canvas=True, prior="learned")])
def test_an_arm_grown_from_a_trained_model_starts_as_that_model(arms):
    trained = shaken(colour())
    grown = with_arms(trained, **arms)
    x = images(trained.config)
    eps = trained.sample_eps(x.shape[0], torch.Generator().manual_seed(1))
    before, after = trained(x, eps=eps), grown(x, eps=eps)
    assert torch.allclose(after.nll, before.nll, rtol=1e-6) and torch.allclose(after.kl, before.kl, rtol=1e-6)
    assert grown.config.beyond_paper() == arms
    # the arms' own layers are new, at zero; every trained weight is carried over
    assert set(grown.state_dict()) - set(trained.state_dict()) - {"s0"} <= {
        "p.weight", "p.bias", "write_scale.weight", "write_scale.bias"
    }  # fmt: skip


def test_a_grown_checkpoint_reads_as_more_legs_of_the_same_model(tmp_path):
    from drawviz.checkpoints import grow_checkpoint, load_checkpoint, model_from_checkpoint, save_checkpoint

    trained = shaken(colour())
    history = [{"step": 40, "epoch": 0.5, "seconds": 600.0, "loss": 1.0}]
    save_checkpoint(tmp_path / "trained.pt", model=trained, step=40, history=history, train_args={"dataset": "cifar10"})
    grow_checkpoint(tmp_path / "trained.pt", tmp_path / "grown.pt", lambda draw: with_arms(draw, scale_canvas=True))
    state = load_checkpoint(tmp_path / "grown.pt")
    assert state["step"] == 40 and state["history"] == history and state["config"].scale_canvas
    grown, x = model_from_checkpoint(tmp_path / "grown.pt", device="cpu"), images(trained.config)
    eps = trained.sample_eps(x.shape[0], torch.Generator().manual_seed(1))
    assert torch.allclose(grown(x, eps=eps).nll, trained(x, eps=eps).nll, rtol=1e-6)


def test_growing_an_arm_refuses_to_take_one_away_or_to_add_an_unknown_one():
    armed = shaken(colour(prior="learned"))
    with pytest.raises(ValueError, match="take away prior"):
        with_arms(armed, prior="standard")
    with pytest.raises(ValueError, match="not \\['T'\\]"):
        with_arms(armed, T=8)
