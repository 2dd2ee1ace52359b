"""The read-only classifier's figures (paper section 4.1, Fig. 5) show what they claim: every glimpse a square
centre ± N·δ/2 on its image, the glimpses themselves, where it looks against chance, a confusion matrix that
counts each image once, the drawing order of two digits; its live scrubber steps through the glimpses; and
classify.ipynb runs top to bottom on the offline sample and writes its record."""

import re

import matplotlib.colors
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import papermill as pm
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from drawviz import data, geometry, looking, order, plots, probes
from drawviz.classifier import PAPER_TABLE_1, ClassifierConfig, GlimpseClassifier
from drawviz.metrics import Classification
from drawviz.report import NOTEBOOKS
from drawviz.style import OP_COLOURS

T = 4


@pytest.fixture(scope="module")
def scenes():
    return data.load("cluttered-mnist-sample", "test").subset(12)  # 100×100 cluttered digits, with their objects


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GlimpseClassifier(ClassifierConfig(T=T, enc_size=16)).eval()


@pytest.fixture(scope="module")
def trace(model, scenes):
    return probes.record(model, scenes.images, seed=0)


def _rendered(fig) -> Figure:
    assert isinstance(fig, Figure)
    fig.canvas.draw()  # renders without error
    assert plt.get_fignums() == [], "plots must not leave pyplot figures open (nothing is shown twice)"
    return fig


def _squares(ax, colour: str) -> list:
    hex_ = matplotlib.colors.to_hex(colour)
    return [p for p in ax.patches if isinstance(p, Rectangle) and matplotlib.colors.to_hex(p.get_edgecolor()) == hex_]


def test_a_classifier_trace_has_no_canvas_and_reads_n_by_n_glimpses(trace):
    # what the figures below rely on
    assert trace.canvas is None and trace.x_hat is None and "write" not in trace.windows
    assert trace.glimpse.shape == (T, 12, 1, 1, 12, 12) and trace.logits.shape == (12, 10)


def test_every_glimpse_is_a_numbered_green_square_centre_plus_minus_n_delta_over_2_and_the_digit_is_boxed(trace, scenes):
    samples = [0, 3, 5]
    fig = _rendered(plots.plot_glimpse_path(trace, samples, scenes.objects))
    digits = scenes.objects[scenes.objects["kind"] == "digit"].set_index("image")
    for ax, s in zip(fig.axes, samples):
        squares = _squares(ax, OP_COLOURS["read"])
        assert len(squares) == T, "one square per glimpse"
        for t, square in enumerate(squares, 1):
            (x, y), size = geometry.square(geometry.window(trace, "read", t, s), 12)
            assert (square.get_x(), square.get_y(), square.get_width(), square.get_height()) == pytest.approx(
                (x, y, size, size), rel=1e-5
            )
        assert sorted(int(t.get_text()) for t in ax.texts) == list(range(1, T + 1)), "numbered by glimpse order"
        (box,) = [p for p in ax.patches if p.get_gid() == "digit"]
        d = digits.loc[s]
        assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (d.x - 0.5, d.y - 0.5, d.width, d.height)
        said = int(trace.logits[s].argmax())
        assert ax.get_title() == f"image {s}: a {d.label}, says {said}"
        wrong = matplotlib.colors.to_hex(ax.title.get_color()) == "#d7191c"
        assert wrong == (said != d.label), "a wrong answer is marked red"
    # without the objects: the same squares, no digit box
    bare = _rendered(plots.plot_glimpse_path(trace, [0]))
    assert len(_squares(bare.axes[0], OP_COLOURS["read"])) == T
    assert not [p for p in bare.axes[0].patches if p.get_gid() == "digit"]


def test_the_glimpse_grid_shows_each_images_glimpses_in_order_on_one_scale_per_image(trace):
    samples = [1, 4]
    fig = _rendered(plots.plot_glimpse_patches(trace, samples))
    axes = np.array(fig.axes).reshape(len(samples), T + 1)
    for i, s in enumerate(samples):
        assert np.array_equal(axes[i, 0].images[0].get_array(), trace.x[s, 0]), "first the image itself"
        brightest = trace.glimpse[:, s, 0].max()
        for t in range(1, T + 1):
            shown = axes[i, t].images[0].get_array()
            assert shown.shape == (12, 12)
            assert np.allclose(shown, trace.glimpse[t - 1, s, 0, 0] / brightest)
        assert max(axes[i, t].images[0].get_array().max() for t in range(1, T + 1)) == pytest.approx(1)
    assert [axes[0, t].get_title() for t in range(1, T + 1)] == [f"t = {t}" for t in range(1, T + 1)]


