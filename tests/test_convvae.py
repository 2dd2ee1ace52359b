"""The one-shot convolutional VAE (drawviz.convvae, issue 33): DRAW's likelihood and output in one step, trained,
evaluated, saved and shown by the same code as DRAW; what needs DRAW's internals says what it lacks."""

import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from drawviz import anchors, data, kinds, pages, plots, probes, sharpness
from drawviz.__main__ import main
from drawviz.card import model_card
from drawviz.checkpoints import export_checkpoint, load_checkpoint, model_from_checkpoint, save_checkpoint
from drawviz.convvae import ConvVAE, ConvVAEConfig
from drawviz.evaluation import evaluate
from drawviz.fast import make_fast
from drawviz.metrics import Trained
from drawviz.model import DRAW
from drawviz.quantities import MU, SIGMA_Z
from drawviz.start import start_from
from drawviz.train import train

SMALL = ConvVAEConfig(filters=16, z_size=32)  # CIFAR-sized images, a quarter of the preset's channels


@pytest.fixture(scope="module")
def cifar():
    return data.load("cifar10-sample", "train"), data.load("cifar10-sample", "test")


def test_the_preset_is_draws_size_and_draws_draws_canvas():
    config = kinds.preset("cifar10-convvae")
    assert isinstance(config, ConvVAEConfig) and config.likelihood == "logistic" and config.T == 1
    model, draw = kinds.build(config), DRAW(kinds.preset("cifar10"))
    size = sum(p.numel() for p in model.parameters())
    assert size * 2 <= 10e6  # at most 10 MB as float16
    assert 0.8 < size / sum(p.numel() for p in draw.parameters()) < 1.2  # about DRAW's cifar10 (2.9 M against 2.7 M)
    assert model.log_scale.shape == draw.log_scale.shape == (3, 32, 32)  # the likelihood's learned log-scale, as DRAW's
    x = torch.rand(2, 3, 32, 32)
    assert model(x).canvas.shape == draw(x, torch.zeros(64, 2, 200)).canvas.shape
    digits = kinds.build(kinds.preset("mnist-convvae"))  # 28×28 halved twice, to 7×7; the paper's Bernoulli
    assert digits.config.likelihood == "bernoulli" and digits(torch.rand(2, 1, 28, 28).round()).canvas.shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="divisible by 8"):
        ConvVAEConfig(28, 28, 1)  # three stride-2 layers cannot halve 28 three times


def test_the_kl_is_the_closed_form_against_n01_and_the_loss_is_the_negative_elbo():
    model = ConvVAE(SMALL)
    x, seen = torch.rand(5, 3, 32, 32), {}
    out = model(x, tap=lambda name, t, v: seen.setdefault(name, v))
    assert out.kl.shape == (1, 5)  # one step
    q = Normal(seen[MU], seen[SIGMA_Z])
    expected = kl_divergence(q, Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))).sum(1)
    torch.testing.assert_close(out.kl[0], expected)
    torch.testing.assert_close(out.loss, (out.nll + out.kl[0]).mean())
    torch.testing.assert_close(out.nll, model.nll(out.canvas, x))


def test_the_evaluated_bound_is_the_loss_of_the_same_batch_and_noise(cifar):
    model = ConvVAE(SMALL).eval()
    x = cifar[1].images[:50]
    eps = model.sample_eps(50, torch.Generator().manual_seed(3))
    loss = model(x, eps).loss.item()
    measured = evaluate(model, x, seed=3)  # its noise drawn from the seed as sample_eps draws it
    assert measured["nll_bound"] == pytest.approx(loss, rel=1e-5)
    assert measured["bits_per_dim"] == pytest.approx(loss / (3 * 32 * 32 * math.log(2)), rel=1e-5)
    assert measured["recon_nll"] + measured["kl"] == pytest.approx(measured["nll_bound"], rel=1e-5)


