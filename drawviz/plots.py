"""Figures of what DRAW does. Every function takes data and returns a matplotlib Figure.

Nothing here calls ``plt.show()``: notebooks display the returned figure, reports save it.
Data come from :mod:`drawviz.probes` (a :class:`~drawviz.trace.Trace` and its tidy
``frame``), from :func:`drawviz.train.train` (the history DataFrame) and from the measures of
:mod:`drawviz.diagnostics` and :mod:`drawviz.sharpness`. One step of a trace redrawn in place, and
the HTML scrubber made of it, are :mod:`drawviz.stepview`'s; GIFs :mod:`drawviz.animation`'s.

Coordinates: attention parameters are in the paper's 1-based pixel units (pixel a = 1..A),
so image column a − 1 in ``imshow``'s axes; the glimpse rectangle is centre ± N·δ/2. Where a
window lies and how it is stroked come from :mod:`drawviz.geometry`; colours and how an image is
shown from :mod:`drawviz.style`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt  # colormaps and norms only: figures are built without pyplot
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from . import files as _files
from . import geometry
from . import quantities as Q
from .trace import need as _need
from .style import OP_COLOURS, STEP_CMAP, show as _show

__all__ = [
    "plot_history",
    "plot_campaign",
    "plot_kl_per_step",
    "plot_drawing",
    "plot_diagnostics",
    "plot_trajectory",
    "plot_glimpses",
    "plot_attention_params",
    "plot_error_grid",
    "plot_error_magnitude",
    "plot_read_on_error",
    "plot_read_vs_error",
    "plot_scale_canvas",
    "plot_samples",
    "plot_sharpness",
    "plot_sharpness_per_step",
    "plot_intervention",
    "plot_step_value",
    "plot_edit_area",
    "plot_glimpse_path",
    "plot_glimpse_patches",
    "plot_where_it_looks",
    "plot_confusion",
    "plot_drawing_order",
    "plot_alignment",
    "save",
]


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize, squeeze: bool = True):
    # A bare Figure, not pyplot's: nothing is shown twice in Jupyter and nothing piles up in batch runs.
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def _label(trace, singular: bool = False) -> str:
    if singular:
        return {"reconstruction": "reconstruction", "generation": "sample from the prior"}.get(trace.mode, trace.mode)
    return {"reconstruction": "reconstructions", "generation": "samples from the prior"}.get(trace.mode, trace.mode)


def _show_error(ax, trace, t: int, sample: int, title: Optional[str] = None):
    """x̂_t of one sample on a diverging scale fixed at ±1 (colour: the mean over channels)."""
    artist = ax.imshow(trace.x_hat[t - 1, sample].mean(0), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return artist


def _add_rect(ax, trace, op: str, t: int, sample: int, gamma_max: float, label: Optional[str] = None):
    """The square of op's window at step t (geometry.square, stroked by geometry.stroke_style) and a + at its centre."""
    w = geometry.window(trace, op, t, sample)
    xy, size = geometry.square(w, geometry.grid_n(trace, op))
    rect = Rectangle(xy, size, size, fill=False, edgecolor=OP_COLOURS[op], label=label, **geometry.stroke_style(w, gamma_max))
    ax.add_patch(rect)
    ax.plot(*geometry.centre(w), "+", color=OP_COLOURS[op], ms=5, alpha=0.9)
    return rect


def _keep_view(ax, width: int, height: int, margin: float = 0.0):
    ax.set_xlim(-0.5 - margin, width - 0.5 + margin)
    ax.set_ylim(height - 0.5 + margin, -0.5 - margin)


# ----------------------------------------------------------------------------- training


