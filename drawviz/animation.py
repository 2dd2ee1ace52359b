"""A drawing sequence as an animation file (GIF or MP4): one frame per drawing step.

``save_animation(trace, "draw.gif")`` shows, for a few samples side by side, the canvas σ(c_t)
at each step t = 1..T with that step's write window (red) and, for reconstructions, its read
window (green), then holds the finished image for a moment. The trace comes from
:func:`drawviz.probes.record` or :func:`drawviz.probes.record_generation`; its ``canvas`` is
already σ(c_t) (probabilities), so it is shown as stored.

The window geometry is :mod:`drawviz.geometry`'s (square = centre ± N·δ/2 in the paper's
1-based pixel units, line width grows with σ, opacity with γ) and the look :mod:`drawviz.style`'s,
as in the figures of :mod:`drawviz.plots`; figures are built without pyplot, so nothing is shown
and nothing is left open.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from . import files as _files
from . import geometry
from .style import OP_COLOURS, image_args, show

__all__ = ["save_animation", "SUFFIXES"]

SUFFIXES = (".gif", ".mp4")


def _view(trace, samples: Sequence[int], ops: Sequence[str], pad: float = 0.25) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the image and the windows drawn, padded by at most ``pad`` of the image each side.

    Early windows can be many times the image (a whole-image first stroke): holding them all would
    shrink the image to a speck, so beyond the padding a window is clipped at the frame's edge.
    """
    H, W = trace.canvas.shape[-2:]
    x0, x1, y0, y1 = -0.5, W - 0.5, -0.5, H - 0.5
    for op in ops:
        for s in samples:
            for t in range(1, trace.T + 1):
                a, b, c, d = geometry.extent(trace, op, t, s)
                x0, x1, y0, y1 = min(x0, a), max(x1, b), min(y0, c), max(y1, d)
    margin = 0.5
    x0, x1 = max(x0, -0.5 - pad * W), min(x1, W - 0.5 + pad * W)
    y0, y1 = max(y0, -0.5 - pad * H), min(y1, H - 0.5 + pad * H)
    return x0 - margin, x1 + margin, y0 - margin, y1 + margin


class _Frames:
    """One figure, redrawn in place for step t: a column per sample, the canvas with its windows."""

    def __init__(self, trace, samples: Sequence[int], dpi: int):
        self.trace, self.samples = trace, list(samples)
        self.ops = geometry.ops(trace)  # read (reconstructions of an attention model) and write, or none
        H, W = trace.canvas.shape[-2:]
        x0, x1, y0, y1 = _view(trace, self.samples, self.ops)
        aspect = (x1 - x0) / (y1 - y0)
        panel, top, bottom, side = 1.7, 0.6, 0.35 if self.ops else 0.1, 0.1
        n = len(self.samples)
        width, height = panel * aspect * n + 0.1 * (n - 1) + 2 * side, panel + top + bottom
        self.fig = Figure(figsize=(width, height), dpi=dpi)  # no pyplot: never shown, nothing left open
        axes = self.fig.subplots(1, n, squeeze=False)[0]
        self.fig.subplots_adjust(
            left=side / width, right=1 - side / width, top=1 - top / height, bottom=bottom / height, wspace=0.1 / (panel * aspect)
        )
        self.gmax = {op: {s: geometry.gamma_max(trace, op, s) for s in self.samples} for op in self.ops}
        kind = "image" if trace.x is not None else "sample"
        self.images, self.rects, self.centres = {}, {}, {}
        for ax, s in zip(axes, self.samples):
            ax.set_facecolor("0.82")  # grey: outside the image
            self.images[s] = show(ax, trace.canvas[0, s], f"{kind} {s}")
            ax.add_patch(Rectangle((-0.5, -0.5), W, H, fill=False, edgecolor="0.55", lw=0.5))
            for op in self.ops:
                self.rects[op, s] = ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor=OP_COLOURS[op]))
                self.centres[op, s] = ax.add_line(Line2D([], [], marker="+", ls="", color=OP_COLOURS[op], ms=5))
            ax.set_xlim(x0, x1)
            ax.set_ylim(y1, y0)
            for spine in ax.spines.values():
                spine.set_visible(False)
        if self.ops:
            handles = [Rectangle((0, 0), 1, 1, fill=False, edgecolor=OP_COLOURS[op], lw=1.5) for op in self.ops]
            self.fig.legend(
                handles, [f"{op} window" for op in self.ops], loc="lower center", ncol=len(self.ops), frameon=False, fontsize=8
            )
        self.title = self.fig.suptitle("", fontsize=10)
        self.update(1)

    def update(self, t: int) -> None:
        """Show step t (1-based): σ(c_t) and the windows of step t."""
        tr = self.trace
        for s in self.samples:
            self.images[s].set_data(image_args(tr.canvas[t - 1, s])[0])
            for op in self.ops:
                w = geometry.window(tr, op, t, s)
                xy, size = geometry.square(w, geometry.grid_n(tr, op))
                rect = self.rects[op, s]
                rect.set_xy(xy)
                rect.set_width(size)
                rect.set_height(size)
                rect.set(**geometry.stroke_style(w, self.gmax[op][s]))
                x, y = geometry.centre(w)
                self.centres[op, s].set_data([x], [y])
        self.title.set_text(f"step {t} / {tr.T}")