def test_it_learns_the_cifar10_sample_and_uses_its_latent(cifar):
    train_set, test_set = cifar
    torch.manual_seed(0)
    before = evaluate(ConvVAE(SMALL), test_set)  # train() builds the same model from the config and seed 0
    result = train(SMALL, train_set, None, steps=100, binarize=None, progress=False)
    after = evaluate(result.model, test_set)
    assert before["bits_per_dim"] - after["bits_per_dim"] > 0.4  # measured: 8.36 -> 7.76
    assert after["kl"] > 10  # not a collapsed posterior: the reconstruction pays for its bits of z (measured 40 nats)


def test_a_checkpoint_round_trips_with_its_kind(tmp_path):
    model = ConvVAE(SMALL)
    path = save_checkpoint(tmp_path / "vae.pt", model=model, step=7)
    assert load_checkpoint(path)["kind"] == "convvae"
    again = model_from_checkpoint(path, device="cpu")
    assert type(again) is ConvVAE and again.config == SMALL
    x, eps = torch.rand(3, 3, 32, 32), model.sample_eps(3, torch.Generator().manual_seed(0))
    assert torch.equal(again(x, eps).loss, model.eval()(x, eps).loss)
    half = export_checkpoint(path, tmp_path / "half.pt", half=True)  # the shipped form: float16 weights
    assert model_from_checkpoint(half, device="cpu")(x, eps).loss.item() == pytest.approx(model(x, eps).loss.item(), rel=1e-3)


