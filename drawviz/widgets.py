"""Live controls in Jupyter: the scrubber (step through a recorded Trace) and the window explorer
(move the read or write window at one step and watch the rest of the drawing change).

Import this module only from notebooks: it needs ipywidgets (``import drawviz`` does not).
The static, kernel-free scrubber for HTML reports is :func:`drawviz.stepview.scrubber_html`.
"""

from __future__ import annotations

import io

import ipywidgets as W
import numpy as np

from .stepview import StepView

__all__ = ["Scrubber", "scrub", "WindowExplorer", "explore_window", "Ask", "ask"]


class Scrubber:
    """Play + IntSlider (linked in the browser) that redraw step t of a trace as a PNG (stepview.StepView: for the
    read-only classifier, which draws nothing, the image with glimpse t's read window and the glimpse).

    Attributes: ``slider`` (the step t, 1..T), ``play``, ``link`` (their jslink), ``image`` (an
    ipywidgets.Image whose ``value`` holds the PNG bytes of the current step) and ``widget`` (the layout).
    Setting ``slider.value`` from Python redraws too, so the scrubber works without a browser.
    """

    def __init__(self, trace, sample: int = 0, fps: int = 4, dpi: int = 80, words=None):
        self.trace = trace
        self.view = StepView(trace, sample, dpi=dpi, words=words)
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
    """A live scrubber for one sample of a trace (a drawing's or a classifier's); display it as the last
    expression of a cell."""
    return Scrubber(trace, sample, **kwargs)


class WindowExplorer:
    """Sliders for the read or write window (g_x, g_y, δ, σ, γ in pixels) at one step of one image's drawing;
    each change reruns the drawing with that window (drawviz.interventions, the same ε) and shows the canvas
    at later steps beside the unchanged drawing.

    Attributes: ``sliders`` {field: FloatSlider}, ``step`` (IntSlider), ``reset`` (Button),
    ``image`` (ipywidgets.Image with the PNG), ``trace`` (the last hooked Trace) and ``widget``.
    Setting a slider's ``value`` from Python redraws too, so it works (and is tested) without a browser.
    """

    def __init__(
        self, model, x, step: int = 1, op: str = "write", sample: int = 0, seed: int = 0, columns: int = 6, dpi: int = 72
    ):
        from . import probes
        from .interventions import run_with_hooks, set_window

        if not model.config.attention:
            raise ValueError("this model has no attention windows to move (attention=False)")
        self.model, self.op, self.seed, self.dpi, self.columns = model, op, seed, dpi, columns
        self.x = x[sample : sample + 1]
        self._run, self._set = run_with_hooks, set_window
        self.plain = probes.record(model, self.x, seed=seed)
        T, c = model.config.T, model.config
        self.step = W.IntSlider(value=step, min=1, max=T, description="step t", continuous_update=False)
        size = max(c.width, c.height)
        ranges = {
            "g_x": (-0.5 * c.width, 1.5 * c.width),
            "g_y": (-0.5 * c.height, 1.5 * c.height),
            "delta": (0.05, size),
            "sigma": (0.05, size / 2),
            "gamma": (0.05, 10.0),
        }
        self.sliders = {
            k: W.FloatSlider(min=lo, max=hi, step=(hi - lo) / 200, description=k, readout_format=".2f", continuous_update=False)
            for k, (lo, hi) in ranges.items()
        }
        self.reset = W.Button(description="the model's window")
        self.image = W.Image(format="png")
        self._quiet = False
        self._load_model_window()
        for slider in self.sliders.values():
            slider.observe(self._redraw, names="value")
        self.step.observe(lambda change: self._load_model_window(), names="value")
        self.reset.on_click(lambda _: self._load_model_window())
        self.widget = W.VBox(
            [
                W.HBox([self.step, self.reset]),
                W.HBox(list(self.sliders.values())[:3]),
                W.HBox(list(self.sliders.values())[3:]),
                self.image,
            ]
        )
        self.widget.add_class("drawviz-window-explorer")

    def _load_model_window(self) -> None:
        """Set the sliders to the model's own window at the chosen step (one redraw, not five)."""
        w = self.plain.windows[self.op].at(self.step.value - 1, 0)
        values = {"g_x": w.g_x, "g_y": w.g_y, "delta": w.delta, "sigma": w.sigma2**0.5, "gamma": w.gamma}
        self._quiet = True
        for k, v in values.items():
            s = self.sliders[k]
            s.value = min(max(float(v), s.min), s.max)
        self._quiet = False
        self._redraw(None)

    def window(self) -> dict:
        """The window the sliders set, in the model's terms (σ² from σ)."""
        v = {k: s.value for k, s in self.sliders.items()}
        return {"g_x": v["g_x"], "g_y": v["g_y"], "delta": v["delta"], "sigma2": v["sigma"] ** 2, "gamma": v["gamma"]}

    def _redraw(self, change) -> None:
        if self._quiet:
            return
        from .plots import plot_intervention

        t = self.step.value
        self.trace = self._run(self.model, self.x, hooks=[self._set(self.op, t, **self.window())], seed=self.seed)
        T = self.model.config.T
        shown = sorted({t, *[int(round(s)) for s in np.linspace(t, T, self.columns)]})
        fig = plot_intervention(
            {"the model's drawing": self.plain, f"{self.op} window moved at t = {t}": self.trace},
            steps=shown,
            reference="the model's drawing",
        )
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi)
        self.image.value = buf.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def explore_window(model, x, step: int = 1, op: str = "write", sample: int = 0, **kwargs) -> WindowExplorer:
    """Live sliders for the ``op`` window at ``step`` of image ``sample`` of x; display as a cell's last expression."""
    return WindowExplorer(model, x, step, op, sample, **kwargs)


