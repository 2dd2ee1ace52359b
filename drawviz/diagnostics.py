"""Is DRAW drawing like a pen? Measures of its attention, from a recorded Trace.

Four numbers per step and op (Gregor et al. 2015, Fig. 1 and 4 show what they should look like):

* **footprint**: how much of the image a window covers, N·δ + 2σ pixels (the grid's span plus one
  filter spread on each side), as a fraction of the image width. 1 = the whole image.
* **spread**: the standard deviation over images of the window centre (g_X, g_Y), in pixels, the
  root mean square of the two axes. A model whose windows ignore the input scores 0; centres
  drawn uniformly over the image would score width/√12 (8.1 px on MNIST).
* **off-image**: the share of windows whose centre (g_X, g_Y) lies outside the image,
  i.e. outside [0.5, A + 0.5] × [0.5, B + 0.5] in the paper's 1-based pixel coordinates.
* **edit area** ("edit locality"): the smallest share of the image's pixels that receives 90 %
  of a step's canvas change |c_t − c_{t−1}| (logits, before the sigmoid, which saturates).
  Small = a pen stroke; ~0.9 = the change is spread evenly over the whole image. Recorded by
  :mod:`drawviz.probes` as ``Trace.edit_area`` (T, batch), with or without attention.

:func:`per_step` gives them as a tidy frame (one row per step and op), :func:`summary` as one
row per op over the steps after the first ``skip`` share (the first steps of a drawing lay the
ground and are excluded from the pen-likeness targets), each with its reference value.

:func:`read_error_offsets` asks where a reconstruction reads against its error image x̂_t: how far the
read window's centre lies from the largest error, per image and step, and whether the window holds it
more often than a square placed at random would (does DRAW read where it is most wrong?).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd

from . import geometry
from .trace import need as _need

__all__ = [
    "per_step",
    "summary",
    "footprints",
    "reference_edit_area",
    "spread_references",
    "ink_extent",
    "as_metrics",
    "read_error_offsets",
    "REFERENCES",
]

# What each measure is compared with (see the module docstring); None: computed per trace.
REFERENCES = {
    "footprint": "1 = the whole image width",
    "spread_px": "0 = windows ignore the input; width/√12 = centres uniform over the image",
    "off_image": "0 = every centre on the image",
    "edit_area": "0.9 = a change spread evenly over the image; the no-attention model's value",
}


def _image_size(trace) -> tuple[int, int]:
    return trace.canvas.shape[-1], trace.canvas.shape[-2]  # width A, height B


def footprints(trace, op: str) -> np.ndarray:
    """N·δ + 2σ in pixels for every (step, sample) of op: (T, batch) (geometry.footprints)."""
    return geometry.footprints(trace, op)


def _centres(w, width: int, height: int):
    """(T, batch) off-image flags and the (T,) spread across images of the window centres (a Window of (T, batch))."""
    g_x, g_y = w.g_x, w.g_y
    off = geometry.off_image(g_x, g_y, width, height)
    spread = np.sqrt((g_x.std(1) ** 2 + g_y.std(1) ** 2) / 2) if g_x.shape[1] > 1 else np.full(g_x.shape[0], np.nan)
    return off, spread


def per_step(trace) -> pd.DataFrame:
    """One row per (step, op): footprint (px and share of the width), centre spread across images (px),
    off-image share, and the median edit area (op "canvas"). Steps are 1-based as in Trace.frame."""
    width, height = _image_size(trace)
    rows = []
    for op, w in trace.windows.items():
        fp = footprints(trace, op)
        off, spread = _centres(w, width, height)
        for t in range(len(w.g_x)):
            rows.append(
                {
                    "step": t + 1,
                    "op": op,
                    "footprint_px": float(np.median(fp[t])),
                    "footprint": float(np.median(fp[t])) / width,
                    "spread_px": float(spread[t]),
                    "off_image": float(off[t].mean()),
                    "edit_area": math.nan,
                }
            )
    if trace.edit_area is not None:
        for t, areas in enumerate(trace.edit_area):
            rows.append(
                {
                    "step": t + 1,
                    "op": "canvas",
                    "footprint_px": math.nan,
                    "footprint": math.nan,
                    "spread_px": math.nan,
                    "off_image": math.nan,
                    "edit_area": float(np.nanmedian(areas)),
                }
            )
    return pd.DataFrame(rows, columns=["step", "op", "footprint_px", "footprint", "spread_px", "off_image", "edit_area"])


def _spread_of(centres: np.ndarray) -> float:
    """Mean over steps of the centre spread (as :func:`summary`) for centres of shape (steps, images, 2)."""
    return float(np.mean(np.sqrt((centres[..., 0].std(1) ** 2 + centres[..., 1].std(1) ** 2) / 2)))


def _greyscale(images) -> np.ndarray:
    """(batch, 1, H, W) or (batch, H, W) images as a float array of shape (batch, H, W)."""
    x = np.asarray(images, dtype=float)
    return x.reshape(len(x), x.shape[-2], x.shape[-1])


def spread_references(images, steps: int = 58, seed: int = 0) -> pd.DataFrame:
    """What the centre spread of :func:`summary` is for pens that need no model, on these images.

    Each pen sits on one ink pixel (value > 0.5) of each image at each of ``steps`` steps: the ink centroid
    (a window parked on the digit), two sweeps that visit every image's ink in the *same* order (reading order:
    row, then column; clockwise around the centroid from 12 o'clock), and a pen anywhere on the ink (a random
    ink pixel per step and image: a pen that stays on the digit but keeps no order shared across images).
    A model drawing in one order for all digits scores near the sweeps, not the uniform width/√12.
    images: (batch, 1, H, W) or (batch, H, W) greyscale in [0, 1]. One row per pen: pen, spread_px, order.
    """
    x = _greyscale(images)
    ink = [np.argwhere(im > 0.5).astype(float) for im in x]  # (pixels, 2) as (row, column)
    if len(ink) < 2 or any(len(p) == 0 for p in ink):
        raise ValueError("spread_references needs two or more images, each with an ink pixel (value > 0.5)")
    share = (np.arange(steps) + 0.5) / steps  # the share of its ink a sweeping pen has passed at each step

    def sweep(order) -> np.ndarray:  # (steps, images, 2): the pen at each share of every image's ordered ink
        return np.stack([np.stack([p[order(p)][int(q * len(p))] for p in ink]) for q in share])

    def clockwise(p):
        c = p.mean(0)
        return np.argsort(np.mod(np.arctan2(p[:, 1] - c[1], c[0] - p[:, 0]), 2 * np.pi))  # from 12 o'clock, clockwise

    rng = np.random.default_rng(seed)
    pens = {
        "ink centroid": (np.stack([p.mean(0) for p in ink])[None], "none (parked)"),
        "reading-order sweep": (sweep(lambda p: np.lexsort((p[:, 1], p[:, 0]))), "shared"),
        "clockwise sweep": (sweep(clockwise), "shared"),
        "anywhere on the ink": (np.stack([np.stack([p[rng.integers(len(p))] for p in ink]) for _ in share]), "none"),
    }
    rows = [{"pen": pen, "spread_px": _spread_of(c), "order": order} for pen, (c, order) in pens.items()]
    return pd.DataFrame(rows, columns=["pen", "spread_px", "order"])


def ink_extent(images, threshold: float = 0.1) -> dict:
    """How large the subject is, to read a footprint against: the median over images of the ink's bounding
    box (pixels above ``threshold``) as shares of the image's width and height, and the median share of
    pixels that are ink. A window as wide as the box covers the subject; a pen's is a fraction of it.
    images: (batch, 1, H, W) or (batch, H, W) greyscale in [0, 1]. {"width", "height", "ink"}."""
    x = _greyscale(images) > threshold  # (batch, H, W)
    cols, rows = x.any(1), x.any(2)  # (batch, W), (batch, H): a column or row holding ink
    if not cols.any(1).all():
        raise ValueError(f"ink_extent needs ink (a pixel above {threshold}) in every image")

    def span(a):  # (batch, n) -> (batch,): first to last True, inclusive, as a share of n
        return (a.shape[1] - np.argmax(a[:, ::-1], 1) - np.argmax(a, 1)) / a.shape[1]

    return {
        "width": float(np.median(span(cols))),
        "height": float(np.median(span(rows))),
        "ink": float(np.median(x.mean((1, 2)))),
    }


def summary(trace, skip: float = 0.1, reference: Optional[float] = None) -> pd.DataFrame:
    """The diagnostics over the steps after the first ``skip`` share of T, one row per op.

    footprint: median over (step, image) of N·δ + 2σ, as a share of the width; spread_px: mean over
    steps of the centre spread; off_image: share of all windows; edit_area: median over (step,
    image). ``reference``: the edit area of a model without attention, shown beside it.
    """
    width, height = _image_size(trace)
    first = int(math.floor(skip * trace.T))  # steps 1..first are left out
    rows = []
    for op, w in trace.windows.items():
        w = w.at(slice(first, None))
        fp = footprints(trace, op)[first:]
        off, spread = _centres(w, width, height)
        rows.append(
            {
                "op": op,
                "steps": f"{first + 1}-{trace.T}",
                "footprint": float(np.median(fp)) / width,
                "footprint_px": float(np.median(fp)),
                "spread_px": float(np.mean(spread)),
                "spread_uniform_px": width / math.sqrt(12),
                "off_image": float(off.mean()),
                "edit_area": math.nan,
                "edit_area_reference": math.nan,
            }
        )
    if trace.edit_area is not None:
        rows.append(
            {
                "op": "canvas",
                "steps": f"{first + 1}-{trace.T}",
                "footprint": math.nan,
                "footprint_px": math.nan,
                "spread_px": math.nan,
                "spread_uniform_px": math.nan,
                "off_image": math.nan,
                "edit_area": float(np.nanmedian(trace.edit_area[first:])),
                "edit_area_reference": math.nan if reference is None else float(reference),
            }
        )
    return pd.DataFrame(rows)


def reference_edit_area(model, images, *, skip: float = 0.1, seed: int = 0) -> float:
    """The median edit area of another model (e.g. the no-attention baseline) on the same images."""
    from . import probes

    trace = probes.record(model, images, seed=seed)
    first = int(math.floor(skip * trace.T))
    return float(np.nanmedian(trace.edit_area[first:]))


def as_metrics(table: pd.DataFrame) -> dict:
    """A summary() table as flat JSON-ready numbers: write_footprint, read_spread_px, edit_area, ..."""
    out = {}
    for row in table.to_dict("records"):
        op = row.pop("op")
        out["steps"] = row.pop("steps")
        for key, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                continue
            out[key if op == "canvas" else f"{op}_{key}"] = value
    return out


def read_error_offsets(trace, smooth: float = 1.0) -> pd.DataFrame:
    """Where the read window sits relative to the largest error, per (sample, step).

    The largest error is the argmax of |x̂_t| (channel mean) after a Gaussian blur of ``smooth``
    pixels, so that a single noisy pixel does not win. Columns: sample, step, err_x, err_y,
    g_x, g_y (1-based pixels), distance (pixels), inside (the error peak lies inside the read
    square centre ± N·δ/2), the error at the read centre relative to the peak, and inside_by_chance:
    the probability that a square of the same size placed at random (centre uniform over the
    image) holds the peak, the baseline that ``inside`` must beat (a big square holds it anyway).
    """
    from scipy.ndimage import gaussian_filter

    _need(trace, "where the read window sits against the error", "x_hat", "read_window")
    if trace.x_hat is None or "read" not in trace.windows:
        raise ValueError("needs a reconstruction trace of a model with attention")
    T, B = trace.x_hat.shape[:2]
    err = np.abs(trace.x_hat).mean(2)  # (T, B, H, W)
    if smooth:
        err = gaussian_filter(err, sigma=(0, 0, smooth, smooth))
    H, W = err.shape[-2:]
    flat = err.reshape(T, B, -1)
    peak = flat.argmax(-1)
    ey, ex = np.unravel_index(peak, (H, W))
    w = trace.windows["read"]
    g_x, g_y, delta = w.g_x, w.g_y, w.delta
    half = geometry.grid_n(trace, "read") * delta / 2
    cx = np.clip(np.rint(g_x - 1).astype(int), 0, W - 1)
    cy = np.clip(np.rint(g_y - 1).astype(int), 0, H - 1)
    at_centre = np.take_along_axis(flat, (cy * W + cx)[..., None], -1)[..., 0]
    # chance: the same square with its centre uniform over the image; P(peak inside) per axis
    cover = lambda e, size: np.clip((np.minimum(size, e + half) - np.maximum(1, e - half)) / max(size - 1, 1), 0, 1)
    chance = cover(ex + 1, W) * cover(ey + 1, H)
    step, sample = np.meshgrid(np.arange(1, T + 1), np.arange(B), indexing="ij")
    frame = pd.DataFrame(
        {
            "sample": sample.ravel(),
            "step": step.ravel(),
            "err_x": (ex + 1).ravel(),
            "err_y": (ey + 1).ravel(),
            "g_x": g_x.ravel(),
            "g_y": g_y.ravel(),
            "distance": np.hypot(ex + 1 - g_x, ey + 1 - g_y).ravel(),
            "inside": ((np.abs(ex + 1 - g_x) <= half) & (np.abs(ey + 1 - g_y) <= half)).ravel(),
            "error_at_centre": (at_centre / np.maximum(flat.max(-1), 1e-12)).ravel(),
            "inside_by_chance": chance.ravel(),
        }
    )
    return frame.sort_values(["sample", "step"]).reset_index(drop=True)