def plot_history(history: pd.DataFrame, title: str = "training", smooth: int = 25) -> Figure:
    """Training loss (negative ELBO, nats) with its two terms, and the test NLL bound over steps.

    ``title`` (what was trained on what) heads the figure; the panels keep short titles.
    """
    fig, (ax, bx) = _subplots(1, 2, figsize=(10, 3.8))
    h = history
    window = max(1, min(smooth, len(h) // 5 or 1))
    for col, colour, name in (
        ("loss", "k", "loss = L^x + L^z"),
        ("nll", "#7b3294", "L^x (reconstruction)"),
        ("kl", "#008837", "L^z (KL, all steps)"),
    ):
        ax.plot(h["step"], h[col], color=colour, alpha=0.2, lw=0.8)
        ax.plot(h["step"], h[col].rolling(window, min_periods=1).mean(), color=colour, lw=1.6, label=name)
    ax.set(xlabel="optimiser step", ylabel="nats per image", title="training batches")
    ax.legend(frameon=False, fontsize=8)
    test = h.dropna(subset=["test_nll_bound"]) if "test_nll_bound" in h else h.iloc[:0]
    if len(test):
        bx.plot(test["step"], test["test_nll_bound"], "o-", color="#d7191c", ms=4)
        last = test.iloc[-1]
        bx.annotate(
            f"{last['test_nll_bound']:.1f}",
            (last["step"], last["test_nll_bound"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    else:
        bx.text(0.5, 0.5, "no test-set evaluation in this run", ha="center", va="center", transform=bx.transAxes)
    bx.set(xlabel="optimiser step", ylabel="negative ELBO ≥ −log p(x), nats", title="test NLL bound")
    fig.suptitle(title, fontsize=10)
    return fig


_LABEL_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8}  # a label stays legible over lines


def plot_campaign(
    curves: pd.DataFrame,
    anchors: Optional[pd.DataFrame] = None,
    title: str = "test bound over all legs of training",
    dims: Optional[int] = None,
) -> Figure:
    """The test NLL bound against epochs (left) and against CPU core-hours (right) of every model in
    ``curves`` (``campaign.curve`` rows, concatenated), with published ``anchors`` on the epoch axes:
    points where their epoch is known, dashed levels (on both axes) where only the final figure is. Where the
    curves carry the rate (an ``lr`` column), the bounds read at the end of an anneal (``campaign.anneal_ends``:
    the points that compare across models) are ringed. dims: the images' dimensions, to show bits/dim (the bound
    / (dims · ln 2)) instead of nats per image."""
    from .campaign import anneal_ends

    if dims:  # curves and anchors alike, so that the levels sit where the curves are
        per = dims * math.log(2)
        curves = curves.assign(test_nll_bound=curves["test_nll_bound"] / per)
        anchors = anchors.assign(test_nll_bound=anchors["test_nll_bound"] / per) if anchors is not None else None
    unit = "bits/dim" if dims else "nats per image"
    fig, axes = _subplots(1, 2, figsize=(11, 4.2))
    palette = dict(zip(curves["model"].unique(), plt.get_cmap("tab10").colors))
    ends = anneal_ends(curves) if "lr" in curves else curves.iloc[:0]
    for ax, x, label in ((axes[0], "epoch", "epochs of training"), (axes[1], "cpu_hours", "CPU core-hours of training")):
        for model, rows in curves.groupby("model", sort=False):
            ax.plot(rows[x], rows["test_nll_bound"], "o-", ms=3, lw=1.5, color=palette[model], label=model)
            ringed = ends[ends["model"] == model]
            ax.plot(ringed[x], ringed["test_nll_bound"], "o", ms=8, mfc="none", mew=1.2, color=palette[model])
            for ended in rows.groupby("leg").tail(1)[x].iloc[:-1]:  # where a leg ended and the next resumed
                ax.axvline(ended, color=palette[model], lw=0.6, ls=":", alpha=0.7)
            last = rows.iloc[-1]
            ax.annotate(
                f"{last['test_nll_bound']:.3f}" if dims else f"{last['test_nll_bound']:.1f}",
                (last[x], last["test_nll_bound"]),
                textcoords="offset points",
                xytext=(7, 3),
                fontsize=8,
                color=palette[model],
                bbox=_LABEL_BOX,
            )
        ax.set(xlabel=label, ylabel=f"test bound, {unit}", xscale="log" if x == "epoch" else "linear")
    if anchors is not None and len(anchors):
        for a in anchors.itertuples(index=False):
            for i, ax in enumerate(axes):
                if a.epoch is not None and a.epoch == a.epoch and i == 0:
                    # the value beside the star, who and when in the legend: long labels collided with the curves
                    ax.plot(
                        [a.epoch],
                        [a.test_nll_bound],
                        marker="*",
                        ms=11,
                        color="#333",
                        ls="none",
                        label=f"{a.source}: {a.test_nll_bound:g} at {a.epoch:g} epochs",
                    )
                    ax.annotate(
                        f"{a.test_nll_bound:g}",
                        (a.epoch, a.test_nll_bound),
                        textcoords="offset points",
                        xytext=(0, 8),
                        ha="center",
                        fontsize=7,
                        bbox=_LABEL_BOX,
                    )
                elif a.epoch is None or a.epoch != a.epoch:
                    ax.axhline(a.test_nll_bound, color="#333", lw=0.8, ls="--")
                    ax.annotate(
                        f"{a.source}: {a.test_nll_bound:.3f}" if dims else f"{a.source}: {a.test_nll_bound:g}",
                        (0.01, a.test_nll_bound),
                        xycoords=("axes fraction", "data"),
                        textcoords="offset points",
                        xytext=(0, 2),
                        fontsize=7,
                        bbox=_LABEL_BOX,
                    )
    handles, _ = axes[0].get_legend_handles_labels()
    if len(ends):
        handles.append(Line2D([], [], marker="o", ms=8, mfc="none", color="#555", ls="none", label="end of an anneal"))
    axes[0].legend(handles=handles, fontsize=8, frameon=False, loc="best")
    if anchors is not None and anchors["epoch"].notna().any():  # published points: their CPU hours are unknown
        axes[1].set_title("anchors trained on GPUs: no CPU hours to place them at", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def plot_kl_per_step(kl, title: str = "KL per step") -> Figure:
    """Mean KL(Q(z_t|·) ‖ N(0, I)) at each step t (nats), with the spread across images. kl: (T, B) or a Trace."""
    kl = np.asarray(kl.kl if hasattr(kl, "kl") else kl)
    T = kl.shape[0]
    steps = np.arange(1, T + 1)
    fig, ax = _subplots(figsize=(6.5, 3.4))
    mean = kl.mean(1)
    lo, hi = np.quantile(kl, [0.1, 0.9], axis=1)  # KL ≥ 0: quantiles, not ± sd, which would dip below 0
    ax.bar(steps, mean, color="#008837", alpha=0.8, label="mean over images")
    ax.vlines(steps, lo, hi, color="k", lw=0.8, label="10–90 % of images")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="step t", ylabel="KL, nats", title=f"{title} (total {mean.sum():.1f} nats, {kl.shape[1]} images)")
    ax.legend(frameon=False, fontsize=8)
    return fig


# ----------------------------------------------------------------------------- attention


def plot_drawing(
    trace,
    samples: Sequence[int] = tuple(range(8)),
    steps: Optional[Sequence[int]] = None,
    op: str = "write",
    title: Optional[str] = None,
) -> Figure:
    """The paper's Figure 1/4: images (rows) drawn over steps (columns), the canvas σ(c_t) with the
    step's window as a red square (centre ± N·δ/2, line width ∝ σ).

    Every panel shares one view that contains the image and every window shown, however far off the
    image; the grey margin is outside the image, and the title counts windows whose centre lies off
    it. A window larger than the image (a first step's wash over the whole canvas) keeps only its
    centre in view: it would otherwise shrink every canvas to a corner of its panel. Such a window
    is drawn dashed where the view cuts it, and counted too.
    """
    _need(trace, f"the drawing with its {op} windows", f"{op}_window")
    if op not in trace.windows:
        raise ValueError(f"this trace has no {op} windows (a model without attention?)")
    T = trace.T
    steps = list(steps or np.unique(np.linspace(1, T, min(T, 10)).round().astype(int)))
    samples = [s for s in samples if s < trace.batch]
    H, W = trace.canvas.shape[-2:]
    x0, x1, y0, y1 = -0.5, W - 0.5, -0.5, H - 0.5
    off = 0
    for s in samples:
        for t in steps:
            w = geometry.window(trace, op, t, s)
            a, b, c, d = geometry.extent(trace, op, t, s)
            if b - a > W or d - c > H:  # larger than the image: its centre (± a pixel) is what must show
                x, y = geometry.centre(w)
                a, b, c, d = x - 1, x + 1, y - 1, y + 1
            x0, x1, y0, y1 = min(x0, a), max(x1, b), min(y0, c), max(y1, d)
            off += bool(geometry.off_image(w["g_x"], w["g_y"], W, H))
    margin = 0.5
    x0, x1, y0, y1 = x0 - margin, x1 + margin, y0 - margin, y1 + margin
    clipped = 0
    aspect = (x1 - x0) / (y1 - y0)
    panel = 1.15
    fig, axes = _subplots(
        len(samples), len(steps), figsize=(panel * aspect * len(steps) + 0.4, panel * len(samples) + 0.8), squeeze=False
    )
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
    for i, s in enumerate(samples):
        for j, t in enumerate(steps):
            ax = axes[i, j]
            ax.set_facecolor("0.82")
            _show(ax, trace.canvas[t - 1, s])
            ax.add_patch(Rectangle((-0.5, -0.5), W, H, fill=False, edgecolor="0.55", lw=0.5))
            w = geometry.window(trace, op, t, s)
            xy, size = geometry.square(w, geometry.grid_n(trace, op))
            cut = xy[0] < x0 or xy[0] + size > x1 or xy[1] < y0 or xy[1] + size > y1
            clipped += cut
            lw = float(np.clip(0.5 + w["sigma"] / 2, 0.5, 4.0))  # thinner lines: small panels
            ax.add_patch(Rectangle(xy, size, size, fill=False, edgecolor=OP_COLOURS[op], ls="--" if cut else "-", lw=lw))
            ax.set_xlim(x0, x1)
            ax.set_ylim(y1, y0)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if i == 0:
                ax.set_title(f"t = {t}", fontsize=8)
    shown = len(samples) * len(steps)
    what = "while reconstructing test images" if trace.mode == "reconstruction" else "while sampling from the prior"
    fig.suptitle(title or f"DRAW drawing {what}: canvas σ(c_t) with the {op} window (centre ± N·δ/2, line width ∝ σ)", fontsize=9)
    larger = f"; {clipped} larger than the image, dashed where the view cuts them" if clipped else ""
    fig.supxlabel(
        f"{off} of {shown} {op} windows shown have their centre off the image (grey: outside the image, kept in "
        f"view so every window's centre shows){larger}",
        fontsize=8,
    )
    return fig


def plot_diagnostics(per_step: pd.DataFrame, title: str = "attention diagnostics", width: Optional[int] = None) -> Figure:
    """The four drawviz.diagnostics measures against t: footprint, centre spread, off-image share, edit area."""
    fig, axes = _subplots(1, 4, figsize=(14, 3.2))
    for op in ("read", "write"):
        d = per_step[per_step["op"] == op]
        if not len(d):
            continue
        axes[0].plot(d["step"], d["footprint"], color=OP_COLOURS[op], label=op)
        axes[1].plot(d["step"], d["spread_px"], color=OP_COLOURS[op], label=op)
        axes[2].plot(d["step"], 100 * d["off_image"], color=OP_COLOURS[op], label=op)
    canvas = per_step[per_step["op"] == "canvas"]
    if len(canvas):
        axes[3].plot(canvas["step"], canvas["edit_area"], color="k", label="this model")
    axes[0].axhline(1, color="0.5", ls="--", lw=0.8, label="whole image")
    if width:
        axes[1].axhline(width / np.sqrt(12), color="0.5", ls="--", lw=0.8, label="uniform centres")
    axes[3].axhline(0.9, color="0.5", ls="--", lw=0.8, label="change spread evenly")
    axes[0].set(ylabel="N·δ + 2σ, share of width", title="footprint (median)")
    axes[1].set(ylabel="sd of centre over images, px", title="input dependence")
    axes[2].set(ylabel="% of windows", title="centre off the image")
    axes[3].set(ylabel="share of pixels", title="edit area: 90 % of |c_t − c_{t−1}|", ylim=(0, 1))
    for ax in axes:
        ax.set_xlabel("step t")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.legend(frameon=False, fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def plot_trajectory(
    trace, samples: Sequence[int] = (0, 1, 2, 3), ops: Optional[Sequence[str]] = None, title: Optional[str] = None
) -> Figure:
    """The path of (g_X, g_Y) over t on each image, coloured by step: one column per op (read, write).

    Background: the input x for reconstructions, the final canvas σ(c_T) for samples.
    """
    _need(trace, "the attention path", *(f"{op}_window" for op in ops or ("write",)))
    ops = list(ops or geometry.ops(trace))
    samples = [s for s in samples if s < trace.batch]
    fig, axes = _subplots(len(ops), len(samples), figsize=(2.3 * len(samples) + 0.8, 2.4 * len(ops)), squeeze=False)
    T = trace.T
    norm = plt.Normalize(1, T)
    cmap = plt.get_cmap(STEP_CMAP)
    H, W = trace.canvas.shape[-2:]
    for i, op in enumerate(ops):
        for j, s in enumerate(samples):
            ax = axes[i, j]
            background = trace.x[s] if trace.x is not None else trace.canvas[-1, s]
            artist = _show(ax, background)
            artist.set_alpha(0.55)  # dim the image so the path reads
            w = trace.windows[op]
            px, py = w.g_x[:, s] - 1, w.g_y[:, s] - 1
            segments = np.stack([np.c_[px[:-1], py[:-1]], np.c_[px[1:], py[1:]]], 1)
            ax.add_collection(LineCollection(segments, cmap=cmap, norm=norm, array=np.arange(1.5, T), lw=1.4))
            ax.scatter(px, py, c=np.arange(1, T + 1), cmap=cmap, norm=norm, s=14, edgecolors="white", linewidths=0.4, zorder=3)
            ax.scatter(px[:1], py[:1], marker="o", s=50, facecolors="none", edgecolors="white", zorder=4)
            _keep_view(ax, W, H, margin=2)
            if j == 0:
                ax.set_ylabel(f"{op} centre", color=OP_COLOURS[op], fontsize=10)
            if i == 0:
                ax.set_title(f"{'image' if trace.x is not None else 'sample'} {s}", fontsize=9)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.8, label="step t")
    fig.suptitle(title or f"attention path (g_X, g_Y) over t, {_label(trace)}; open circle = t = 1", fontsize=10)
    return fig


def plot_glimpses(trace, steps: Optional[Sequence[int]] = None, sample: int = 0, title: Optional[str] = None) -> Figure:
    """The canvas σ(c_t) at chosen steps with the read and write windows of step t drawn on it.

    Square: centre ± N·δ/2; line width grows with σ; opacity with γ.
    """
    _need(trace, "the canvas with its windows", Q.WRITE_WINDOW)
    T = trace.T
    steps = list(steps or sorted({1, max(1, T // 4), max(1, T // 2), max(1, 3 * T // 4), T}))
    ops = geometry.ops(trace)
    H, W = trace.canvas.shape[-2:]
    extra = trace.x is not None
    fig, axes = _subplots(1, len(steps) + extra, figsize=(2.1 * (len(steps) + extra), 2.6), squeeze=False)
    axes = axes[0]
    if extra:
        _show(axes[0], trace.x[sample], "input x")
    gmax = {op: geometry.gamma_max(trace, op, sample) for op in ops}
    for ax, t in zip(axes[extra:], steps):
        _show(ax, trace.canvas[t - 1, sample], f"σ(c_{t})")
        for op in ops:
            _add_rect(ax, trace, op, t, sample, gmax[op], label=op)
        _keep_view(ax, W, H, margin=3)
    handles = [Rectangle((0, 0), 1, 1, fill=False, edgecolor=OP_COLOURS[op], lw=1.5) for op in ops]
    fig.legend(
        handles,
        [f"{op} window (N = {geometry.grid_n(trace, op)})" for op in ops],
        loc="outside lower center",
        ncol=len(ops),
        frameon=False,
        fontsize=8,
    )
    fig.suptitle(
        title
        or f"glimpses on the canvas, {_label(trace, singular=True)} {sample}: "
        "square = centre ± N·δ/2, line width ∝ σ, opacity ∝ γ",
        fontsize=9,
    )
    return fig


def plot_attention_params(frame: pd.DataFrame, title: str = "attention parameters") -> Figure:
    """δ, σ and the gain against t, mean ± sd across samples, read and write (and modes) apart.

    The gain is what each op multiplies its pixels by: γ for read (eq. 27) but 1/γ for write
    (eq. 29 divides the patch by γ), so a large write γ means a faint stroke. frame: Trace.frame(s).
    """
    import seaborn as sns

    f = frame.copy()
    f["op"] = f["op"].astype(str)
    f["gain"] = np.where(f["op"] == "write", 1 / f["gamma"], f["gamma"])
    n = f["sample"].nunique()
    fig, axes = _subplots(1, 3, figsize=(12, 3.6))
    styles = f["mode"].nunique() > 1
    for ax, (col, name) in zip(
        axes, (("delta", "stride δ (pixels)"), ("sigma", "filter sd σ (pixels)"), ("gain", "gain: read γ, write 1/γ"))
    ):
        sns.lineplot(
            data=f,
            x="step",
            y=col,
            hue="op",
            palette=OP_COLOURS,
            style="mode" if styles else None,
            errorbar="sd",
            ax=ax,
            legend=ax is axes[-1],
        )
        ax.set(xlabel="step t", ylabel=name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if col == "gain":
            ax.set_yscale("log")
            ax.set_title("read multiplies by γ, write divides by γ", fontsize=9)
    if axes[-1].get_legend():
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=8)
    modes = ", ".join(sorted(f["mode"].unique()))
    fig.suptitle(f"{title}: mean ± sd over {n} samples ({modes})", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- error images


def plot_error_grid(
    trace, samples: Sequence[int] = (0, 1, 2, 3), steps: Optional[Sequence[int]] = None, title: Optional[str] = None
) -> Figure:
    """x̂_t = x − σ(c_{t−1}) for several images (rows) over steps (columns); red: ink still missing."""
    _need(trace, "error images", Q.X_HAT)
    if trace.x_hat is None:
        raise ValueError("error images exist only for reconstructions (probes.record), not for samples")
    T = trace.T
    steps = list(steps or np.unique(np.linspace(1, T, min(T, 8)).round().astype(int)))
    samples = [s for s in samples if s < trace.batch]
    fig, axes = _subplots(len(samples), len(steps) + 1, figsize=(1.5 * (len(steps) + 1) + 1, 1.55 * len(samples)), squeeze=False)
    for i, s in enumerate(samples):
        _show(axes[i, 0], trace.x[s], "input x" if i == 0 else None)
        for j, t in enumerate(steps, 1):
            im = _show_error(axes[i, j], trace, t, s, f"x̂_{t}" if i == 0 else None)
    fig.colorbar(im, ax=axes, shrink=0.8, label="x − σ(c_{t−1})")
    fig.suptitle(title or "error images x̂_t over steps (t = 1: the learned initial canvas)", fontsize=10)
    return fig


def plot_error_magnitude(trace, title: Optional[str] = None) -> Figure:
    """Mean |x̂_t| per pixel at each step: mean ± sd over images, and the final error |x − σ(c_T)|."""
    _need(trace, "error images", Q.X_HAT)
    if trace.x_hat is None:
        raise ValueError("error images exist only for reconstructions (probes.record)")
    T, B = trace.x_hat.shape[:2]
    mag = np.abs(trace.x_hat).reshape(T, B, -1).mean(-1)
    final = np.abs(trace.x - trace.canvas[-1]).reshape(B, -1).mean(-1)
    steps = np.arange(1, T + 1)
    fig, ax = _subplots(figsize=(6.5, 3.4))
    m, sd = mag.mean(1), mag.std(1)
    ax.fill_between(steps, m - sd, m + sd, color="#2166ac", alpha=0.2, lw=0)
    ax.plot(steps, m, "o-", color="#2166ac", ms=3, label="mean |x̂_t| ± sd")
    ax.axhline(final.mean(), color="k", ls="--", lw=1, label=f"after the last step: {final.mean():.3f}")
    ax.set(
        xlabel="step t",
        ylabel="mean |error| per pixel",
        ylim=(0, None),
        title=title or f"how fast the error shrinks ({B} images)",
    )
    ax.legend(frameon=False, fontsize=8)
    return fig


def plot_scale_canvas(trace, samples: Sequence[int] = (0, 1, 2, 3), title: Optional[str] = None) -> Figure:
    """A model with a scale canvas (issue 33's arm) says per pixel how sure it is: for each image (rows), the input,
    the canvas σ(c_T), the error |x − σ(c_T)| and the drawn log-scale s_T (the mean over channels), and over all
    images the rank correlation between the two: does it admit doubt where it is wrong?"""
    _need(trace, "a scale canvas", Q.SCALE_CANVAS)
    if trace.x_hat is None:
        raise ValueError("the error beside the scale exists only for reconstructions (probes.record), not for samples")
    s_T, final = trace[Q.SCALE_CANVAS][-1].mean(1), trace.canvas[-1]  # (batch, H, W), (batch, C, H, W)
    error = np.abs(trace.x - final).mean(1)  # (batch, H, W)
    rank = lambda a: a.reshape(len(a), -1).argsort(1).argsort(1).astype(float)  # noqa: E731
    rs, re_ = rank(s_T), rank(error)
    rho = [np.corrcoef(a, b)[0, 1] for a, b in zip(rs, re_)]  # Spearman's ρ per image
    samples = [i for i in samples if i < trace.batch]
    fig, axes = _subplots(len(samples), 4, figsize=(7.4, 1.75 * len(samples) + 0.5), squeeze=False)
    lo, hi = np.percentile(s_T, [1, 99])
    top = max(float(np.percentile(error, 99)), 1e-6)  # a few outlying pixels should not darken the rest
    for row, i in enumerate(samples):
        _show(axes[row, 0], trace.x[i], "input x" if row == 0 else None)
        _show(axes[row, 1], final[i], "canvas σ(c_T)" if row == 0 else None)
        err = axes[row, 2].imshow(error[i], cmap="viridis", vmin=0, vmax=top, interpolation="nearest")
        sc = axes[row, 3].imshow(s_T[i], cmap="magma", vmin=lo, vmax=hi, interpolation="nearest")
        axes[row, 3].set_ylabel(f"ρ = {rho[i]:.2f}", fontsize=8)
        for ax in axes[row, 2:]:
            ax.set_xticks([])
            ax.set_yticks([])
        if row == 0:
            axes[row, 2].set_title("error |x − σ(c_T)|", fontsize=9)
            axes[row, 3].set_title("log-scale s_T", fontsize=9)
    fig.colorbar(err, ax=axes[-1, 2], location="bottom", shrink=0.9, label="|error| (99th pct. top)")
    fig.colorbar(sc, ax=axes[-1, 3], location="bottom", shrink=0.9, label="s_T (logit units)")
    fig.suptitle(
        (title or "where it says it is unsure")
        + f"\nrank correlation of s_T with the error, per image: median {np.median(rho):.2f} over {trace.batch} images",
        fontsize=10,
    )
    return fig


def plot_read_on_error(
    trace, offsets: pd.DataFrame, sample: int = 0, steps: Optional[Sequence[int]] = None, title: Optional[str] = None
) -> Figure:
    """x̂_t with the read square of step t and the largest error (×) marked, at a few steps of one image."""
    _need(trace, "the read window on the error image", Q.X_HAT, Q.READ_WINDOW)
    T = trace.T
    steps = list(steps or np.unique(np.linspace(1, T, min(T, 6)).round().astype(int)))
    H, W = trace.x_hat.shape[-2:]
    fig, axes = _subplots(1, len(steps), figsize=(2.1 * len(steps) + 1, 2.5), squeeze=False)
    gmax = geometry.gamma_max(trace, "read", sample)
    row = offsets.set_index(["sample", "step"])
    for ax, t in zip(axes[0], steps):
        peak = row.loc[(sample, t)]
        im = _show_error(ax, trace, t, sample, f"x̂_{t}: {'inside' if peak['inside'] else 'outside'}")
        _add_rect(ax, trace, "read", t, sample, gmax)
        ax.plot(peak["err_x"] - 1, peak["err_y"] - 1, "x", color="k", ms=8, mew=2)
        _keep_view(ax, W, H, margin=3)
    fig.colorbar(im, ax=axes, shrink=0.8, label="x − σ(c_{t−1})")
    fig.suptitle(title or f"image {sample}: read square (centre ± N·δ/2) and the largest error (×)", fontsize=10)
    return fig


def plot_read_vs_error(offsets: pd.DataFrame, title: Optional[str] = None) -> Figure:
    """From diagnostics.read_error_offsets: distance from the read centre to the error peak, and how often the peak is inside."""
    g = offsets.groupby("step")
    fig, (ax, bx) = _subplots(1, 2, figsize=(10, 3.4))
    d = g["distance"]
    ax.fill_between(
        d.mean().index, d.quantile(0.25), d.quantile(0.75), color=OP_COLOURS["read"], alpha=0.2, lw=0, label="interquartile range"
    )
    ax.plot(d.median().index, d.median(), "o-", color=OP_COLOURS["read"], ms=3, label="median")
    ax.set(xlabel="step t", ylabel="pixels", ylim=(0, None), title="distance: read centre (g_X, g_Y) → largest |x̂_t|")
    ax.legend(frameon=False, fontsize=8)
    inside = g["inside"].mean()
    bx.bar(inside.index, inside, color=OP_COLOURS["read"], alpha=0.8, label="read square")
    if "inside_by_chance" in offsets:
        chance = g["inside_by_chance"].mean()
        bx.step(chance.index, chance, where="mid", color="k", ls="--", lw=1.2, label="same square placed at random")
        bx.legend(frameon=False, fontsize=8)
    bx.set(xlabel="step t", ylabel="share of images", ylim=(0, 1), title="largest error inside the square (± N·δ/2)")
    for a in (ax, bx):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title or f"does DRAW read where it is most wrong? ({offsets['sample'].nunique()} images)", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- samples and blur


def plot_samples(rows: Mapping[str, np.ndarray], n: int = 8, title: str = "") -> Figure:
    """Image sets side by side: one row per named set {name: (N, C, H, W)}, the first n of each."""
    rows = {k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v) for k, v in rows.items()}
    n = min(n, *(len(v) for v in rows.values()))
    fig, axes = _subplots(len(rows), n, figsize=(1.15 * n + 1.2, 1.25 * len(rows)), squeeze=False)
    for i, (name, images) in enumerate(rows.items()):
        for j in range(n):
            _show(axes[i, j], images[j])
        axes[i, 0].set_ylabel(name, fontsize=9, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


_MEASURE_NAMES = {"laplacian_variance": "variance of the Laplacian", "high_frequency_share": "energy above ½ Nyquist"}


def plot_sharpness(table: pd.DataFrame, title: str = "sharpness relative to the test images") -> Figure:
    """Each set's sharpness as a ratio to its dataset's test images, both measures, one group per dataset.

    table: sharpness.summary rows (dataset, images) or an index of image sets. Ratios keep the
    bars on a linear axis (the raw Laplacian variances span decades across datasets: see the table).
    """
    t = table.reset_index()
    if "dataset" not in t:
        t["dataset"] = ""
    fig, axes = _subplots(1, 2, figsize=(11, 3.6))
    kinds = [k for k in dict.fromkeys(t["images"]) if k != "test images"]
    datasets = list(dict.fromkeys(t["dataset"]))
    width = 0.8 / max(len(kinds), 1)
    colours = dict(zip(["reconstructions", "samples"], ["#29a3e0", "#e4572e"]))
    ref = t[t["images"] == "test images"].set_index("dataset").reindex(datasets)
    for ax, m in zip(axes, _MEASURE_NAMES):
        for k, kind in enumerate(kinds):
            sub = t[t["images"] == kind].set_index("dataset").reindex(datasets)
            ratio = sub[m] / ref[m]
            x = np.arange(len(datasets)) + (k - (len(kinds) - 1) / 2) * width
            bars = ax.bar(x, ratio, width, color=colours.get(kind, "#7b3294"), label=f"{kind} / test images")
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
        ax.axhline(1, color="k", ls="--", lw=1, label="as sharp as the test images")
        ax.set_xticks(np.arange(len(datasets)), datasets)
        ax.set(
            ylabel="ratio to the test images",
            ylim=(0, max(1.15, ax.get_ylim()[1])),
            title=_MEASURE_NAMES[m] + " (below 1: blurrier)",
        )
    axes[-1].legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(title, fontsize=10)
    return fig


def plot_sharpness_per_step(
    per_step: pd.DataFrame, reference: Optional[Mapping[str, float]] = None, title: str = "sharpness of σ(c_t) over steps"
) -> Figure:
    """Both measures of the canvas at each step t, per source (hue); dashed: the test images' level.

    per_step: rows from sharpness.per_step (columns source, step, image, measures); reference:
    {measure: value} for the test images (or {source: {measure: value}} per dataset).
    """
    import seaborn as sns

    fig, axes = _subplots(1, 2, figsize=(11, 3.5))
    palette = dict(zip(per_step["source"].unique(), sns.color_palette("tab10")))
    for ax, m in zip(axes, _MEASURE_NAMES):
        sns.lineplot(data=per_step, x="step", y=m, hue="source", palette=palette, errorbar="se", ax=ax, legend=ax is axes[-1])
        if reference:
            for key, value in reference.items():
                if isinstance(value, Mapping):
                    ax.axhline(value[m], ls="--", lw=1, color=palette.get(key, "k"))
                elif key == m:
                    ax.axhline(value, ls="--", lw=1, color="k", label="test images")
        ax.set(xlabel="step t", ylabel=_MEASURE_NAMES[m])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if m == "laplacian_variance":
            ax.set_yscale("log")  # blurred canvases sit orders of magnitude below the data
    legend = axes[-1].get_legend()
    if legend:
        handles, labels = axes[-1].get_legend_handles_labels()
        if reference and not any(l == "test images" for l in labels):
            handles.append(Line2D([], [], color="k", ls="--", lw=1))
            labels.append("test images (dashed, in each source's colour)")
        legend.remove()
        axes[-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=8)
    fig.suptitle(title + " (dashed: test images)", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- scrubbing

# ----------------------------------------------------------------------------- interventions


def plot_intervention(
    traces: Mapping[str, object], steps: Sequence[int], sample: int = 0, reference: str = "plain", title: str = ""
) -> Figure:
    """One row per run {label: Trace} of the same image: the canvas σ(c_t) at ``steps`` with the windows of
    step t, and, last, the final canvas minus the reference run's (red: more ink than the reference)."""
    labels = list(traces)
    base = traces[reference].canvas[-1, sample].mean(0)
    n = len(steps)
    fig, axes = _subplots(len(labels), n + 1, figsize=(1.25 * (n + 1) + 2.2, 1.35 * len(labels)), squeeze=False)
    diff_artist = None
    for i, label in enumerate(labels):
        trace = traces[label]
        for j, t in enumerate(steps):
            ax = axes[i, j]
            _show(ax, trace.canvas[t - 1, sample], f"t = {t}" if i == 0 else None)
            for op in geometry.ops(trace):
                _add_rect(ax, trace, op, t, sample, geometry.gamma_max(trace, op, sample))
            _keep_view(ax, trace.canvas.shape[-1], trace.canvas.shape[-2], margin=3)
        diff_artist = axes[i, n].imshow(
            trace.canvas[-1, sample].mean(0) - base, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest"
        )
        axes[i, n].set_xticks([])
        axes[i, n].set_yticks([])
        axes[i, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center", wrap=True)
    axes[0, n].set_title(f"c_T − {reference}", fontsize=9)
    fig.colorbar(diff_artist, ax=axes[:, n], shrink=0.6, label="ink difference")
    handles = [Line2D([], [], color=OP_COLOURS[op], lw=1.5, label=f"{op} window") for op in ("read", "write")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.02))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_step_value(table: pd.DataFrame, title: str = "what each step buys") -> Figure:
    """Per step: the KL it costs and the drop in reconstruction error it brings, both in bits
    (``comparisons.what_each_step_buys``). A step whose drop is far above its KL explains much with little z."""
    fig, ax = _subplots(figsize=(8, 3.2))
    width = 0.42
    ax.bar(table["step"] - width / 2, table["kl_bits"], width, color="#7570b3", label="KL_t (bits of z)")
    ax.bar(table["step"] + width / 2, table["error_drop_bits"], width, color="#1b9e77", label="drop in −log D(x | c_t) (bits)")
    ax.axhline(0, color="#444", lw=0.6)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set(xlabel="step t", ylabel="bits per image (symlog)", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, frameon=False)
    return fig


def plot_edit_area(traces: Mapping[str, object], title: str = "how much of the image a step changes") -> Figure:
    """Median edit area per step (the share of pixels receiving 90 % of the step's canvas change) against
    the step as a share of T, for models of any T: a one-shot model is a single point."""
    fig, ax = _subplots(figsize=(6.5, 3.4))
    for label, trace in traces.items():
        area = np.median(trace.edit_area, axis=1)
        frac = np.arange(1, trace.T + 1) / trace.T
        ax.plot(frac, area, marker="o" if trace.T == 1 else None, ms=8, lw=1.5, label=f"{label} (T = {trace.T})")
    ax.axhline(0.9, color="#888", ls=":", lw=1, label="a change spread evenly (0.9)")
    ax.set(xlabel="step t / T", ylabel="edit area (share of pixels)", ylim=(0, 1), xlim=(0, 1.02), title=title)
    ax.legend(fontsize=8, frameon=False)
    return fig


# ----------------------------------------------------------------------------- the classifier (section 4.1) and order

# the digit's box, outlined faintly under the windows: a reader sees whether the glimpses found it
_DIGIT_BOX = {"edgecolor": "#ffbf00", "linestyle": "--", "linewidth": 0.9, "alpha": 0.7, "fill": False}
_DIGIT_COLOURS = {"A": "#1b9e77", "B": "#d95f02"}  # the two digits of a two-digit scene (drawviz.order)


def _glimpse_scale(trace, sample: int) -> float:
    """The brightest pixel of all of one sample's glimpses (of the image: DRAW's glimpse also reads x̂):
    the glimpses of one image are shown on one scale, 0 to this."""
    return max(float(trace.glimpse[:, sample, 0].max()), 1e-8)


def _glimpse_image(trace, t: int, sample: int, scale: float) -> np.ndarray:
    """Glimpse t (1-based) of one sample as a (C, N, N) image in [0, 1]: γ·F_Y x F_Xᵀ over ``scale``."""
    return np.clip(trace.glimpse[t - 1, sample, 0] / scale, 0, 1)


def _predicted(trace, sample: int) -> Optional[int]:
    return None if trace.logits is None else int(trace.logits[sample].argmax())


def plot_glimpse_path(
    trace, samples: Sequence[int] = tuple(range(6)), objects: Optional[pd.DataFrame] = None, title: Optional[str] = None
) -> Figure:
    """The paper's Figure 5: each image with every glimpse's read window, a green square (centre ± N·δ/2, line
    width growing with σ, opacity with γ) numbered by its order, 1..T.

    objects: the scene's pieces (``ImageSet.objects`` of the images the trace was recorded on, in that order):
    the digit's box is then outlined faintly (dashed) and each panel says the label beside the prediction, so a
    reader sees whether the glimpses found the digit. Every panel shares one view holding the image and every
    window shown (grey: outside the image), as plot_drawing's.
    """
    if "read" not in trace.windows or trace.x is None:
        raise ValueError("the glimpse path needs a pass over images with read windows (probes.record of a model that reads)")
    samples = [s for s in samples if s < trace.batch]
    if not samples:
        raise ValueError(f"no images to show: samples must index the trace's {trace.batch} images")
    T, H, W = trace.T, *trace.x.shape[-2:]
    x0, x1, y0, y1 = -0.5, W - 0.5, -0.5, H - 0.5
    for s in samples:
        for t in range(1, T + 1):
            a, b, c, d = geometry.extent(trace, "read", t, s)
            x0, x1, y0, y1 = min(x0, a), max(x1, b), min(y0, c), max(y1, d)
    aspect = (x1 - x0) / (y1 - y0)
    columns = min(len(samples), 6)
    rows = -(-len(samples) // columns)
    fig, axes = _subplots(rows, columns, figsize=(2.3 * aspect * columns + 0.4, 2.4 * rows + 0.8), squeeze=False)
    for ax in axes.flat[len(samples) :]:
        ax.set_visible(False)
    digits = objects[objects["kind"] == "digit"].groupby("image").first() if objects is not None else None
    N = geometry.grid_n(trace, "read")
    for ax, s in zip(axes.flat, samples):
        ax.set_facecolor("0.82")
        _show(ax, trace.x[s])
        gmax = geometry.gamma_max(trace, "read", s)
        for t in range(1, T + 1):
            rect = _add_rect(ax, trace, "read", t, s, gmax)
            rect.set_gid(f"glimpse {t}")
            ax.text(
                rect.get_x() + 1,
                rect.get_y() + 1,
                str(t),
                color=OP_COLOURS["read"],
                fontsize=7,
                ha="left",
                va="top",
                fontweight="bold",
            )
        said = _predicted(trace, s)
        name = f"image {s}" + (f": says {said}" if said is not None else "")
        colour = "k"
        if digits is not None and s in digits.index:
            box = digits.loc[s]
            ax.add_patch(Rectangle((box["x"] - 0.5, box["y"] - 0.5), box["width"], box["height"], gid="digit", **_DIGIT_BOX))
            name = f"image {s}: a {box['label']}" + (f", says {said}" if said is not None else "")
            colour = "k" if said is None or said == box["label"] else "#d7191c"
        ax.set_title(name, fontsize=8, color=colour)
        ax.set_xlim(x0 - 0.5, x1 + 0.5)
        ax.set_ylim(y1 + 0.5, y0 - 0.5)
        for spine in ax.spines.values():
            spine.set_visible(False)
    handles = [Line2D([], [], color=OP_COLOURS["read"], lw=1.5, label=f"glimpse t (numbered): centre ± N·δ/2, N = {N}")]
    if digits is not None:
        handles.append(Line2D([], [], color=_DIGIT_BOX["edgecolor"], ls="--", lw=1, label="the digit's box"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=8)
    fig.suptitle(title or f"where the classifier looks: its {T} glimpses on each image (line width ∝ σ, opacity ∝ γ)", fontsize=9)
    return fig


def plot_glimpse_patches(
    trace, samples: Sequence[int] = tuple(range(6)), glimpses: Optional[Sequence[int]] = None, title: Optional[str] = None
) -> Figure:
    """The glimpses themselves: one row per image (first the image), one column per glimpse t, each the N × N
    read γ·F_Y x F_Xᵀ (eq. 27; of the image: a DRAW glimpse's x̂ half is left out). One image's glimpses share a
    scale, black 0 to white its brightest glimpse pixel, so a faint glimpse (small γ, or the window on empty
    background) shows as dark. glimpses: which t (default all, or 16 spread over 1..T when T > 16)."""
    if trace.glimpse is None or trace.x is None:
        raise ValueError("glimpses exist only for a pass over images by a model that reads (probes.record)")
    T = trace.T
    glimpses = list(glimpses or np.unique(np.linspace(1, T, min(T, 16)).round().astype(int)))
    samples = [s for s in samples if s < trace.batch]
    if not samples:
        raise ValueError(f"no images to show: samples must index the trace's {trace.batch} images")
    N = geometry.grid_n(trace, "read")
    fig, axes = _subplots(
        len(samples), len(glimpses) + 1, figsize=(0.95 * (len(glimpses) + 1) + 0.4, 1.05 * len(samples) + 0.7), squeeze=False
    )
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
    for i, s in enumerate(samples):
        scale = _glimpse_scale(trace, s)
        said = _predicted(trace, s)
        _show(axes[i, 0], trace.x[s], "image" if i == 0 else None)
        axes[i, 0].set_ylabel(f"{s}" + (f": says {said}" if said is not None else ""), fontsize=8)
        for j, t in enumerate(glimpses, 1):
            _show(axes[i, j], _glimpse_image(trace, t, s, scale), f"t = {t}" if i == 0 else None)
    fig.suptitle(title or f"the {N}×{N} glimpses, in order (each row on its own scale: white = its brightest)", fontsize=9)
    return fig


def plot_where_it_looks(looks: pd.DataFrame, width: Optional[int] = None, title: Optional[str] = None) -> Figure:
    """From ``looking.where_it_looks``, per glimpse: the distance from the window's centre to the digit's (median
    and interquartile range), the share of images whose window covers the digit's centre, and the window's side
    N·δ; chance (dashed) is a window of the same side with its centre uniform over the frame. width: the frame's,
    drawn on the footprint panel (a window as wide as the frame zooms in on nothing)."""
    g = looks.groupby("glimpse")
    colour = OP_COLOURS["read"]
    fig, axes = _subplots(1, 3, figsize=(13, 3.5))
    ax = axes[0]
    d = g["distance"]
    ax.fill_between(d.median().index, d.quantile(0.25), d.quantile(0.75), color=colour, alpha=0.2, lw=0, label="interquartile")
    ax.plot(d.median().index, d.median(), "o-", color=colour, ms=3, label="the model (median)")
    ax.plot(d.median().index, g["chance_distance"].median(), "k--", lw=1.2, label="chance (median)")
    ax.set(xlabel="glimpse t", ylabel="pixels", ylim=(0, None), title="distance: window centre → the digit's centre")
    covers, chance = g["covers"].mean(), g["chance_covers"].mean()
    axes[1].bar(covers.index, covers, color=colour, alpha=0.8, label="the model")
    axes[1].step(chance.index, chance, where="mid", color="k", ls="--", lw=1.2, label="chance")
    axes[1].set(xlabel="glimpse t", ylabel="share of images", ylim=(0, 1), title="the window covers the digit's centre")
    f = g["footprint"]
    axes[2].fill_between(f.median().index, f.quantile(0.25), f.quantile(0.75), color=colour, alpha=0.2, lw=0)
    axes[2].plot(f.median().index, f.median(), "o-", color=colour, ms=3, label="the model (median, IQR)")
    if width:
        axes[2].axhline(width, color="0.5", ls="--", lw=0.8, label="the frame's width")
    axes[2].set(xlabel="glimpse t", ylabel="N·δ, pixels", title="the window's side: does it zoom in?")
    axes[2].set_ylim(0, max(axes[2].get_ylim()[1], 1.1 * (width or 0)))  # room above the frame's width
    for a in axes:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.legend(frameon=False, fontsize=8)
    fig.suptitle(title or f"where the classifier looks, against chance ({looks['image'].nunique()} images)", fontsize=10)
    return fig


def plot_confusion(table: pd.DataFrame, title: Optional[str] = None) -> Figure:
    """From ``looking.confusion``: counts, rows the true class, columns the predicted one; each non-empty cell
    says its count, and the title the error (1 − the diagonal's share)."""
    counts = table.to_numpy()
    total = int(counts.sum())
    error = 1 - np.trace(counts) / total if total else float("nan")
    fig, ax = _subplots(figsize=(5.2, 4.6))
    artist = ax.imshow(counts, cmap="Blues", interpolation="nearest")
    high = counts.max() / 2 if counts.size else 0
    for (i, j), n in np.ndenumerate(counts):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if n > high else "k")
    ax.set_xticks(range(counts.shape[1]), table.columns)
    ax.set_yticks(range(counts.shape[0]), table.index)
    ax.set(xlabel="predicted", ylabel="true")
    fig.colorbar(artist, ax=ax, shrink=0.8, label="images")
    ax.set_title(title or f"confusion: {total} images, error {error:.1%}", fontsize=10)
    return fig


def plot_drawing_order(steps: pd.DataFrame, images: Sequence[int] = range(8), title: Optional[str] = None) -> Figure:
    """From ``order.drawing_order``'s ``steps``: per image a small panel, the cumulative share of each digit's
    final visible change (A and B) against the step (or of its final ink, read ``by="ink"``). Drawn one digit at
    a time, one curve climbs while the other stays flat; drawn together, they climb together."""
    present = set(steps["image"].unique())
    images = [i for i in images if i in present]
    columns = min(len(images), 4) or 1
    rows = -(-len(images) // columns) or 1
    fig, axes = _subplots(rows, columns, figsize=(2.6 * columns + 0.4, 2.0 * rows + 0.8), squeeze=False)
    for ax in axes.flat[len(images) :]:
        ax.set_visible(False)
    for ax, image in zip(axes.flat, images):
        rows_of = steps[steps["image"] == image]
        for digit, colour in _DIGIT_COLOURS.items():
            d = rows_of[rows_of["digit"] == digit].sort_values("step")
            ax.plot(d["step"], d["share"], "o-", ms=2.5, lw=1.4, color=colour, label=f"digit {digit}")
        ax.axhline(0.5, color="0.6", ls=":", lw=0.8)
        ax.set(ylim=(-0.03, 1.03), title=f"image {image}")
        ax.title.set_fontsize(8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[-1]:
        ax.set_xlabel("step t", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("share drawn", fontsize=8)
    handles = [Line2D([], [], color=c, marker="o", ms=3, label=f"digit {d}") for d, c in _DIGIT_COLOURS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False, fontsize=8)
    fig.suptitle(title or "drawing order: each digit's cumulative share of its final visible change", fontsize=9)
    return fig


def plot_alignment(trace, words: Sequence[str], sample: int = 0, steps: Optional[Sequence[int]] = None, title=None) -> Figure:
    """Which word a captioned DRAW follows as it draws (drawviz.conditional): above, the canvas σ(c_t) at a few
    steps with the write window; below, the alignment α_t over the caption's words at every step (each column
    sums to 1), the chosen steps marked."""
    _need(trace, "the word alignment", Q.ALIGNMENT)
    alpha = trace[Q.ALIGNMENT][:, sample]  # (T, words)
    if len(words) != alpha.shape[1]:
        raise ValueError(f"the caption has {alpha.shape[1]} words; {len(words)} were given to label them")
    T = trace.T
    steps = list(steps or np.unique(np.linspace(1, T, min(T, 8)).round().astype(int)))
    fig = Figure(figsize=(max(6.0, 1.05 * len(steps) + 0.8), 5.6), layout="constrained")
    grid = fig.add_gridspec(2, len(steps), height_ratios=(1, 1.6))
    H, W = trace.canvas.shape[-2:]
    for j, t in enumerate(steps):
        ax = fig.add_subplot(grid[0, j])
        _show(ax, trace.canvas[t - 1, sample])
        if "write" in trace.windows:
            w = geometry.window(trace, "write", t, sample)
            xy, size = geometry.square(w, geometry.grid_n(trace, "write"))
            ax.add_patch(Rectangle(xy, size, size, fill=False, edgecolor=OP_COLOURS["write"], lw=1.0))
        _keep_view(ax, W, H)
        ax.set_title(f"t = {t}\n“{words[int(alpha[t - 1].argmax())]}”", fontsize=8)
    ax = fig.add_subplot(grid[1, :])
    artist = ax.imshow(alpha.T, aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest",
                       extent=(0.5, T + 0.5, len(words) - 0.5, -0.5))  # fmt: skip
    ax.set_yticks(range(len(words)), labels=list(words), fontsize=8)
    ax.set_xlabel("step t")
    for t in steps:
        ax.axvline(t, color="white", lw=0.6, alpha=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(artist, ax=ax, label="alignment α_t (sums to 1 over the words)", shrink=0.9)
    fig.suptitle(title or f"“{' '.join(words)}”: the word it follows at each step, and the canvas", fontsize=9)
    return fig


_WORD_KINDS = {"digit": "#d62728", "place": "#1f77b4", "the rest": "#9a9a9a"}  # a digit's name, a place, the template


def plot_word_weight(words: pd.DataFrame, title: Optional[str] = None) -> Figure:
    """Where a caption model's alignment sits (drawviz.asked.weight_by_word): each word's share of all its weight,
    coloured by kind, and as a black tick the share an even spread over the captions' words would give it."""
    words = words.sort_values("share")
    fig, ax = _subplots(figsize=(6.4, 0.22 * len(words) + 1.3))
    y = np.arange(len(words))
    ax.barh(y, 100 * words["share"], color=[_WORD_KINDS[k] for k in words["kind"]], height=0.7)
    ax.scatter(100 * words["even"], y, marker="|", s=120, color="black", zorder=3)
    ax.set_yticks(y, labels=[f"“{w}”" for w in words["word"]], fontsize=8)
    ax.set_xlabel("share of the alignment's weight, all steps of all drawings (%)")
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in _WORD_KINDS.values()]
    handles.append(Line2D([], [], marker="|", ls="", color="black", markersize=10))
    labels = ["a digit's name", "a place", "the rest of the caption", "spread evenly over the words"]
    ax.legend(handles, labels, fontsize=8, loc="lower right", frameon=False)
    by_kind = words.groupby("kind")["share"].sum()
    ax.set_title(
        title
        or "where the alignment sits: on the digits' names "
        f"{100 * by_kind.get('digit', 0):.0f} % of its weight, the places {100 * by_kind.get('place', 0):.0f} %",
        fontsize=9,
    )
    return fig


def plot_held_words(held: pd.DataFrame, title: Optional[str] = None) -> Figure:
    """Which words carry each digit (drawviz.asked.held_on_each_word): with the alignment held on one position of a
    pair's caption at every step, how often each digit comes out as named; the free model and chance (1 in 10) as
    lines."""
    held = held.set_index("position")
    free, words = held.loc[-1], held.drop(index=-1)
    fig, ax = _subplots(figsize=(7.2, 3.6))
    x = np.arange(len(words))
    for offset, (column, name, colour) in enumerate((("first_right", "first digit (A)", "#d62728"),
                                                     ("second_right", "second digit (B)", "#1f77b4"))):  # fmt: skip
        ax.bar(x + (offset - 0.5) * 0.38, 100 * words[column], width=0.38, color=colour, label=f"{name} drawn as named")
        ax.axhline(100 * free[column], color=colour, lw=0.8, ls="--")
    ax.axhline(10, color="black", lw=0.8, ls=":", label="chance (1 in 10)")
    ax.set_xticks(x, labels=[f"“{w}”" for w in words["word"]], fontsize=8)
    ax.set_xlabel("the word the alignment is held on, at every step (dashed: the model left free)")
    ax.set_ylabel("drawn as named (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=3)  # clear of the bars
    ax.set_title(title or f"which words carry each digit ({int(free['drawings'])} pair captions)", fontsize=9)
    return fig


# ----------------------------------------------------------------------------- files


def save(fig: Figure, path, dpi: int = 150) -> Path:
    """Write a figure as PNG, PDF or SVG (by the suffix), creating the folder; returns the path.

    Written to a temporary file first, so an interrupted save never leaves half a figure.
    """
    path = Path(path)
    kinds = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
    if path.suffix.lower() not in kinds:
        raise ValueError(f"cannot save a figure as {path.name!r}: use one of {', '.join(kinds)}")
    with _files.atomic(path) as tmp:
        fig.savefig(tmp, format=kinds[path.suffix.lower()], dpi=dpi, bbox_inches="tight")
    return path