def test_where_it_looks_shows_per_glimpse_distance_coverage_and_footprint_beside_chance(trace, scenes):
    looks = looking.where_it_looks(trace, scenes)
    table = looking.by_glimpse(looks)
    fig = _rendered(plots.plot_where_it_looks(looks, width=100))
    distance, covers, footprint = fig.axes
    model_line, chance_line = distance.lines[:2]
    assert list(model_line.get_xdata()) == list(range(1, T + 1))
    assert model_line.get_ydata() == pytest.approx(table["distance"].to_numpy())
    assert chance_line.get_ydata() == pytest.approx(table["chance_distance"].to_numpy())
    assert [b.get_height() for b in covers.patches] == pytest.approx(table["covers"].to_numpy())
    assert covers.lines[0].get_ydata() == pytest.approx(table["chance_covers"].to_numpy())
    assert footprint.lines[0].get_ydata() == pytest.approx(table["footprint"].to_numpy())
    assert footprint.lines[1].get_ydata()[0] == 100, "the frame's width, for scale"
    assert "12 images" in fig._suptitle.get_text()


def test_the_confusion_figure_counts_every_image_once_and_says_the_error(trace, scenes):
    labels, predicted = scenes.labels.numpy(), trace.logits.argmax(1)
    table = looking.confusion(labels, predicted)
    fig = _rendered(plots.plot_confusion(table))
    ax = fig.axes[0]
    cells = np.asarray(ax.images[0].get_array())
    assert cells.shape == (10, 10) and cells.sum() == len(labels)
    assert np.array_equal(cells, table.to_numpy())
    assert sum(int(t.get_text()) for t in ax.texts) == len(labels), "each non-empty cell says its count"
    assert f"error {(predicted != labels).mean():.1%}" in ax.get_title()


def test_the_drawing_order_figure_has_a_panel_per_image_with_each_digits_cumulative_share():
    A = dict(kind="digit", label=3, source=0, x=2, y=2, width=28, height=28)
    B = dict(kind="digit", label=5, source=1, x=30, y=30, width=28, height=28)
    objects = pd.DataFrame([dict(A, image=i) for i in (0, 1)] + [dict(B, image=i) for i in (0, 1)])
    canvas = np.zeros((4, 2, 1, 60, 60))  # image 0 draws A then B; image 1 both at once
    for t in range(4):
        canvas[t:, 0, 0, 2:30, 2:30] += (t < 2) * 0.5
        canvas[t:, 0, 0, 30:58, 30:58] += (t >= 2) * 0.5
        canvas[t:, 1, 0, 2:30, 2:30] += 0.25
        canvas[t:, 1, 0, 30:58, 30:58] += 0.25
    steps, _ = order.drawing_order(canvas, np.zeros((1, 60, 60)), objects)
    fig = _rendered(plots.plot_drawing_order(steps, images=range(8)))
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["image 0", "image 1"], "one panel per image measured"
    (a0, b0), (a1, b1) = ([line.get_ydata() for line in ax.lines if line.get_label().startswith("digit")] for ax in shown)
    assert a0 == pytest.approx([0.5, 1, 1, 1]) and b0 == pytest.approx([0, 0, 0.5, 1])
    assert a1 == pytest.approx([0.25, 0.5, 0.75, 1]) and b1 == pytest.approx(a1)


def test_the_live_scrubber_steps_through_a_classifiers_glimpses(trace):
    from drawviz.widgets import scrub

    scrubber = scrub(trace, 0, dpi=30)
    assert (scrubber.slider.min, scrubber.slider.max) == (1, T)
    first = scrubber.image.value
    scrubber.slider.value = T
    assert scrubber.image.value != first and f"glimpse t = {T} / {T}" in scrubber.view.title.get_text()


def test_papermill_sees_every_parameter_of_classify_and_it_is_committed_clean():
    path = NOTEBOOKS / "classify.ipynb"
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assigned = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line}
    assert assigned == set(pm.inspect_notebook(str(path)))
    assert {"dataset", "data_root", "checkpoint", "T", "steps", "n_images", "n_show", "scrub_sample"} <= assigned
    assert {"device", "seed", "title", "metrics_out"} <= assigned
    assert nb.metadata.kernelspec.name == "python3"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_the_classify_notebook_runs_on_the_offline_sample_and_writes_its_record(tmp_path):
    target = tmp_path / "classify.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "classify.ipynb"),
        str(target),
        parameters={
            "checkpoint": str(tmp_path / "c.pt"),  # none there: a small classifier is trained first, as asked
            "train_if_missing": True,
            "steps": 60,
            "T": 4,  # 4 glimpses: the paper's other DRAW row, and half the work
            "n_images": 40,
            "n_show": 3,
            "device": "cpu",
            "metrics_out": str(tmp_path / "classify.json"),
        },
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    nb = nbformat.read(target, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert (tmp_path / "c.pt").exists()
    record = Classification.read(tmp_path / "classify.json")
    assert record is not None and 0 <= record.error <= 1 and record.cross_entropy > 0
    assert record.images == 40 and record.glimpses == 4
    assert record.paper_error == dict((n, e) for name, n, e in PAPER_TABLE_1 if "DRAW" in name)[4] == 0.0418
    assert 0 <= record.last_covers <= 1 and 0 <= record.error_centre <= 1 and 0 <= record.error_distractor <= 1
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 6  # Fig. 5, glimpses, where, confusion, ...
    html = "".join("".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {}))
    assert len(re.findall(r'frames\[\d+\] = "data:image/png;base64,', html)) == 4, "the static scrubber: one per glimpse"
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), "the live scrubber"
