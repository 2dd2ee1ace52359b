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
