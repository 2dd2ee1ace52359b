"""The read-only DRAW classifier (paper section 4.1): glimpses through DRAW's own read, learning from labels
through the project's training loop, evaluated by error and cross-entropy."""

import pytest
import torch

from drawviz import data
from drawviz.attention import Read
from drawviz.classifier import ClassifierConfig, GlimpseClassifier
from drawviz.evaluation import evaluate
from drawviz.quantities import GLIMPSE, READ_WINDOW
from drawviz.train import train


def test_its_glimpse_is_the_generators_read_of_the_image_alone():
    model = GlimpseClassifier(ClassifierConfig(T=3, enc_size=8))
    assert type(model.read) is Read  # the generator's read attention, not a copy
    x = torch.rand(4, 1, 100, 100)
    seen = {}
    model(x, tap=lambda name, t, v: seen.setdefault((name, t), v))
    window, glimpse = seen[(READ_WINDOW, 1)], seen[(GLIMPSE, 1)]
    assert glimpse.shape == (4, 1, 1, 12, 12)
    # DRAW's glimpse of (x, x̂) through the same window: its image half is the classifier's glimpse
    both = model.read.glimpse(x, torch.zeros_like(x), window)
    assert torch.allclose(both[:, :1], glimpse)


def test_it_learns_to_classify_cluttered_digits_from_their_labels():
    images = data.load("cluttered-mnist-sample", "train")  # 800 cluttered digits
    result = train(ClassifierConfig(T=4, enc_size=64), images, None, steps=150, lr=3e-3, binarize=None, progress=False)
    first, last = result.history.loss.iloc[:10].mean(), result.history.loss.iloc[-10:].mean()
    assert first > 2.2 and last < first - 0.4  # from chance (log 10 = 2.30 nats) down
    measured = evaluate(result.model, images)
    assert measured["error"] < 0.75 and measured["cross_entropy"] == measured["nll_bound"]


def test_evaluation_reports_error_and_cross_entropy_and_needs_labels():
    model = GlimpseClassifier(ClassifierConfig(T=2, enc_size=8))
    images = data.load("cluttered-mnist-sample", "test")
    measured = evaluate(model, images)
    assert set(measured) == {"nll_bound", "error", "cross_entropy", "images"} and measured["images"] == 200
    assert 0 <= measured["error"] <= 1
    with pytest.raises(ValueError, match="labelled images"):
        evaluate(model, images.images)


def test_training_writes_the_test_error_into_the_history(tmp_path):
    images = data.load("cluttered-mnist-sample", "train")
    test = data.load("cluttered-mnist-sample", "test")
    result = train(ClassifierConfig(T=2, enc_size=8), images, test, steps=4, eval_every=2, binarize=None, progress=False)
    tested = result.history.dropna(subset=["test_error"])
    assert list(tested.step) == [2, 4] and tested.test_error.between(0, 1).all()


def test_fresh_scenes_show_new_clutter_each_epoch_and_resume_exactly(tmp_path):
    images = data.load("cluttered-mnist-sample", "train").subset(128)  # 2 batches of 64: an epoch every 2 steps
    config = ClassifierConfig(T=2, enc_size=8)
    seen = []
    original = type(images).redrawn

    def spy(self, seed):
        seen.append(list(seed))
        return original(self, seed)

    kwargs = dict(batch_size=64, binarize=None, progress=False, fresh_scenes=True, checkpoint_every=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(images), "redrawn", spy)
        whole = train(config, images, None, steps=6, checkpoint=tmp_path / "whole.pt", **kwargs)
    assert seen == [[2014, 0, 1], [2014, 0, 2]]  # epoch 0 is the set as built; epochs 1 and 2 drawn afresh
    train(config, images, None, steps=3, checkpoint=tmp_path / "split.pt", **kwargs)  # stopped mid-epoch 1
    split = train(config, images, None, steps=6, checkpoint=tmp_path / "split.pt", **kwargs)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, split.model.state_dict()[name]), name
    plain = train(config, images, None, steps=6, batch_size=64, binarize=None, progress=False)
    assert any(not torch.equal(v, plain.model.state_dict()[k]) for k, v in whole.model.state_dict().items())


def test_fresh_scenes_need_a_scene_set():
    with pytest.raises(ValueError, match="scene set"):
        config = ClassifierConfig(height=28, width=28, T=2, enc_size=8)
        train(config, data.load("mnist-sample", "train"), None, steps=1, fresh_scenes=True, progress=False)
