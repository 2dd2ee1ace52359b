"""Attention diagnostics on hand-built traces whose answers are known, and on a real model."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

from drawviz import diagnostics, geometry, plots, probes, style
from drawviz.model import DRAW, DrawConfig
from drawviz.attention import Window
from drawviz.trace import Trace

W = H = 28


def _trace(windows: dict, T: int, batch: int, N: int = 5, edit=None) -> Trace:
    """A trace with given windows (Windows of (T, batch) arrays) on a 28×28 canvas."""
    return Trace(
        mode="generation",
        frame=pd.DataFrame(),
        canvas=np.zeros((T, batch, 1, H, W), np.float32),
        write_patch=np.zeros((T, batch, 1, N, N), np.float32),
        glimpse=np.zeros((T, batch, 2, 1, 2, 2), np.float32),
        windows=windows,
        edit_area=edit,
    )


def _window(g_x, g_y, delta, sigma2, gamma=1.0, T=10, batch=4) -> Window:
    return Window(*(np.full((T, batch), v, np.float32) for v in (g_x, g_y, delta, sigma2, gamma)))


def test_a_fixed_small_window_has_a_small_footprint_and_no_spread():
    # N = 5 filters 1 px apart with σ = 1: N·δ + 2σ = 7 px = a quarter of the width
    trace = _trace({"write": _window(14.5, 14.5, 1.0, 1.0)}, T=10, batch=4)
    row = diagnostics.summary(trace).set_index("op").loc["write"]
    assert row.footprint_px == pytest.approx(7.0)
    assert row.footprint == pytest.approx(0.25)
    assert row.spread_px == pytest.approx(0.0)  # the same window for every image: input-independent
    assert row.off_image == 0
    assert row.spread_uniform_px == pytest.approx(28 / math.sqrt(12))


def test_a_whole_image_window_has_footprint_one_or_more():
    # δ̃ = 1: the grid spans (A−1)/(N−1) · N = 33.75 px, more than the image, plus 2σ
    trace = _trace({"write": _window(14.5, 14.5, 27 / 4, 9.0)}, T=10, batch=4)
    assert diagnostics.summary(trace).set_index("op").loc["write"].footprint >= 1


def test_an_off_image_centre_is_counted_and_spread_is_measured_across_images():
    w = _window(14.5, 14.5, 1.0, 1.0, T=10, batch=4)
    w.g_x[:, 0] = 40.0  # image 0 looks right of the image at every step
    w.g_y[:, 1] = 0.2  # image 1 above it
    trace = _trace({"write": w}, T=10, batch=4)
    s = diagnostics.summary(trace).set_index("op").loc["write"]
    assert s.off_image == pytest.approx(0.5)
    gx, gy = w.g_x[0], w.g_y[0]
    assert s.spread_px == pytest.approx(math.sqrt((gx.std() ** 2 + gy.std() ** 2) / 2), rel=1e-5)
    steps = diagnostics.per_step(trace)
    assert (steps[steps.op == "write"].off_image == 0.5).all()
    assert len(steps[steps.op == "write"]) == 10


def test_the_first_steps_are_left_out_of_the_summary():
    w = _window(14.5, 14.5, 1.0, 1.0, T=10, batch=2)
    w.g_x[0] = 100.0  # only step 1 is off the image
    trace = _trace({"write": w}, T=10, batch=2)
    assert diagnostics.summary(trace, skip=0.1).set_index("op").loc["write"].off_image == 0
    assert diagnostics.summary(trace, skip=0.0).set_index("op").loc["write"].off_image == pytest.approx(0.1)


def test_edit_area_of_a_single_pixel_a_uniform_change_and_no_change():
    update = np.zeros((3, 1, H, W))
    update[0, 0, 5, 5] = 3.0  # one pixel: the smallest area
    update[1] = 0.7  # the same change everywhere: 90 % of the pixels hold 90 % of it
    area = geometry.edit_area(update)
    assert area[0] == pytest.approx(1 / (H * W))
    assert area[1] == pytest.approx(math.ceil(0.9 * H * W) / (H * W), abs=1 / (H * W))
    assert math.isnan(area[2])
    # the sign does not matter, channels are summed per pixel
    colour = np.zeros((2, 3, 4, 4))
    colour[0, :, 0, 0] = [1, -1, 1]
    colour[1, 0, :2] = -1
    assert geometry.edit_area(colour).tolist() == [1 / 16, 8 / 16]  # 8 equal pixels: all 8 needed


def _model(attention: bool) -> DRAW:
    torch.manual_seed(0)
    return DRAW(DrawConfig(T=5, enc_size=32, dec_size=32, z_size=8, attention=attention))


def test_a_model_without_attention_edits_the_whole_image_and_has_no_windows(mnist_test):
    trace = probes.record(_model(False), mnist_test.images[:8])
    assert trace.edit_area.shape == (5, 8)
    assert (trace.edit_area > 0.5).all()  # a full write: the change is spread over the image
    summary = diagnostics.summary(trace, reference=0.9)
    assert list(summary.op) == ["canvas"] and summary.edit_area_reference.iloc[0] == 0.9


def test_edit_area_from_the_trace_equals_the_canvas_change(mnist_test):
    model = _model(True)
    x = mnist_test.images[:4]
    logits = []
    model(x, generator=torch.Generator().manual_seed(0), tap=lambda n, t, v: logits.append(v) or v if n == "canvas" else v)
    c = torch.stack([model.c0.expand_as(logits[0])] + logits).detach().numpy()
    expected = geometry.edit_area(np.diff(c, axis=0))
    trace = probes.record(model, x, seed=0)
    np.testing.assert_allclose(trace.edit_area, expected)
    gen = probes.record_generation(model, 3)
    assert gen.edit_area.shape == (5, 3) and np.isfinite(gen.edit_area).all()


def test_per_step_has_one_row_per_step_and_op(mnist_test):
    trace = probes.record(_model(True), mnist_test.images[:6])
    steps = diagnostics.per_step(trace)
    assert steps.groupby("op").size().to_dict() == {"canvas": 5, "read": 5, "write": 5}
    assert plots.plot_diagnostics(steps, width=28) is not None


def test_the_drawing_figure_keeps_an_off_image_window_visible():
    w = _window(14.5, 14.5, 1.0, 1.0, T=4, batch=2)
    w.g_x[2, 1], w.g_y[2, 1] = 45.0, -12.0  # far right of and above the image
    trace = _trace({"write": w}, T=4, batch=2)
    fig = plots.plot_drawing(trace, samples=[0, 1], steps=[1, 2, 3, 4])
    ax = fig.axes[0]
    x0, x1 = sorted(ax.get_xlim())
    y0, y1 = sorted(ax.get_ylim())
    # imshow coordinates: centre g − 1, square ± N·δ/2, widened by σ
    assert x1 >= 45 - 1 + 2.5 + 1 and y0 <= -12 - 1 - 2.5 - 1
    assert all(a.get_xlim() == ax.get_xlim() for a in fig.axes)  # one view for every panel
    assert "1 of 8 write windows" in fig._supxlabel.get_text()
    assert fig.axes[0].patches[-1].get_edgecolor()[:3] == matplotlib.colors.to_rgb(style.OP_COLOURS["write"])


def test_a_pen_keeping_one_order_for_every_digit_spreads_under_3_px_on_real_digits(mnist_test):
    # the centre-spread target (>= 3 px) against pens that need no model, on the card's 256 binarised digits
    from drawviz import data

    x = data.binarize(mnist_test.balanced(256, seed=0).images, seed=0)
    refs = diagnostics.spread_references(x).set_index("pen").spread_px
    assert refs["ink centroid"] < 1.0  # MNIST digits are centred on their centre of mass
    assert 2.0 < refs["clockwise sweep"] < 3.0 and 2.0 < refs["reading-order sweep"] < 3.0
    assert refs["anywhere on the ink"] > 4.0  # no order shared across digits: most of the digit's extent
    assert refs["anywhere on the ink"] < 28 / math.sqrt(12)  # still on the digit, not uniform over the frame


def test_spread_references_need_ink_in_every_image():
    x = torch.zeros(3, 1, 8, 8)
    x[:2, 0, 2:5, 3] = 1.0
    with pytest.raises(ValueError, match="each with an ink pixel"):
        diagnostics.spread_references(x)


def test_ink_extent_is_the_box_around_the_ink():
    x = torch.zeros(2, 1, 10, 20)
    x[0, 0, 2:7, 4:9] = 0.8  # a 5 x 5 box: a quarter of the width, half the height
    x[1, 0, 0:10, 0:10] = 0.3  # the left half
    e = diagnostics.ink_extent(x)
    assert e["width"] == pytest.approx((5 / 20 + 10 / 20) / 2)
    assert e["height"] == pytest.approx((5 / 10 + 10 / 10) / 2)
    assert e["ink"] == pytest.approx((25 / 200 + 100 / 200) / 2)
    with pytest.raises(ValueError, match="ink .a pixel above 0.1. in every image"):
        diagnostics.ink_extent(torch.zeros(2, 1, 4, 4))


def test_a_garment_fills_more_of_the_frame_than_a_digit(mnist_test, dataset_root):
    # why one footprint target does not fit both: the subject a window must cover is larger on Fashion-MNIST
    from drawviz import data

    fashion = data.load("fashion-mnist", "test", dataset_root("fashion-mnist")).balanced(256, seed=0).images
    digit, garment = diagnostics.ink_extent(mnist_test.balanced(256, seed=0).images), diagnostics.ink_extent(fashion)
    assert digit["width"] < 0.65 and digit["height"] < 0.8  # digits sit in the 20 x 20 centre of 28 x 28
    assert garment["height"] > 0.95 and garment["width"] > digit["width"] + 0.15
    assert garment["ink"] > 2 * digit["ink"]


def test_read_error_offsets_give_one_row_per_image_and_step_with_the_error_peak_on_the_image(mnist_test):
    trace = probes.record(_model(True), mnist_test.images[:4], seed=0)
    offsets = diagnostics.read_error_offsets(trace)
    assert len(offsets) == trace.T * trace.batch
    assert {"distance", "inside", "err_x", "err_y", "g_x", "g_y", "inside_by_chance"} <= set(offsets)
    assert offsets["err_x"].between(1, 28).all() and offsets["err_y"].between(1, 28).all()
    with pytest.raises(ValueError, match="attention"):
        diagnostics.read_error_offsets(probes.record(_model(False), mnist_test.images[:2]))


def test_read_error_offsets_find_the_peak(mnist_test):
    recon = probes.record(_model(True), mnist_test.images[:4], seed=0)
    trace = recon.replace(x_hat=np.zeros_like(recon.x_hat))
    trace.x_hat[:, :, :, 9, 19] = 1.0  # error peak at image row 9, column 19: pixel (a, b) = (20, 10)
    offsets = diagnostics.read_error_offsets(trace)
    assert (offsets["err_x"] == 20).all() and (offsets["err_y"] == 10).all()


def test_a_window_larger_than_the_image_keeps_the_canvas_large_and_is_drawn_dashed_where_the_view_cuts_it():
    w = _window(14.5, 14.5, 1.0, 1.0, T=4, batch=2)
    w.delta[0, :] = 30.0  # step 1: a wash 150 px wide over a 28 px image, as a caption model's first step
    trace = _trace({"write": w}, T=4, batch=2)
    fig = plots.plot_drawing(trace, samples=[0, 1], steps=[1, 2, 3, 4])
    x0, x1 = sorted(fig.axes[0].get_xlim())
    assert x1 - x0 < 28 + 4  # the view is the image's, not the wash's
    assert fig.axes[0].patches[-1].get_linestyle() == "--" and fig.axes[1].patches[-1].get_linestyle() == "-"
    assert "2 larger than the image, dashed" in fig._supxlabel.get_text()
