"""What the notebooks' page helpers put on a page (drawviz.pages)."""

import math

import pytest

from drawviz import pages
from drawviz.checkpoints import save_checkpoint
from drawviz.metrics import Trained
from drawviz.model import DRAW, DrawConfig


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DRAWVIZ_CACHE", str(tmp_path / "cache"))


def test_the_blur_page_says_how_a_colour_model_stands_against_its_own_gaussian(tmp_path, cache):
    model = DRAW(DrawConfig(height=32, width=32, channels=3, T=2, enc_size=8, dec_size=8, z_size=2, likelihood="logistic"))
    checkpoint = save_checkpoint(tmp_path / "c.pt", model=model, train_args={"dataset": "cifar10-sample"})
    Trained(nll_bound=20000.0, bits_per_dim=9.5, images=200).write(tmp_path / "train.json")
    run = {"name": "cifar", "dataset": "cifar10-sample", "checkpoint": str(checkpoint), "metrics": str(tmp_path / "train.json")}
    m = pages.blur_run(run, n_samples=4, device="cpu")
    full, diagonal = m["bound"]["full-covariance Gaussian, bits/dim"], m["bound"]["diagonal Gaussian, bits/dim"]
    assert full < diagonal < 9.5
    assert "Against its own Gaussian" in m["markdown"]
    assert f"**{9.5 - full:.2f} bits/dim behind the full-covariance" in m["markdown"]


def test_the_blur_page_gives_no_gaussian_for_binarised_digits(tmp_path, cache):
    checkpoint = save_checkpoint(tmp_path / "m.pt", model=DRAW(DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2)))
    m = pages.blur_run({"name": "mnist", "dataset": "mnist-sample", "checkpoint": str(checkpoint)}, n_samples=4, device="cpu")
    assert "full-covariance Gaussian, bits/dim" not in m["bound"] and "No Gaussian anchor" in m["markdown"]


def test_a_missing_model_of_a_kind_without_T_is_trained_when_asked(tmp_path):
    checkpoint = tmp_path / "vae.pt"
    model = pages.model_for(checkpoint, "mnist-sample", preset="mnist-convvae", steps=2, device="cpu", train_if_missing=True)
    assert type(model).__name__ == "ConvVAE" and checkpoint.exists()


def test_the_blur_page_says_how_far_the_gaussian_is_at_the_pace_a_model_last_learned():
    # evaluations 0.02 bits/dim apart each epoch for 10 epochs at one rate, over 5 CPU hours
    per_epoch = 0.02 * 3072 * math.log(2)
    history = [
        {"step": 100 * e, "epoch": float(e), "seconds": 1800.0 * e, "lr": 1e-3, "test_nll_bound": 20000.0 - per_epoch * e}
        for e in range(1, 11)
    ]
    state = {
        "config": DrawConfig(height=32, width=32, channels=3),
        "step": 1000,
        "history": history,
        "train_args": {"settings": {"dataset": "cifar10"}},
    }
    said = pages._still_learning(state, behind=1.0)  # 1 bits/dim at 0.02 an epoch: 50 epochs, 25 CPU hours
    assert "its bound fell 0.0200 bits/dim an epoch (epochs 5.0–10.0)" in said
    assert "(and it slows) the gap is 50 epochs away, about 25 CPU core-hours at its pace so far" in said
    for row in history:
        row["test_nll_bound"] = 20000.0
    assert "does not close the gap" in pages._still_learning(state, behind=1.0)
