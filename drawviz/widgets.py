"""The live scrubber: step through a recorded Trace in Jupyter.

Import this module only from notebooks: it needs ipywidgets (``import drawviz`` does not).
The static, kernel-free scrubber for HTML reports is :func:`drawviz.plots.scrubber_html`.
"""
from __future__ import annotations

import ipywidgets as W

from .plots import StepView

__all__ = ["Scrubber", "scrub"]


class Scrubber:
    """Play + IntSlider (linked in the browser) that redraw step t of a trace as a PNG.

    Attributes: ``slider`` (the step t, 1..T), ``play``, ``link`` (their jslink), ``image`` (an
    ipywidgets.Image whose ``value`` holds the PNG bytes of the current step) and ``widget`` (the layout).
    Setting ``slider.value`` from Python redraws too, so the scrubber works without a browser.
    """

    def __init__(self, trace, sample: int = 0, fps: int = 4, dpi: int = 80):
        self.trace = trace
        self.view = StepView(trace, sample, dpi=dpi)
        T = trace.T
        self.play = W.Play(value=1, min=1, max=T, step=1, interval=max(1, 1000 // fps), description="play")
        self.slider = W.IntSlider(value=1, min=1, max=T, step=1, description="step t", continuous_update=True)
        # jslink: playing moves the slider in the browser without a round trip through the kernel.
        self.link = W.jslink((self.play, "value"), (self.slider, "value"))
        self.image = W.Image(value=self.view.png(1), format="png")
        self.slider.observe(self._redraw, names="value")
        self.widget = W.VBox([W.HBox([self.play, self.slider]), self.image])
        # stable hooks for styling and for the browser tests
        self.widget.add_class("drawviz-scrubber")
        self.image.add_class("drawviz-scrubber-image")

    def _redraw(self, change) -> None:
        self.image.value = self.view.png(int(change["new"]))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def scrub(trace, sample: int = 0, **kwargs) -> Scrubber:
    """A live scrubber for one sample of a trace; display it as the last expression of a cell."""
    return Scrubber(trace, sample, **kwargs)
