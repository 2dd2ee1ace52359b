"""Plot functions return labelled Figures; sharpness measures order sharp above blurred."""

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from scipy.ndimage import gaussian_filter

from drawviz import diagnostics, plots, probes, sharpness
from drawviz.model import DRAW, DrawConfig

T = 5


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DRAW(DrawConfig(T=T, enc_size=32, dec_size=32, z_size=8)).eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(6, 1, 28, 28, generator=g) > 0.7).float()


@pytest.fixture(scope="module")
def recon(model, images):
    return probes.record(model, images, seed=0)


@pytest.fixture(scope="module")
def prior(model):
    return probes.record_generation(model, 6, seed=0)


def _check(fig):
    assert isinstance(fig, Figure)
    assert fig.axes, "a figure without axes"
    titled = [ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""]
    assert any(titled), "a figure should say what it shows"
    fig.canvas.draw()  # renders without error
    assert plt.get_fignums() == [], "plots must not leave pyplot figures open (nothing is shown twice)"


def test_history_and_kl(recon):
    h = pd.DataFrame(
        {
            "step": np.arange(1, 41),
            "loss": np.linspace(300, 100, 40),
            "nll": np.linspace(250, 70, 40),
            "kl": np.full(40, 30.0),
            "test_nll_bound": [np.nan] * 19 + [150.0] + [np.nan] * 19 + [120.0],
        }
    )
    _check(plots.plot_history(h, title="mnist"))
    _check(plots.plot_history(h.assign(test_nll_bound=np.nan)))
    _check(plots.plot_kl_per_step(recon))
    _check(plots.plot_kl_per_step(np.random.rand(T, 4)))


def test_attention_figures(recon, prior):
    for trace in (recon, prior):
        _check(plots.plot_trajectory(trace, samples=(0, 1, 99)))
        _check(plots.plot_glimpses(trace, steps=[1, T], sample=1))
    fig = plots.plot_trajectory(recon, samples=(0, 1))
    assert len(fig.axes) == 2 * 2 + 1, "read and write rows, one column per image, and a step colorbar"
    assert "step t" in fig.axes[-1].get_ylabel()
    _check(fig)
    _check(plots.plot_attention_params(pd.concat([recon.frame, prior.frame])))


def test_glimpse_rectangle_is_centre_plus_minus_n_delta_over_2(recon):
    fig = plots.plot_glimpses(recon, steps=[2], sample=0)
    ax = fig.axes[1]
    read = [p for p in ax.patches if p.get_label() == "read"][0]
    g_x, g_y, delta = recon.windows["read"].at(1, 0)[:3]
    N = recon.glimpse.shape[-1]
    # 1-based pixel a sits at image column a - 1
    assert read.get_x() == pytest.approx(g_x - 1 - N * delta / 2, rel=1e-5)
    assert read.get_y() == pytest.approx(g_y - 1 - N * delta / 2, rel=1e-5)
    assert read.get_width() == pytest.approx(N * delta, rel=1e-5)


def test_error_figures(recon, prior):
    _check(plots.plot_error_grid(recon, samples=(0, 1, 2)))
    _check(plots.plot_error_magnitude(recon))
    offsets = diagnostics.read_error_offsets(recon)
    _check(plots.plot_read_on_error(recon, offsets, sample=0))
    _check(plots.plot_read_vs_error(offsets))
    with pytest.raises(ValueError, match="reconstruction"):
        plots.plot_error_grid(prior)


def test_samples_and_sharpness_figures(model, images):
    sets, steps = sharpness.blur_measurements(model, images, seed=0)
    assert set(sets) == {"test images", "reconstructions", "samples"}
    assert set(steps["source"]) == {"reconstructions", "samples"} and steps["step"].max() == T
    _check(plots.plot_samples(sets, n=4, title="test images, reconstructions, samples"))
    table = sharpness.summary(sets)
    _check(plots.plot_sharpness(table))
    _check(plots.plot_sharpness(pd.concat({"a": table, "b": table}, names=["dataset"])))
    _check(plots.plot_sharpness_per_step(steps, table.loc["test images"].to_dict()))