def test_the_command_line_trains_and_evaluates_it(tmp_path, capsys):
    checkpoint = str(tmp_path / "x.pt")
    argv = ["--dataset", "cifar10-sample", "--preset", "cifar10-convvae", "--checkpoint", checkpoint, "--no-progress"]
    assert main(["train", *argv, "--steps", "20"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["step"] == 20 and math.isfinite(trained["bits_per_dim"])
    assert load_checkpoint(checkpoint)["kind"] == "convvae"
    assert main(["evaluate", checkpoint, "--no-progress"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["nll_bound"] == pytest.approx(trained["nll_bound"], rel=1e-6)  # the same test images and noise
    assert main(["train", *argv, "--steps", "21", "--drawing-steps", "4"]) == 2  # a one-step model has no T to set
    assert "has no T" in capsys.readouterr().err


def test_the_fast_path_refuses_it_naming_the_way_out(cifar, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"DRAW only, not ConvVAE.*fast=False \(CLI: without --fast\)"):
        make_fast(ConvVAE(SMALL))
    with pytest.raises(ValueError, match="fast=False"):
        train(SMALL, cifar[0], None, steps=1, fast=True, binarize=None, progress=False)


def test_the_blur_helpers_show_its_reconstructions_and_samples(cifar, tmp_path, monkeypatch):
    model = ConvVAE(SMALL).eval()
    sets, steps = sharpness.blur_measurements(model, cifar[1].images[:8])
    assert sets["samples"].shape == sets["reconstructions"].shape == (8, 3, 32, 32)
    assert set(steps.step) == {1} and set(steps.source) == {"reconstructions", "samples"}  # its one step
    # the page's Gaussians of the same images, as anchors.anchors gives them (fitted in tests/test_anchors.py)
    fitted = {"full_covariance": 5.76, "diagonal": 8.03, "test_images": 200, "train_images": 800}
    monkeypatch.setattr(anchors, "anchors", lambda dataset, data_root=None: fitted)
    checkpoint = save_checkpoint(tmp_path / "vae.pt", model=model, train_args={"dataset": "cifar10-sample"})
    Trained(nll_bound=16000.0, bits_per_dim=7.51, images=200).write(tmp_path / "train.json")
    run = {"name": "vae", "dataset": "cifar10-sample", "checkpoint": str(checkpoint), "metrics": str(tmp_path / "train.json")}
    m = pages.blur_run(run, n_samples=8, device="cpu")
    assert "(T = 1; a plain convolutional VAE" in m["markdown"]
    assert r"ConvVAE 7\.51 bits/dim beside a full\-covariance Gaussian 5\.76" in m["markdown"]  # escaped Markdown
    assert "not what ConvVAE cannot draw" in m["markdown"] and "DRAW" not in m["markdown"].replace("beside DRAW", "")
    assert m["sets"]["samples"].shape == (8, 3, 32, 32) and "samples/laplacian_variance" in m["ratios"]
    reference = {"vae: samples": m["table"].loc[("vae", "test images")].to_dict()}
    plots.plot_sharpness_per_step(m["per_step"], reference)  # one point per source


def test_shown_beside_a_run_without_its_train_notebook_its_bound_is_measured_on_the_runs_test_split(cifar, tmp_path):
    model = ConvVAE(SMALL).eval()
    checkpoint = save_checkpoint(tmp_path / "vae.pt", model=model, train_args={"dataset": "cifar10-sample"})
    run = {"name": "one-shot", "dataset": "cifar10-sample", "checkpoint": str(checkpoint), "metrics": None}
    m = pages.blur_run(run, n_samples=8, device="cpu")
    expected = evaluate(model, data.load("cifar10-sample", "test"), seed=0)
    assert m["bound"]["test images"] == 200  # all the test images a train notebook's bound is on, not the 8 shown
    assert m["bound"]["bits/dim"] == pytest.approx(expected["bits_per_dim"])
    assert m["bound"]["model"].startswith("vae.pt: trained on")  # what the checkpoint says of its training
    # beside a run whose train notebook measured 100 test images: the same 100 (class-balanced, the same seed)
    m = pages.blur_run(dict(run, test_images=100), n_samples=8, device="cpu")
    expected = evaluate(model, data.load("cifar10-sample", "test").balanced(100, seed=0), seed=0)
    assert m["bound"]["test images"] == 100
    assert m["bound"]["bits/dim"] == pytest.approx(expected["bits_per_dim"])


def test_a_recording_holds_its_one_step_and_figures_of_draws_internals_say_what_it_lacks():
    model = ConvVAE(SMALL).eval()
    x = torch.rand(4, 3, 32, 32)
    trace = probes.record(model, x, seed=0)
    assert trace.T == 1 and trace.kind == "convvae" and trace.names == ["mu", "sigma_z", "z", "kl", "canvas"]
    eps = model.sample_eps(4, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(trace.kl[0], model(x, eps).kl[0].detach().numpy(), rtol=1e-5)
    assert kinds.lacks(model, "error images", "x_hat") == (
        "error images: a convvae model computes no x_hat (it computes mu, sigma_z, z, kl, canvas)"
    )
    assert kinds.lacks(model, "samples") is None and kinds.lacks(model, "KL per step", "kl") is None
    with pytest.raises(ValueError, match="^error images: a convvae model computes no x_hat"):
        plots.plot_error_grid(trace)
    with pytest.raises(ValueError, match="a convvae model without attention computes no write_window"):
        plots.plot_drawing(probes.record_generation(model, 2, seed=0))


def test_its_model_card_names_its_network_and_its_anchors(tmp_path, monkeypatch):
    fitted = {"full_covariance": 5.76, "diagonal": 8.03, "test_images": 200, "train_images": 800, "shrinkage": 0.02}
    monkeypatch.setattr(anchors, "anchors", lambda dataset, data_root=None: fitted)
    checkpoint = save_checkpoint(tmp_path / "vae.pt", model=ConvVAE(SMALL), train_args={"dataset": "cifar10-sample"})
    card = model_card(checkpoint, images=8)
    assert card.startswith("## `vae.pt` — a plain convolutional VAE, the one-shot generator beside DRAW")
    assert "| config | 32×32×3, one step (T = 1), z 32; encoder 3 4×4 convolutions of stride 2 (16, 32, 64 channels" in card
    assert "| same-data anchors (drawviz.anchors) | ConvVAE " in card and "attention, steps" not in card


def test_a_new_one_from_the_notebooks_start_takes_the_new_model_defaults_it_has(tmp_path):
    # train.ipynb's new_model={"T": 8} sizes a new DRAW; a one-step model has no T: that default is not its
    start = start_from(tmp_path / "vae.pt", dataset="cifar10-sample", preset="cifar10-convvae", new_model={"T": 8})
    assert start.config == kinds.preset("cifar10-convvae")
    with pytest.raises(ValueError, match="a ConvVAEConfig has no T"):  # a T given is refused, not dropped
        start_from(tmp_path / "vae.pt", dataset="cifar10-sample", preset="cifar10-convvae", fields={"T": 4})