def _writer(suffix: str, fps: int):
    from matplotlib.animation import FFMpegWriter, PillowWriter

    if suffix == ".gif":
        return PillowWriter(fps=fps)
    if not FFMpegWriter.isAvailable():
        raise RuntimeError(
            "writing .mp4 needs ffmpeg, which was not found: install ffmpeg "
            "(e.g. apt-get install ffmpeg or conda install ffmpeg) or save as .gif"
        )
    return FFMpegWriter(fps=fps, codec="h264")


def save_animation(
    trace, path: Union[str, os.PathLike], samples: Sequence[int] = (0, 1, 2, 3), fps: int = 8, dpi: int = 80, hold: int = 4
) -> Path:
    """Write the drawing sequence of a trace as a GIF (``.gif``) or MP4 (``.mp4``, needs ffmpeg).

    Each frame shows the chosen samples side by side (a column each; samples beyond the trace's
    batch are skipped): the canvas σ(c_t) with step t's write window in red and, if the trace
    has one (reconstructions), its read window in green, titled "step t / T". Grey images use
    a gray scale fixed at [0, 1]; colour images are shown as RGB. All frames share one view that
    holds the image and every window drawn.

    Frames: one per step t = 1..T, then ``hold`` repeated copies of the last one, so that viewers
    see the finished image: T + hold frames in all, played at ``fps`` (the whole animation lasts
    (T + hold) / fps seconds). An MP4 stores all T + hold frames. A GIF stores the repeats as
    its last frame shown hold + 1 times as long (Pillow merges identical consecutive frames),
    so a GIF holds T frames and the same (T + hold) / fps seconds.

    The parent folder is created; the file is written to a temporary file beside it and moved
    into place, so a reader never sees a half-written file. Returns the path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"unsupported animation file type {path.suffix or '(no suffix)'!r} for {path}: use one of {', '.join(SUFFIXES)}"
        )
    if not (isinstance(hold, (int, np.integer)) and hold >= 0):
        raise ValueError(f"hold must be an integer >= 0 (repeats of the last frame), got {hold!r}")
    if not fps > 0 or not dpi > 0:
        raise ValueError(f"fps and dpi must be positive, got fps={fps!r}, dpi={dpi!r}")
    chosen = [int(s) for s in samples if 0 <= s < trace.batch]
    if not chosen:
        raise ValueError(f"none of the samples {list(samples)} is in this trace (batch of {trace.batch})")
    writer = _writer(suffix, fps)  # before anything is created: no ffmpeg, no file

    frames = _Frames(trace, chosen, dpi)
    try:
        with _files.atomic(path) as tmp:  # the writers pick the format by the suffix, which the partial keeps
            with writer.saving(frames.fig, tmp, dpi):
                for t in range(1, trace.T + 1):
                    frames.update(t)
                    writer.grab_frame()
                for _ in range(hold):
                    writer.grab_frame()
    finally:
        frames.fig.clear()  # a bare Figure: pyplot never held it, so this closes it
    return path
