"""Training settings: every interval is checked where it is set, so none can hang a run (issue 32, case 6)."""

import pytest

from drawviz.recipe import TrainConfig


@pytest.mark.parametrize(
    "setting",
    [
        {"eval_every_minutes": -1},
        {"eval_every_minutes": 0},
        {"eval_every_minutes": float("nan")},
        {"eval_every": -1},
        {"eval_every": 0},
        {"checkpoint_every": 0},
    ],
)
def test_an_interval_that_is_not_positive_is_refused_with_its_name(setting):
    (name,) = setting
    with pytest.raises(ValueError, match=name):
        TrainConfig(**setting)


def test_positive_intervals_and_none_are_kept():
    config = TrainConfig(eval_every=50, eval_every_minutes=2.5, checkpoint_every=10)
    assert (config.eval_every, config.eval_every_minutes, config.checkpoint_every) == (50, 2.5, 10)
    assert TrainConfig(eval_every=None, eval_every_minutes=None).eval_every is None
