"""benchmarks/where_the_bits_go.py: a colour model's bits split by frequency band, channel, step and latent unit,
each split adding up to the whole it splits."""

import importlib.util
import math
from pathlib import Path

import pytest

from drawviz.checkpoints import save_checkpoint
from drawviz.model import DRAW, DrawConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("where_the_bits_go", ROOT / "benchmarks" / "where_the_bits_go.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_splits_add_up_to_the_bound(tmp_path, bench):
    model = DRAW(DrawConfig(height=32, width=32, channels=3, T=3, enc_size=16, dec_size=16, z_size=4, likelihood="logistic"))
    path = save_checkpoint(tmp_path / "c.pt", model=model, train_args={"dataset": "cifar10-sample"})
    m = bench.measure(path, None, 12)
    assert m["test_images"] == 12 and m["units"] == 4 and len(m["steps"]) == 3
    # the channels' bits/dim average to the reconstruction's; the bands' shares sum to 1
    assert sum(m["channels_bits_per_dim"].values()) / 3 == pytest.approx(m["reconstruction_bits_per_dim"], rel=1e-5)
    assert sum(b["error_share"] for b in m["bands"]) == pytest.approx(1) and m["bands"][0]["low"] == 0
    # the units' KL, summed, is the KL of the bound (nats per image over all steps)
    kl_nats = sum(m["kl_per_unit_nats"]) / (32 * 32 * 3 * math.log(2))
    assert kl_nats == pytest.approx(m["kl_bits_per_dim"], rel=1e-3)
    bench.figure(m)  # draws


def test_a_model_of_binary_images_is_refused(tmp_path, bench):
    path = save_checkpoint(tmp_path / "m.pt", model=DRAW(DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2)))
    with pytest.raises(SystemExit, match="likelihood logistic"):
        bench.measure(path, None, 4)
