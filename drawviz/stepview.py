"""One step of a recorded drawing, redrawn in place: the view that the live and the static scrubber share.

:class:`StepView` is one figure of a :class:`~drawviz.trace.Trace` at step t (the canvas with that step's
windows, for reconstructions also the input and the error image x̂_t, below the parameter values), redrawn
for any t; :meth:`StepView.pngs` draws a run of steps by blitting, the same pixels at a third of the cost.
:func:`scrubber_html` embeds every step's frame in self-contained HTML/JS that needs no kernel and no network
(the static reports' scrubber); :func:`drawviz.widgets.scrub` shows the same view live in Jupyter.

The panels are drawn as :mod:`drawviz.plots` draws its figures (its error image, window squares and
glimpses), with :mod:`drawviz.geometry`'s windows and :mod:`drawviz.style`'s look.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import geometry
from .plots import _glimpse_image, _glimpse_scale, _keep_view, _show_error
from .style import OP_COLOURS, image_args, show as _show

__all__ = ["StepView", "scrubber_html"]


class StepView:
    """One figure of a trace at step t, redrawn in place: the static and the live scrubber share it.

    Panels: the canvas σ(c_t) with the read (reconstructions) and write windows of step t;
    for reconstructions also the input x with the read window and the error image x̂_t;
    below, the parameter values of step t; for a model with a scale canvas (issue 33's arm) also s_t, the
    log-scale it has drawn so far, with the write window. A kind that draws nothing (the read-only classifier: no canvas,
    no write window, no error image) shows the input x with glimpse t's read window and the glimpse itself.
    """

    def __init__(self, trace, sample: int = 0, dpi: int = 80, words: Optional[Sequence[str]] = None):
        self.trace, self.sample = trace, sample
        # a captioned model's words (drawviz.conditional): the one its alignment is on at step t is shown in [ ]
        self.words = list(words) if words is not None and "alignment" in trace else None
        if self.words is not None and len(self.words) != trace["alignment"].shape[-1]:
            raise ValueError(f"the caption has {trace['alignment'].shape[-1]} words; {len(self.words)} were given")
        self.ops = geometry.ops(trace)
        recon = trace.x is not None
        drawn = trace.canvas is not None  # a classifier draws nothing: its glimpse takes the canvas's place
        errors = recon and trace.x_hat is not None  # a one-shot VAE (convvae) has no error image
        scaled = drawn and "scale_canvas" in trace  # s_t: where it says it is unsure, drawn as the canvas is
        panels = ["x", "glimpse"] if not drawn else ["x", "canvas"] + ["error"] * errors if recon else ["canvas"]
        panels += ["scale"] * scaled
        # at least 4.8 in wide: the monospace parameter lines below must fit under a single panel
        # the monospace parameter lines below must fit at a readable size (11 pt = ~11 px at 72 dpi)
        self.fig = Figure(figsize=(max(2.9 * len(panels) + 0.6, 6.4), 4.3), dpi=dpi)  # no pyplot: never shown twice
        axes = self.fig.subplots(1, len(panels), squeeze=False)[0]
        self.fig.subplots_adjust(
            left=0.03,
            right=0.93 if (errors and drawn) or scaled else 0.97,
            top=0.86,
            bottom=0.27,
            wspace=0.25 if scaled else 0.15,
        )
        self.ax = dict(zip(panels, axes))
        H, W = (trace.canvas if drawn else trace.x).shape[-2:]
        self.gmax = {op: geometry.gamma_max(trace, op, sample) for op in self.ops}
        self.images = {}
        if drawn:
            self.images["canvas"] = _show(self.ax["canvas"], trace.canvas[0, sample], "canvas σ(c_t)")
        if recon:
            _show(self.ax["x"], trace.x[sample], "input x, read window")
        if errors and drawn:
            self.images["error"] = _show_error(self.ax["error"], trace, 1, sample, "error x̂_t = x − σ(c_{t−1})")
            self.fig.colorbar(self.images["error"], ax=self.ax["error"], fraction=0.046, pad=0.03)
        if scaled:  # one colour range for all steps, so that a step's change shows
            s_t = trace["scale_canvas"][:, sample].mean(1)  # (T, H, W)
            lo, hi = np.percentile(s_t, [1, 99])
            self.images["scale"] = self.ax["scale"].imshow(s_t[0], cmap="magma", vmin=lo, vmax=hi, interpolation="nearest")
            self.ax["scale"].set(xticks=[], yticks=[], title="log-scale s_t")
            self.fig.colorbar(self.images["scale"], ax=self.ax["scale"], fraction=0.046, pad=0.03)
        if not drawn:
            self.glimpse_scale = _glimpse_scale(trace, sample)
            N = geometry.grid_n(trace, "read")
            self.images["glimpse"] = _show(
                self.ax["glimpse"], _glimpse_image(trace, 1, sample, self.glimpse_scale), f"glimpse, {N}×{N}"
            )
        self.rects = {}
        for name, ax in self.ax.items():
            if name == "glimpse":  # what the window sees, in its own N × N pixels: no window on it
                continue
            shown = self.ops if name == "canvas" else ["write"] if name == "scale" else ["read"] if "read" in self.ops else []
            for op in [op for op in shown if op in self.ops]:
                self.rects[name, op] = Rectangle((0, 0), 1, 1, fill=False, edgecolor=OP_COLOURS[op])
                ax.add_patch(self.rects[name, op])
            _keep_view(ax, W, H, margin=3)
        for ax in self.ax.values():
            ax.title.set_fontsize(11)
        self.title = self.fig.suptitle("", fontsize=12)
        self.text = self.fig.text(0.5, 0.02, "", ha="center", va="bottom", fontsize=11, family="monospace")
        self.update(1)

    def update(self, t: int):
        """Redraw for step t (1-based); returns the changed artists (for FuncAnimation)."""
        tr, s = self.trace, self.sample
        if "canvas" in self.images:
            self.images["canvas"].set_data(image_args(tr.canvas[t - 1, s])[0])
        if "error" in self.images:
            self.images["error"].set_data(tr.x_hat[t - 1, s].mean(0))
        if "scale" in self.images:
            self.images["scale"].set_data(tr["scale_canvas"][t - 1, s].mean(0))
        if "glimpse" in self.images:
            self.images["glimpse"].set_data(image_args(_glimpse_image(tr, t, s, self.glimpse_scale))[0])
        lines = []
        for op in self.ops:
            w = geometry.window(tr, op, t, s)
            xy, size = geometry.square(w, geometry.grid_n(tr, op))
            style = geometry.stroke_style(w, self.gmax[op])
            for (panel, o), rect in self.rects.items():
                if o == op:
                    rect.set_xy(xy)
                    rect.set_width(size)
                    rect.set_height(size)
                    rect.set_linewidth(style["linewidth"])
                    rect.set_alpha(style["alpha"])
            lines.append(
                f"{op:5s} g=({w['g_x']:5.1f},{w['g_y']:5.1f}) δ={w['delta']:5.2f} σ={w['sigma']:5.2f} γ={w['gamma']:6.3f}"
            )
        if tr.kl is not None:
            lines.append(f"KL_t = {tr.kl[t - 1, s]:.2f} nats")
        if self.words is not None:  # the word it follows, in place in its caption
            alpha = tr["alignment"][t - 1, s]
            j = int(alpha.argmax())
            marked = [f"[{w}]" if i == j else w for i, w in enumerate(self.words)]
            lines.append(f"{' '.join(marked)}  α = {alpha[j]:.2f}")
        if tr.logits is not None:  # a classifier: what it says after its last glimpse
            p = np.exp(tr.logits[s] - tr.logits[s].max())
            lines.append(f"after glimpse {tr.T}: class {int(p.argmax())} (p = {p.max() / p.sum():.2f})")
        self.text.set_text("\n".join(lines))
        if tr.canvas is None:
            self.title.set_text(f"image {s}: glimpse t = {t} / {tr.T}")
        else:
            kind = "reconstruction of image" if tr.x is not None else "sample"
            self.title.set_text(f"{kind} {s}: step t = {t} / {tr.T}")
        return [*self.images.values(), *self.rects.values(), self.text, self.title]

    def png(self, t: int) -> bytes:
        self.update(t)
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png")
        return buf.getvalue()

    def pngs(self, steps: Sequence[int]):
        """PNG bytes of each step in ``steps``, the same pixels as :meth:`png` at a third of the cost: the
        figure is drawn once without the artists a step changes, and each frame redraws only those."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from PIL import Image

        canvas = FigureCanvasAgg(self.fig)
        # the panels' frames go over the windows (zorder 2.5 > 1), so they are redrawn with them
        edges = [spine for ax in self.ax.values() for spine in ax.spines.values() if spine.get_visible()]
        changing = [*self.update(steps[0] if len(steps) else 1), *edges]
        for artist in changing:
            artist.set_animated(True)  # left out of canvas.draw(): the background
        try:
            canvas.draw()
            background = canvas.copy_from_bbox(self.fig.bbox)
            for t in steps:
                canvas.restore_region(background)
                # in the order a full draw takes: within the panels by zorder, then the figure's texts
                for artist in sorted([*self.update(t), *edges], key=lambda a: (a.axes is None, a.get_zorder())):
                    self.fig.draw_artist(artist)
                buf = io.BytesIO()
                Image.fromarray(np.asarray(canvas.buffer_rgba())).save(buf, format="png", compress_level=6)
                yield buf.getvalue()
        finally:
            for artist in changing:
                artist.set_animated(False)


def scrubber_html(trace, sample: int = 0, fps: int = 4, dpi: int = 72, words: Optional[Sequence[str]] = None) -> str:
    """A kernel-free scrubber: every step's frame embedded as a PNG in self-contained HTML/JS.

    The frames are StepView's: for a classifier, the image with glimpse t's read window and the glimpse; for a
    captioned model given its caption's ``words``, the word followed at each step marked.
    Works in a static HTML report with no Jupyter and no network (matplotlib's jshtml: inline
    script, no external URLs). Display it with IPython.display.HTML.
    """
    import tempfile

    from matplotlib.animation import HTMLWriter

    class Writer(HTMLWriter):  # matplotlib's jshtml player, its frames drawn by StepView.pngs
        def grab_frame(self, **savefig_kwargs):
            self._saved_frames.append(base64.encodebytes(next(frames)).decode("ascii"))

    view = StepView(trace, sample, dpi=dpi, words=words)
    frames = view.pngs(range(1, trace.T + 1))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scrubber.html"
        writer = Writer(fps=fps, embed_frames=True, default_mode="once")
        with writer.saving(view.fig, path, dpi):
            for _ in range(trace.T):
                writer.grab_frame()
        return _offline(path.read_text())


# matplotlib's player draws its buttons with Font Awesome from a CDN: use plain glyphs instead
# (geometric shapes only: the media-control symbols ⏮ ⏭ are missing from common fonts).
_GLYPHS = {
    "fa-minus": "&minus;",
    "fa-fast-backward": "|&#x25C0;&#x25C0;",
    "fa-step-backward": "|&#x25C0;",
    "fa-play fa-flip-horizontal": "&#x25C0;",
    "fa-pause": "&#x275A;&#x275A;",
    "fa-play": "&#x25B6;",
    "fa-step-forward": "&#x25B6;|",
    "fa-fast-forward": "&#x25B6;&#x25B6;|",
    "fa-plus": "+",
}


def _offline(html: str) -> str:
    html = re.sub(r'<link[^>]*href="https?://[^"]*"[^>]*>', "", html)
    return re.sub(r'<i class="fa ([^"]+)"></i>', lambda m: _GLYPHS.get(m.group(1), ""), html)