class Ask:
    """Type what to draw (a class, or a caption from the vocabulary) and watch a conditional DRAW draw it: the
    scrubber over its steps, the write window and, for a caption, the word followed at each step; below, what the
    judge sees in the drawing (drawviz.asked). A request the model cannot take is answered in one clear line.

    Attributes: ``box`` (the Text the request is typed in; setting ``box.value`` from Python draws too), ``message``
    (an HTML line: the verdict, or what went wrong), ``scrubber`` (the current Scrubber, None before a drawing) and
    ``widget`` (the layout). ``names``: the classes' names (drawviz.data.class_names), which a request may use.
    """

    def __init__(self, model, judge=None, value: str = "", seed: int = 0, dpi: int = 72, names=()):
        self.model, self.judge, self.seed, self.dpi, self.names = model, judge, seed, dpi, tuple(names)
        self.caption = getattr(model.config, "condition", "none") == "caption"
        what = "a caption" if self.caption else f"a class 0..{getattr(model.config, 'classes', 10) - 1}"
        what += f" or its name ({', '.join(self.names[:3])}, ...)" if self.names and not self.names[0].isdigit() else ""
        self.box = W.Text(value="", description="draw", placeholder=what, continuous_update=False)
        self.box.layout.width = "36em"
        self.message = W.HTML()
        self.drawing = W.VBox()
        self.scrubber = None
        self.box.observe(lambda change: self.ask(change["new"]), names="value")
        self.widget = W.VBox([self.box, self.message, self.drawing])
        self.widget.add_class("drawviz-ask")
        self.box.value = value  # draws it

    def ask(self, request: str) -> None:
        """Draw what ``request`` asks for (a class number, or a caption), or say why it cannot be drawn."""
        import html

        from . import asked, captions, probes, sampling

        request = request.strip()
        if not request:
            self.message.value = "type what to draw, then press Enter"
            return
        try:  # the one parser of a request, the command line's: a word outside the vocabulary is named there
            asked_for = {"caption": request} if self.caption else {"label": request, "names": self.names}
            given = sampling.condition(self.model, 1, **asked_for)
        except ValueError as err:
            self.message.value = f"<b>cannot draw that:</b> {html.escape(str(err))}"
            return
        trace = probes.run(self.model, n=1, seed=self.seed, **given)
        words = captions.text(given["labels"][0]).split() if self.caption else None
        self.scrubber = Scrubber(trace, 0, dpi=self.dpi, words=words)
        self.drawing.children = [self.scrubber.widget]
        self.scrubber.slider.value = trace.T  # the finished drawing first; play to watch it drawn
        verdict = ""
        if self.judge is not None:
            drawn = trace.canvas[-1]
            if self.caption:
                row = asked.by_caption(self.judge, drawn, given["labels"].numpy()).iloc[0]
                seen = f"{row.judged_first}" + (f" and {row.judged_second}" if row.pair else "")
            else:
                row = asked.by_label(self.judge, drawn, given["labels"].numpy()).iloc[0]
                seen = self.names[row.judged] if self.names else f"{row.judged}"
            verdict = f"; the judge sees {seen}: <b>{'right' if row.right else 'wrong'}</b>"
        self.message.value = f"asked for {html.escape(request)!s}{verdict}"

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def ask(model, judge=None, value: str = "", **kwargs) -> Ask:
    """A live request box for a conditional model (drawviz.conditional); display as a cell's last expression."""
    return Ask(model, judge, value, **kwargs)
