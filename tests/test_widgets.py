"""The live scrubber, driven without a browser; and `import drawviz` stays free of Jupyter."""

import subprocess
import sys

import pytest
import torch

from drawviz import captions, probes
from drawviz.conditional import ConditionalConfig, ConditionalDRAW
from drawviz.model import DRAW, DrawConfig

import ipywidgets  # noqa: E402,F401

T = 4


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DRAW(DrawConfig(T=T, enc_size=32, dec_size=32, z_size=8)).eval()


def test_setting_the_slider_redraws_the_picture(model):
    from drawviz.widgets import Scrubber

    x = (torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.7).float()
    scrubber = Scrubber(probes.record(model, x, seed=0), sample=2, dpi=40)
    assert (scrubber.slider.min, scrubber.slider.max, scrubber.slider.value) == (1, T, 1)
    assert (scrubber.play.min, scrubber.play.max) == (1, T)
    first = scrubber.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    scrubber.slider.value = 3
    third = scrubber.image.value
    assert third != first, "moving the slider must redraw the image"
    scrubber.slider.value = 1
    assert scrubber.image.value == first, "the same step draws the same picture"
    assert "t = 1 / 4" in scrubber.view.title.get_text()


def test_play_and_slider_are_linked_in_the_browser(model):
    from drawviz.widgets import scrub

    scrubber = scrub(probes.record_generation(model, 2, seed=0), sample=1, dpi=40)
    link = scrubber.link
    assert (link.source, link.target) == ((scrubber.play, "value"), (scrubber.slider, "value")), (
        "Play and IntSlider should be jslink'ed"
    )
    bundle = scrubber._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    before = scrubber.image.value
    scrubber.slider.value = T
    assert scrubber.image.value != before


def test_import_drawviz_does_not_load_jupyter():
    code = (
        "import sys, drawviz, drawviz.plots, drawviz.sharpness, drawviz.report, drawviz.probes, drawviz.train\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ipywidgets', 'papermill', 'nbconvert', 'nbformat', 'IPython', 'ipykernel', 'jupyter_client'))\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_moving_a_window_slider_redraws_the_rest_of_the_drawing_from_that_step_on(model):
    from drawviz.widgets import WindowExplorer

    x = (torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.7).float()
    explorer = WindowExplorer(model, x, step=2, op="write", sample=1, dpi=40)
    plain_png = explorer.image.value
    assert plain_png[:8] == b"\x89PNG\r\n\x1a\n"
    # the sliders start at the model's own window: the hooked drawing is the plain one
    assert abs(explorer.trace.canvas - explorer.plain.canvas).max() < 1e-5
    explorer.sliders["g_x"].value = 3.0  # the write window at step 2 to the left edge
    moved = explorer.trace
    assert moved.windows["write"].g_x[1, 0] == pytest.approx(3.0)
    assert abs(moved.canvas[0] - explorer.plain.canvas[0]).max() == 0  # step 1 is untouched
    assert abs(moved.canvas[-1] - explorer.plain.canvas[-1]).max() > 1e-3  # the rest of the drawing changes
    assert explorer.image.value != plain_png
    explorer.reset.click()
    assert abs(explorer.trace.canvas - explorer.plain.canvas).max() < 1e-5


@pytest.mark.parametrize("condition", ["label", "caption"])
def test_the_request_box_draws_what_it_can_and_says_why_not_in_one_line(condition):
    from drawviz.widgets import Ask

    shape = (28, 28) if condition == "label" else (60, 60)
    torch.manual_seed(0)
    config = ConditionalConfig(*shape, 1, T=T, enc_size=16, dec_size=16, z_size=4, read_n=3, write_n=3,
                               prior="learned", condition=condition, embed_size=8, caption_size=8, align_size=8)  # fmt: skip
    box = Ask(ConditionalDRAW(config).eval(), dpi=30)
    asked = "7" if condition == "label" else captions.caption(3, "left", 5)
    box.box.value = asked
    assert box.scrubber is not None and box.message.value == f"asked for {asked}"
    if condition == "caption":
        assert box.scrubber.view.words == asked.split()  # the caption's own words, beside the alignment
    wrong = "seven" if condition == "label" else "the digit 3 is on the left of the digit five ."
    box.box.value = wrong
    assert box.message.value.startswith("<b>cannot draw that:</b>")
    said = "is no class of this model: give a number 0..9" if condition == "label" else "not in the vocabulary of 22 words"
    assert said in box.message.value


def test_a_garment_is_asked_for_by_name_and_the_judge_answers_by_name():
    from drawviz import asked, data
    from drawviz.widgets import Ask

    torch.manual_seed(0)
    config = ConditionalConfig(28, 28, 1, T=T, enc_size=16, dec_size=16, z_size=4, read_n=3, write_n=3,
                               prior="learned", condition="label", embed_size=8)  # fmt: skip
    names = data.class_names("fashion-mnist")
    box = Ask(ConditionalDRAW(config).eval(), asked.judge_for("fashion-mnist"), dpi=30, names=names)
    assert "or its name (T-shirt/top, Trouser, Pullover, ...)" in box.box.placeholder
    box.box.value = "ankle boot"
    assert box.scrubber is not None and box.message.value.startswith("asked for ankle boot; the judge sees ")
    assert any(f"the judge sees {name}:" in box.message.value for name in names)
    box.box.value = "frog"
    assert "or a name: 0 T-shirt/top, 1 Trouser" in box.message.value
