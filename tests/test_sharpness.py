"""Sharpness measures and what the blur page says in words: a run's name is shown as text (issue 32, case 2)."""

import json
import math

import numpy as np
import pytest
import torch

from drawviz import report, sharpness

HOSTILE = "<img src=y onerror=alert(4)>![x](http://evil.example/p.png)"


def test_a_hostile_run_name_reaches_the_disagreements_as_text():
    notes = sharpness.disagreements(
        {
            HOSTILE: {"samples/laplacian_variance": 0.5, "samples/high_frequency_share": 1.5},
            "mnist": {"samples/laplacian_variance": 0.9, "samples/high_frequency_share": 0.8},
        }
    )
    text = " ".join(notes)
    assert notes and "<img" not in text and "![x](http" not in text and "&lt;img" in text


def test_the_index_escapes_a_config_field_from_a_notebook_record(tmp_path):
    out = tmp_path / "out"
    (out / "r").mkdir(parents=True)
    (out / "r" / "train.json").write_text(json.dumps({"nll_bound": 80.0, "config": {"T": HOSTILE}}))
    from drawviz.metrics import Trained

    result = {
        "run": "r",
        "dataset": "mnist-sample",
        "notebooks": {},
        "status": "ok",
        "train": Trained.read(out / "r" / "train.json"),
    }
    index = report.write_index([result], out, None, tmp_path / "runs.yaml", None).read_text()
    assert "<img src=y" not in index and "&lt;img src=y" in index


# ----------------------------------------------------------------------------- error_by_band: the reconstruction
# error by radial spatial-frequency band, on errors whose spectrum is known


def _images(shape=(4, 3, 32, 24), seed=0):
    return np.random.default_rng(seed).uniform(size=shape)


def _wave(H, W, a, b):
    """cos 2π(a i / H + b j / W): a cycles down the rows, b across the columns; radius hypot(a/H, b/W) / ½ of Nyquist."""
    i, j = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    return np.cos(2 * np.pi * (a * i / H + b * j / W))


@pytest.mark.parametrize(
    "a, b, band",
    [
        (2, 1, "[1/8, 1/4)"),
        (5, 3, "[1/4, 1/2)"),
        (1, 0, "[0, 1/8)"),
        (16, 12, "[1/2, 1.41]"),
        (6, 5, "[1/2, 1.41]"),
        (8, 0, "[1/2, 1.41]"),
    ],
)  # (6, 5): radially beyond ½ Nyquist though neither axis is; (8, 0): on an edge, which opens the band above
def test_a_sinusoidal_error_lands_entirely_in_its_band(a, b, band):
    x = _images()
    N, C, H, W = x.shape
    error = 0.2 * _wave(H, W, a, b)
    x_hat = x.copy()
    x_hat[:, 1] -= error  # channel 1 only
    t = sharpness.error_by_band(x, x_hat)
    radius = math.hypot(a / H, b / W) / 0.5
    hit = t[(t["band"] == band) & (t["channel"] == 1)]
    assert len(hit) == 1 and hit["low"].item() <= radius <= hit["high"].item()
    assert hit["share"].item() == pytest.approx(1.0, abs=1e-12)
    assert hit["error_energy"].item() == pytest.approx(N * (error**2).sum())
    assert t.drop(hit.index)["error_energy"].abs().max() < 1e-9


def test_a_constant_offset_is_all_in_the_lowest_band():
    x = _images()
    t = sharpness.error_by_band(x, x + 0.1)
    lowest = t[t["low"] == 0]
    assert list(lowest["channel"]) == [0, 1, 2] and lowest["share"].sum() == pytest.approx(1.0)
    assert lowest["error_energy"].to_numpy() == pytest.approx([0.01 * 4 * 32 * 24] * 3)
    assert lowest["share"].to_numpy() == pytest.approx([1 / 3] * 3)


def test_bands_add_up_to_the_total_squared_error_and_the_image_energy():
    x, x_hat = _images(seed=1), _images(seed=2)
    t = sharpness.error_by_band(torch.from_numpy(x).float(), torch.from_numpy(x_hat).float(), batch=3)  # 2 batches
    assert len(t) == 4 * 3 and list(t.columns) == [
        "band", "low", "high", "channel", "error_energy", "share", "image_energy", "image_share"
    ]  # fmt: skip
    total = ((torch.from_numpy(x).float() - torch.from_numpy(x_hat).float()).double() ** 2).sum().item()
    assert t["error_energy"].sum() == pytest.approx(total, rel=1e-9)
    assert t["image_energy"].sum() == pytest.approx((torch.from_numpy(x).float().double() ** 2).sum().item(), rel=1e-9)
    assert t["share"].sum() == pytest.approx(1.0) and t["image_share"].sum() == pytest.approx(1.0)
    # white noise spreads by the bands' areas: the top band (every bin at or beyond ½ Nyquist) holds most of it
    assert t.groupby("band", sort=False)["share"].sum().idxmax() == "[1/2, 1.41]"
    # the image's own energy is mostly DC (mean intensity ½): the lowest band
    assert t.groupby("band", sort=False)["image_share"].sum().iloc[0] > 0.7


def test_error_in_one_channel_stays_in_that_channel():
    x = _images()
    x_hat = x.copy()
    x_hat[:, 2] = _images(seed=3)[:, 2]
    t = sharpness.error_by_band(x, x_hat, bands=(0, 0.5, 1))
    assert list(t["band"]) == ["[0, 1/2)"] * 3 + ["[1/2, 1.41]"] * 3
    by_channel = t.groupby("channel")["error_energy"].sum()
    assert by_channel[0] == by_channel[1] == 0
    assert by_channel[2] == pytest.approx(((x - x_hat) ** 2).sum())
    assert t.groupby("channel")["image_energy"].sum().to_numpy() == pytest.approx((x**2).sum(axis=(0, 2, 3)))


def test_no_error_has_no_share_and_bad_bands_are_refused():
    x = _images()
    t = sharpness.error_by_band(x[0], x[0])  # one image (C, H, W)
    assert (t["error_energy"] == 0).all() and (t["share"] == 0).all()
    for bands in ((0.1, 0.5, 1), (0, 0.5, 0.5), (0,)):
        with pytest.raises(ValueError, match="bands"):
            sharpness.error_by_band(x, x, bands=bands)
    with pytest.raises(ValueError, match="one shape"):
        sharpness.error_by_band(x, x[:2])
