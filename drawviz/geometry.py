"""Where a DRAW step acts on the image: the geometry of its read and write windows.

Units are the paper's (Gregor et al. 2015, eq. 19–22): 1-based pixels, pixel a = 1..A across and
b = 1..B down, so the window centre (g_X, g_Y) = (a, b) sits at image column a − 1 and row b − 1
in ``imshow``'s axes. Functions that return positions for drawing say so ("imshow coordinates");
the rest stay in 1-based pixels.

A window of N × N filters with stride δ and filter spread σ (pixels) covers the square
centre ± N·δ/2 (the grid's span); counting one filter spread on each side, its footprint is
N·δ + 2σ pixels. Its centre is off the image when it lies outside [0.5, A + 0.5] × [0.5, B + 0.5]
(the outer edges of the first and last pixels).

A *trace* is a :class:`drawviz.trace.Trace`; only its ``windows`` (op -> Window of (T, batch)
arrays), ``glimpse`` and ``write_patch`` are read here. Steps t are 1-based, as in ``Trace.frame``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "OPS",
    "grid_n",
    "ops",
    "window",
    "centre",
    "square",
    "extent",
    "footprint",
    "footprints",
    "off_image",
    "stroke_style",
    "gamma_max",
    "edit_area",
]

OPS = ("read", "write")  # the ops a trace may have, in drawing order


def grid_n(trace, op: str) -> int:
    """N of the op's N × N attention grid, read off the recorded glimpse (read) or write patch (write)."""
    arr = trace.glimpse if op == "read" else trace.write_patch
    if arr is None:
        raise ValueError(f"this trace has no {op} attention (a model without attention?)")
    return arr.shape[-1]


def ops(trace) -> list[str]:
    """The ops with windows in this trace, in the order of OPS: ["read", "write"], ["write"] or []."""
    return [op for op in OPS if op in trace.windows]


def window(trace, op: str, t: int, sample: int) -> dict:
    """The window of ``op`` at step t (1-based) for one sample, in pixels: a dict of floats
    g_x, g_y (centre, 1-based), delta (stride δ), sigma (filter sd σ = √σ²) and gamma (intensity γ)."""
    g_x, g_y, delta, sigma2, gamma = trace.windows[op].at(t - 1, sample)
    return {"g_x": g_x, "g_y": g_y, "delta": delta, "sigma": np.sqrt(sigma2), "gamma": gamma}


def centre(w: dict) -> tuple[float, float]:
    """(x, y) of a window's centre (g_X, g_Y) in imshow coordinates: (g_x − 1, g_y − 1)."""
    return w["g_x"] - 1, w["g_y"] - 1


def square(w: dict, N: int) -> tuple[tuple[float, float], float]:
    """((x0, y0), size): the square a window covers, centre ± N·δ/2, as its top-left corner in
    imshow coordinates (1-based pixel minus 1) and its side N·δ in pixels (a matplotlib Rectangle's
    xy and width/height)."""
    half = N * w["delta"] / 2
    return (w["g_x"] - 1 - half, w["g_y"] - 1 - half), 2 * half


def extent(trace, op: str, t: int, sample: int) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) in imshow coordinates of the square of ``op`` at step t for one sample,
    widened by σ on every side (room for its line, whose width grows with σ)."""
    w = window(trace, op, t, sample)
    (x0, y0), size = square(w, grid_n(trace, op))
    pad = w["sigma"]
    return x0 - pad, x0 + size + pad, y0 - pad, y0 + size + pad


def footprint(N: int, delta, sigma):
    """N·δ + 2σ in pixels: the grid's span plus one filter spread on each side. delta and sigma:
    scalars or arrays of one shape (e.g. (T, batch)); returns that shape."""
    return N * delta + 2 * sigma


def footprints(trace, op: str) -> np.ndarray:
    """The footprint N·δ + 2σ in pixels of every (step, sample) window of op: (T, batch)."""
    w = trace.windows[op]  # a Window of (T, batch) arrays
    return footprint(grid_n(trace, op), w.delta, np.sqrt(w.sigma2))


def off_image(g_x, g_y, width: int, height: int):
    """Whether a centre (g_x, g_y) (1-based pixels) lies off a width × height image, i.e. outside
    [0.5, width + 0.5] × [0.5, height + 0.5]. Scalars or arrays of one shape (e.g. (T, batch));
    returns booleans of that shape. The edges themselves count as on the image."""
    return (g_x < 0.5) | (g_x > width + 0.5) | (g_y < 0.5) | (g_y > height + 0.5)


def stroke_style(w: dict, gamma_max: float) -> dict:
    """How a window's square is stroked: {"linewidth", "alpha"}. The line width grows with the
    filter spread, clip(0.6 + σ, 0.6, 6) points; the opacity with the intensity,
    0.25 + 0.75 · min(γ / γ_max, 1) (1 when γ_max ≤ 0)."""
    return {
        "linewidth": float(np.clip(0.6 + w["sigma"], 0.6, 6.0)),
        "alpha": float(0.25 + 0.75 * min(w["gamma"] / gamma_max, 1.0)) if gamma_max > 0 else 1.0,
    }


def gamma_max(trace, op: str, sample: int) -> float:
    """The largest γ of op over all steps of one sample (the γ that stroke_style draws fully opaque)."""
    return float(trace.windows[op].gamma[:, sample].max())


def edit_area(update: np.ndarray, share: float = 0.9) -> np.ndarray:
    """The smallest fraction of the image's pixels that holds ``share`` of Σ|update|.

    update: (..., C, H, W) canvas changes c_t − c_{t−1} (logits). Channels are summed per pixel.
    Returns an array of shape (...); NaN where a step changes nothing.
    """
    mag = np.abs(np.asarray(update, dtype=np.float64)).sum(-3)  # (..., H, W)
    flat = mag.reshape(*mag.shape[:-2], -1)
    pixels = flat.shape[-1]
    ordered = -np.sort(-flat, axis=-1)  # largest first
    cumulative = np.cumsum(ordered, axis=-1)
    total = cumulative[..., -1:]
    # number of pixels needed to reach the share (first index where the running sum gets there)
    needed = (cumulative < share * total).sum(-1) + 1
    out = needed / pixels
    return np.where(total[..., 0] > 0, out, np.nan)