def test_sharpness_orders_sharp_above_blurred():
    rng = np.random.default_rng(0)
    sharp = (rng.random((8, 1, 28, 28)) > 0.5).astype(float)
    blurred = gaussian_filter(sharp, sigma=(0, 0, 1.5, 1.5))
    assert (sharpness.laplacian_variance(blurred) < sharpness.laplacian_variance(sharp)).all()
    assert (sharpness.high_frequency_share(blurred) < sharpness.high_frequency_share(sharp)).all()
    flat = np.full((2, 3, 32, 32), 0.5)
    assert np.allclose(sharpness.laplacian_variance(flat), 0)
    assert np.allclose(sharpness.high_frequency_share(flat), 0)
    share = sharpness.high_frequency_share(sharp)
    assert ((share >= 0) & (share <= 1)).all()
    # per step: (T, B, C, H, W) -> T * B rows
    assert len(sharpness.per_step(np.stack([blurred, sharp]))) == 2 * 8
    table = sharpness.summary({"test images": sharp, "samples": blurred})
    r = sharpness.ratios(table)
    assert r["samples/laplacian_variance"] < 1 and r["samples/high_frequency_share"] < 1


def test_high_frequency_share_of_a_pure_tone():
    a = np.arange(32)
    low = np.cos(2 * np.pi * 2 / 32 * a)[None, None, :].repeat(32, 1)[None]  # 2 cycles: far below Nyquist/2
    high = np.cos(np.pi * a)[None, None, :].repeat(32, 1)[None]  # at Nyquist
    assert sharpness.high_frequency_share(low)[0] == pytest.approx(0, abs=1e-9)
    assert sharpness.high_frequency_share(high)[0] == pytest.approx(1, abs=1e-9)


