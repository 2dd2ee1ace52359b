"""drawviz.geometry says where a window acts, in the paper's 1-based pixels; the figures draw exactly that."""

from types import SimpleNamespace

import numpy as np
import pytest

from drawviz import diagnostics, geometry, plots
from drawviz.attention import Window


def _trace(g_x, g_y, delta, sigma2, gamma, N=5, size=28, ops=("read", "write")):
    """A stand-in Trace of T = 1 step and one sample whose read and write windows are the one given."""
    field = lambda v: np.array([[v]], dtype=np.float64)  # (T, batch) = (1, 1)
    w = Window(field(g_x), field(g_y), field(delta), field(sigma2), field(gamma))
    return SimpleNamespace(
        windows={op: w for op in ops},
        glimpse=np.zeros((1, 1, 2, 1, N, N)),
        write_patch=np.zeros((1, 1, 1, N, N)),
        canvas=np.zeros((1, 1, 1, size, size)),
        x=None,
        T=1,
        batch=1,
        mode="generation",
    )


def test_a_window_covers_centre_plus_minus_n_delta_over_2_in_imshow_coordinates():
    trace = _trace(14.5, 14.5, delta=2.0, sigma2=1.5**2, gamma=1.0)
    assert geometry.grid_n(trace, "read") == geometry.grid_n(trace, "write") == 5
    assert geometry.ops(trace) == ["read", "write"]
    w = geometry.window(trace, "write", 1, 0)
    assert (w["g_x"], w["g_y"], w["delta"], w["sigma"], w["gamma"]) == (14.5, 14.5, 2.0, 1.5, 1.0)
    # 1-based pixel 14.5 is imshow's 13.5; N·δ/2 = 5 on each side
    assert geometry.centre(w) == (13.5, 13.5)
    (x0, y0), size = geometry.square(w, 5)
    assert (x0, y0, x0 + size, y0 + size) == (8.5, 8.5, 18.5, 18.5)
    # the extent holds the square and its line: σ more on every side
    assert geometry.extent(trace, "write", 1, 0) == (7.0, 20.0, 7.0, 20.0)
    # the figures draw that square
    fig = plots.plot_glimpses(trace, steps=[1])
    rect = [p for p in fig.axes[0].patches if p.get_label() == "write"][0]
    assert (rect.get_x(), rect.get_y(), rect.get_width(), rect.get_height()) == (8.5, 8.5, 10.0, 10.0)


def test_the_footprint_is_n_delta_plus_two_sigma_over_every_step_and_sample():
    assert geometry.footprint(5, 2.0, 1.5) == 13.0
    delta, sigma = np.array([[1.0, 2.0], [0.5, 3.0]]), np.array([[0.0, 1.0], [2.0, 0.5]])  # (T, batch)
    np.testing.assert_array_equal(geometry.footprint(4, delta, sigma), 4 * delta + 2 * sigma)
    trace = _trace(14.5, 14.5, delta=2.0, sigma2=1.5**2, gamma=1.0)
    np.testing.assert_array_equal(geometry.footprints(trace, "read"), [[13.0]])
    np.testing.assert_array_equal(diagnostics.footprints(trace, "read"), [[13.0]])


def test_a_centre_is_off_the_image_outside_half_a_pixel_beyond_the_edge_pixels():
    assert geometry.off_image(0.4, 14.0, 28, 28)
    assert not geometry.off_image(0.5, 14.0, 28, 28)
    assert not geometry.off_image(28.5, 28.5, 28, 28)
    assert geometry.off_image(14.0, 28.6, 28, 28)
    g = np.array([[0.4, 0.5], [28.5, 28.6]])  # (T, batch)
    np.testing.assert_array_equal(geometry.off_image(g, np.full_like(g, 14.0), 28, 28), [[True, False], [False, True]])


def test_the_stroke_grows_with_sigma_and_gamma():
    style = lambda sigma, gamma, gmax=2.0: geometry.stroke_style({"sigma": sigma, "gamma": gamma}, gmax)
    assert style(0.0, 2.0) == {"linewidth": 0.6, "alpha": 1.0}
    assert style(1.0, 1.0) == pytest.approx({"linewidth": 1.6, "alpha": 0.625})
    assert style(10.0, 0.0)["linewidth"] == 6.0 and style(10.0, 0.0)["alpha"] == 0.25
    assert style(1.0, 1.0, gmax=0.0)["alpha"] == 1.0
    trace = _trace(14.5, 14.5, delta=2.0, sigma2=1.0, gamma=3.0)
    assert geometry.gamma_max(trace, "write", 0) == 3.0


def test_a_trace_without_that_attention_is_refused_clearly():
    trace = _trace(14.5, 14.5, delta=2.0, sigma2=1.0, gamma=1.0, ops=("write",))
    trace.glimpse = None
    assert geometry.ops(trace) == ["write"]
    with pytest.raises(ValueError, match="no read attention"):
        geometry.grid_n(trace, "read")


def test_edit_area_lives_in_geometry_alone():
    assert not hasattr(diagnostics, "edit_area")  # no re-export door: callers import it from its home
    update = np.zeros((1, 4, 4))
    update[0, 0, 0] = 1.0
    assert geometry.edit_area(update) == 1 / 16
    assert np.isnan(geometry.edit_area(np.zeros((1, 4, 4))))
