"""Adding a dataset or a likelihood is one declaration: a toy of each, registered in one place, trains."""

import math

import pytest
import torch

from drawviz import data, likelihood
from drawviz.model import DRAW, DrawConfig
from drawviz.__main__ import parser
from drawviz.evaluation import evaluate
from drawviz.train import train


def _bars(root, train, download):
    """Toy images: one bright bar per image, horizontal or vertical (the label), at a random row or column."""
    g = torch.Generator().manual_seed(0 if train else 1)
    n = 96 if train else 32
    images, labels = torch.zeros(n, 1, 28, 28), torch.randint(0, 2, (n,), generator=g)
    where = torch.randint(4, 24, (n,), generator=g)
    for i in range(n):
        if labels[i]:
            images[i, 0, :, where[i]] = 1.0
        else:
            images[i, 0, where[i], :] = 1.0
    return images, labels, "made in tests/test_registries.py"


def _gaussian_nll(canvas, x, log_sd):
    """−log N(x; σ(c_T), sd²) per image, a learned sd per pixel (a density, for the test's sake)."""
    z = (x - torch.sigmoid(canvas)) / log_sd.exp()
    return (0.5 * z.pow(2) + log_sd + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)


@pytest.fixture
def toys():
    bars = data.register(data.Dataset("toy-bars", _bars, grey=True, preset="mnist", aliases=("bars",)))
    gaussian = likelihood.register(
        likelihood.Likelihood(
            "toy-gaussian",
            _gaussian_nll,
            lambda binarized: "likelihood: a Gaussian on intensities (a test's toy)",
            parameters=lambda config: {"log_sd": torch.zeros(config.image_shape)},
        )
    )
    yield bars, gaussian
    del data.REGISTRY["toy-bars"], likelihood.LIKELIHOODS["toy-gaussian"]


def test_a_registered_dataset_and_likelihood_train_and_evaluate(toys):
    train_set, test_set = data.load("bars", "train"), data.load("toy-bars", "test")
    assert train_set.name == "toy-bars" and len(train_set) == 96 and "toy-bars" in data.DATASETS
    assert data.default_preset("toy-bars") == "mnist" and data.default_binarize("toy-bars") == "dynamic"
    config = DrawConfig.preset(
        data.default_preset("toy-bars"), T=3, enc_size=16, dec_size=16, z_size=4, likelihood="toy-gaussian"
    )
    model = DRAW(config)
    assert "log_sd" in dict(model.named_parameters())  # the likelihood's parameter, learned with the network
    result = train(model, train_set, test_set, steps=6, batch_size=32, binarize=None, progress=False)
    assert result.step == 6 and math.isfinite(result.history["loss"].iloc[-1])
    assert not torch.equal(model.log_sd.detach(), torch.zeros(1, 28, 28))  # trained
    bound = evaluate(model, test_set)["nll_bound"]
    assert math.isfinite(bound)
    assert likelihood.describe("toy-gaussian", False).startswith("likelihood: a Gaussian")


def test_the_command_line_offers_what_is_registered(toys):
    args = parser().parse_args(["train", "--dataset", "toy-bars", "--likelihood", "toy-gaussian"])
    assert args.likelihood == "toy-gaussian"
    assert "toy-bars" in parser()._subparsers._group_actions[0].choices["train"].format_help()
    with pytest.raises(ValueError, match="toy-bars"):
        data.load("no-such-set")
