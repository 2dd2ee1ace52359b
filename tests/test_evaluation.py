"""Evaluation: a test bound that would be silently wrong is a clear error instead (issue 14)."""

import pytest
import torch

from drawviz.evaluation import TrainingDiverged, evaluate
from drawviz.model import DRAW, DrawConfig

TINY = DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2, read_n=2, write_n=2)


def test_a_negative_or_zero_evaluation_batch_is_refused():
    x = torch.rand(4, 1, 28, 28)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="batch_size"):
            evaluate(DRAW(TINY), x, batch_size=bad)


def test_a_model_with_nan_weights_has_no_test_bound():
    model = DRAW(TINY)
    with torch.no_grad():
        model.c0.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="not finite"):
        evaluate(model, torch.rand(4, 1, 28, 28))
