"""The step view redraws one step of a trace in place, the same pixels whether drawn in full or by blitting; the
static scrubber made of it embeds one frame per step and works offline, for DRAW and for the read-only classifier."""

import io
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from drawviz import data, geometry, probes
from drawviz.classifier import ClassifierConfig, GlimpseClassifier
from drawviz.model import DRAW, DrawConfig
from drawviz.stepview import StepView, scrubber_html

T = 5  # the small DRAW's steps
GLIMPSES = 4  # the small classifier's


@pytest.fixture(scope="module")
def draw():
    torch.manual_seed(0)
    return DRAW(DrawConfig(T=T, enc_size=32, dec_size=32, z_size=8)).eval()


@pytest.fixture(scope="module")
def recon(draw):
    g = torch.Generator().manual_seed(0)
    return probes.record(draw, (torch.rand(6, 1, 28, 28, generator=g) > 0.7).float(), seed=0)


@pytest.fixture(scope="module")
def prior(draw):
    return probes.record_generation(draw, 6, seed=0)


@pytest.fixture(scope="module")
def glimpses():
    """A read-only classifier's trace on 12 cluttered scenes (100×100): no canvas, 12×12 glimpses."""
    torch.manual_seed(0)
    model = GlimpseClassifier(ClassifierConfig(T=GLIMPSES, enc_size=16)).eval()
    return probes.record(model, data.load("cluttered-mnist-sample", "test").subset(12).images, seed=0)


def _decode(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def _frames(html: str) -> list:
    return re.findall(r'frames\[\d+\] = "data:image/png;base64,', html)


def test_the_static_scrubber_is_self_contained_with_one_frame_per_step(recon, prior):
    for trace in (recon, prior):
        html = scrubber_html(trace, sample=1, dpi=40)
        assert "<script" in html and 'src="http' not in html and "https://" not in html
        assert len(_frames(html)) == trace.T, "one embedded PNG per step"
    assert plt.get_fignums() == []


def test_a_scrubber_frame_drawn_by_blitting_is_the_full_drawing_pixel_for_pixel(recon, prior):
    for trace in (recon, prior):
        blitted = list(StepView(trace, sample=1, dpi=40).pngs(range(1, T + 1)))
        view = StepView(trace, sample=1, dpi=40)
        assert len(blitted) == T
        for t in (1, 2, T):
            assert np.array_equal(_decode(blitted[t - 1]), _decode(view.png(t))), f"step {t}"


def test_the_step_view_changes_with_t(recon):
    view = StepView(recon, sample=0, dpi=40)
    assert view.png(1) != view.png(T)
    assert f"t = {T} / {T}" in view.title.get_text()


def test_a_classifiers_static_scrubber_embeds_one_frame_per_glimpse_and_works_offline(glimpses):
    html = scrubber_html(glimpses, sample=1, dpi=30)
    assert "<script" in html and 'src="http' not in html and "https://" not in html
    assert len(_frames(html)) == GLIMPSES, "one embedded PNG per glimpse"
    assert plt.get_fignums() == []


def test_a_classifiers_step_shows_the_image_with_its_read_window_and_the_glimpse_it_takes(glimpses):
    trace = glimpses
    view = StepView(trace, sample=2, dpi=30)
    assert list(view.ax) == ["x", "glimpse"], "no canvas, no error image: the image and the glimpse"
    view.update(3)
    (x, y), size = geometry.square(geometry.window(trace, "read", 3, 2), 12)
    rect = view.rects["x", "read"]
    assert (rect.get_x(), rect.get_y(), rect.get_width()) == pytest.approx((x, y, size), rel=1e-5)
    assert np.allclose(view.images["glimpse"].get_array(), trace.glimpse[2, 2, 0, 0] / trace.glimpse[:, 2, 0].max())
    assert view.title.get_text() == f"image 2: glimpse t = 3 / {GLIMPSES}"
    assert f"class {int(trace.logits[2].argmax())}" in view.text.get_text()
    blitted = list(StepView(trace, sample=2, dpi=30).pngs(range(1, GLIMPSES + 1)))
    assert np.array_equal(_decode(blitted[-1]), _decode(view.png(GLIMPSES))), "a blitted frame is the full drawing"
    assert view.png(1) != view.png(GLIMPSES)


def test_a_model_with_a_scale_canvas_shows_s_t_beside_the_canvas_and_blits_it_pixel_for_pixel():
    torch.manual_seed(0)
    config = DrawConfig(
        12, 10, 3, T=3, enc_size=16, dec_size=12, z_size=4, read_n=3, write_n=3, likelihood="logistic", scale_canvas=True
    )
    model = DRAW(config).eval()
    with torch.no_grad():
        model.write_scale.weight.normal_(0, 0.5)  # so that s_t changes from step to step
    x = (torch.rand(2, 3, 12, 10, generator=torch.Generator().manual_seed(1)) * 255).round() / 255
    for trace in (probes.record(model, x, seed=0), probes.record_generation(model, 2, seed=0)):
        view = StepView(trace, sample=1, dpi=40)
        assert "scale" in view.ax and ("scale", "write") in view.rects  # s_t, with the window it is written through
        view.update(2)
        assert np.allclose(view.images["scale"].get_array(), trace["scale_canvas"][1, 1].mean(0))
        blitted = list(StepView(trace, sample=1, dpi=40).pngs(range(1, 4)))
        assert all(np.array_equal(_decode(blitted[t - 1]), _decode(view.png(t))) for t in (1, 3))
    plain = StepView(
        probes.record(DRAW(DrawConfig(12, 10, 3, T=3, enc_size=16, dec_size=12, z_size=4, read_n=3, write_n=3)), x, seed=0)
    )
    assert "scale" not in plain.ax  # the paper's model draws no scale