def test_a_figure_saves_as_png_and_pdf_that_open(tmp_path):
    from PIL import Image

    fig = plots.plot_kl_per_step(np.abs(np.random.default_rng(0).normal(size=(6, 5))))
    png = plots.save(fig, tmp_path / "figs" / "kl.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 300
    pdf = plots.save(fig, tmp_path / "kl.pdf")
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    with pytest.raises(ValueError, match=".png"):
        plots.save(fig, tmp_path / "kl.jpeg")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["kl.pdf", "kl.png"]  # no temp files


def test_the_kl_figure_shows_quantiles_that_never_go_below_zero():
    kl = np.random.default_rng(0).exponential(0.3, size=(5, 50))  # skewed: mean − sd < 0
    fig = plots.plot_kl_per_step(kl)
    lines = fig.axes[0].collections[-1]
    lows = np.array([seg[0][1] for seg in lines.get_segments()])
    assert (lows >= 0).all() and any("10–90 %" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_the_drawing_figure_shows_each_steps_window_and_counts_those_off_the_image(recon):
    import matplotlib.colors
    from matplotlib.patches import Rectangle

    from drawviz import geometry
    from drawviz.style import OP_COLOURS

    steps = [1, recon.T]
    fig = plots.plot_drawing(recon, samples=[0, 1], steps=steps)
    axes = np.array(fig.axes).reshape(2, len(steps))
    for i, sample in enumerate([0, 1]):
        for j, t in enumerate(steps):
            (red,) = [
                p
                for p in axes[i, j].patches
                if isinstance(p, Rectangle) and matplotlib.colors.to_hex(p.get_edgecolor()) == OP_COLOURS["write"]
            ]
            (x, y), size = geometry.square(geometry.window(recon, "write", t, sample), geometry.grid_n(recon, "write"))
            assert (red.get_x(), red.get_y(), red.get_width()) == pytest.approx((x, y, size), rel=1e-5)
    W = recon.canvas.shape[-1]
    off = sum(
        bool(geometry.off_image(recon.windows["write"].g_x[t - 1, s], recon.windows["write"].g_y[t - 1, s], W, W))
        for s in (0, 1)
        for t in steps
    )
    caption = fig._supxlabel.get_text()
    assert re.match(rf"{off} of 4 write windows shown have their centre off the image", caption), caption


def test_the_history_figure_plots_each_test_bound_where_it_was_measured_and_labels_the_last():
    h = pd.DataFrame(
        {
            "step": np.arange(1, 41),
            "loss": np.linspace(300, 100, 40),
            "nll": np.linspace(250, 70, 40),
            "kl": np.full(40, 30.0),
            "test_nll_bound": [np.nan] * 19 + [150.0] + [np.nan] * 19 + [120.0],
        }
    )
    fig = plots.plot_history(h, title="mnist")
    bound = fig.axes[1].lines[0]
    assert list(bound.get_xdata()) == [20, 40] and list(bound.get_ydata()) == [150.0, 120.0]
    assert [t.get_text() for t in fig.axes[1].texts] == ["120.0"]
    plt.close(fig)


def test_the_kl_figure_has_one_bar_per_step_of_the_mean_kl_and_says_the_total(recon):
    fig = plots.plot_kl_per_step(recon)
    bars = fig.axes[0].patches
    assert len(bars) == recon.T
    assert [b.get_height() for b in bars] == pytest.approx(recon.kl.mean(1).tolist(), rel=1e-6)
    assert f"total {recon.kl.mean(1).sum():.1f} nats, {recon.batch} images" in fig.axes[0].get_title()
    plt.close(fig)


def test_the_error_figure_plots_the_mean_error_of_each_step_and_the_error_left_at_the_end(recon):
    fig = plots.plot_error_magnitude(recon)
    line = fig.axes[0].lines[0]
    mean = np.abs(recon.x_hat).reshape(recon.T, recon.batch, -1).mean(-1).mean(1)
    assert list(line.get_xdata()) == list(range(1, recon.T + 1))
    assert line.get_ydata() == pytest.approx(mean, rel=1e-5)
    left = np.abs(recon.x - recon.canvas[-1]).mean()
    assert fig.axes[0].lines[1].get_ydata()[0] == pytest.approx(left, rel=1e-5)
    plt.close(fig)


def test_the_scale_canvas_figure_ranks_the_drawn_scale_against_the_error(recon):
    torch.manual_seed(0)
    config = DrawConfig(
        12, 10, 3, T=3, enc_size=16, dec_size=12, z_size=4, read_n=3, write_n=3, likelihood="logistic", scale_canvas=True
    )
    armed = DRAW(config).eval()
    with torch.no_grad():
        armed.write_scale.weight.normal_(0, 0.5)  # off zero, so s_T differs from pixel to pixel
    x = (torch.rand(5, 3, 12, 10, generator=torch.Generator().manual_seed(1)) * 255).round() / 255
    fig = plots.plot_scale_canvas(probes.record(armed, x, seed=0), range(3))
    assert isinstance(fig, Figure)
    assert re.search(
        r"rank correlation of s_T with the error, per image: median -?\d\.\d\d over 5 images", fig._suptitle.get_text()
    )
    assert [ax.get_title() for ax in fig.axes[:4]] == ["input x", "canvas σ(c_T)", "error |x − σ(c_T)|", "log-scale s_T"]
    with pytest.raises(ValueError, match="scale canvas"):  # the paper's model draws none: said in one line
        plots.plot_scale_canvas(recon)


def test_where_the_alignment_sits_is_one_bar_a_word_with_the_even_share_marked():
    from drawviz import asked, captions

    ids = captions.tokens(captions.caption(3, "left", 5))[None]
    alignment = np.zeros((4, 1, ids.shape[1]))
    alignment[:2, 0, 2], alignment[2:, 0, 6] = 1, 1  # on "3", then on "left"
    fig = plots.plot_word_weight(asked.weight_by_word(alignment, ids))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.patches) == len(captions.VOCABULARY)
    assert "on the digits' names 50 % of its weight, the places 50 %" in ax.get_title()
    assert sorted(p.get_width() for p in ax.patches)[-2:] == [50, 50]


def test_which_words_carry_each_digit_is_two_bars_a_word_with_the_free_model_and_chance_as_lines():
    from drawviz import asked

    rows = [{"position": p, "word": "(free)" if p < 0 else asked.PAIR_TEMPLATE[p], "first_right": 0.9 if p < 0 else 0.1,
             "second_right": 0.8 if p < 0 else 0.2, "right": 0.0, "drawings": 7} for p in range(-1, 12)]  # fmt: skip
    fig = plots.plot_held_words(pd.DataFrame(rows))
    ax = fig.axes[0]
    assert len(ax.patches) == 2 * 12
    assert sorted({round(line.get_ydata()[0]) for line in ax.lines}) == [10, 80, 90]
    assert "7 pair captions" in ax.get_title()
