"""Model kinds: a checkpoint says what it holds, every reader rebuilds it through one registry, old files read
as DRAW, and the fast path refuses what it does not implement."""

import pytest
import torch
from torch import nn

from drawviz import kinds
from drawviz.checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from drawviz.classifier import ClassifierConfig, GlimpseClassifier
from drawviz.fast import make_fast
from drawviz.model import DRAW, DrawConfig
from drawviz.train import train

TINY = DrawConfig(T=3, enc_size=16, dec_size=16, z_size=4)


def test_every_checkpoint_records_its_kind_and_is_rebuilt_as_it(tmp_path):
    for model, name in ((DRAW(TINY), "draw"), (GlimpseClassifier(ClassifierConfig(T=2, enc_size=8)), "classifier")):
        path = save_checkpoint(tmp_path / f"{name}.pt", model=model)
        assert load_checkpoint(path)["kind"] == name
        again = model_from_checkpoint(path, device="cpu")
        assert type(again) is type(model) and again.config == model.config
        assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


def test_checkpoints_written_before_kinds_read_as_draw(tmp_path):
    path = save_checkpoint(tmp_path / "old.pt", model=DRAW(TINY))
    state = torch.load(path, weights_only=True)
    del state["kind"]  # as every file written before kinds existed
    torch.save(state, path)
    assert load_checkpoint(path)["kind"] == "draw" and type(model_from_checkpoint(path, device="cpu")) is DRAW


def test_the_shipped_models_read_as_draw():
    from drawviz.resources import models

    for name in ("mnist.pt", "cifar10.pt"):
        assert load_checkpoint(models() / name)["kind"] == "draw"


def test_a_kind_this_drawviz_does_not_know_is_refused_with_the_kinds_it_knows(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", model=DRAW(TINY))
    state = torch.load(path, weights_only=True)
    state["kind"] = "vq-draw"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="'vq-draw'.*draw, classifier"):
        load_checkpoint(path)


def test_a_preset_names_its_kind():
    assert isinstance(kinds.preset("cluttered-mnist"), ClassifierConfig) and kinds.preset("cluttered-mnist-4").T == 4
    assert isinstance(kinds.preset("mnist", T=8), DrawConfig)
    with pytest.raises(ValueError, match="has no write_n"):
        kinds.preset("cluttered-mnist", write_n=5)


class _Tinted(DRAW):
    """DRAW with one extra parameter: a learned shift of the final canvas."""

    def __init__(self, config):
        super().__init__(config)
        self.tint = nn.Parameter(torch.zeros(()))

    def forward(self, x, eps=None, **kw):
        out = super().forward(x, eps, **kw)
        nll = self.nll(out.canvas + self.tint, x)
        return out._replace(nll=nll, loss=(nll + out.kl.sum(0)).mean())


def test_the_fast_path_refuses_a_subclass_that_it_would_train_as_plain_draw():
    with pytest.raises(ValueError, match="fast=False"):
        make_fast(_Tinted(TINY))
    with pytest.raises(ValueError, match="fast=False"):
        make_fast(GlimpseClassifier(ClassifierConfig(T=2, enc_size=8)))


def test_a_subclass_trained_without_the_fast_path_trains_its_extra_parameter(mnist_train_2k):
    model = _Tinted(TINY)
    with pytest.raises(ValueError, match="fast=False"):
        train(model, mnist_train_2k, steps=2, fast=True, progress=False)
    train(model, mnist_train_2k, steps=5, progress=False)
    assert model.tint.item() != 0.0  # it received gradients and moved
