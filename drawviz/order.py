"""In what order DRAW draws a scene's objects, measured (paper section 4.3: "typically generates one digit and
then the other"; section 4.4 on SVHN: "draws the digits one at a time"). The paper shows pictures; with the
digits' boxes known (``ImageSet.objects``) the order can be counted.

The rule. Each step's visible change |σ(c_t) − σ(c_(t−1))| (summed over channels) goes to digit A, digit B or
neither, pixel by pixel, by the digits' boxes; a pixel inside both boxes goes to the digit whose box centre is
nearer (A on a tie). A digit's *share* at step t is the change it has received by then over all it receives.
Per image:

- ``half_A``, ``half_B``: the first step by which each digit has half of its final change;
- ``one_at_a_time``: one digit has ≥ 80 % of its change before the other has 20 % (at some step t);
- ``switches``: how often the digit that gains the larger share in a step changes from step to step, counting
  only steps that give some digit at least 2 % of its change (a model that spreads every step over both digits
  switches often; one that draws them in turn, once).

A second reading, ``by="ink"``: the visible change counts every light stroke and every erasure, so a model that
first lays a faint blob over the whole scene and then sharpens it reads as drawing both digits at once. By ink,
a pixel's ink *arrives* at the first step from which σ(c_t) > 0.5 to the end (it is not erased again), and a
digit's share at step t is the part of its final ink (its pixels with σ(c_T) > 0.5) that has arrived by then; the
same 80/20 rule, halves and switches follow. The two readings answer different questions: "where does the model
work?" and "when does each digit's ink appear as it will stay?".

For prior samples there are no boxes: the digits are the two largest connected pieces of ink of the final canvas
(σ(c_T) > 0.5, joined across 1-pixel gaps), found by ``objects_from_canvas``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["two_digits", "owners", "shares", "ink_shares", "drawing_order", "summary", "objects_from_canvas", "initial_canvas"]

FIRST, SECOND = 0.8, 0.2  # "one digit at a time": one at >= 80 % of its change before the other reaches 20 %
INK = 0.5  # a pixel is inked where σ(c_t) > INK
READINGS = ("change", "ink")
COUNTED = 0.02  # a step counts for switches when it gives some digit at least 2 % of its change


def two_digits(images) -> bool:
    """Whether an ImageSet is a scene set of two digits per image (two-digit-mnist): its order can be measured."""
    objects = images.objects
    return objects is not None and bool((objects[objects["kind"] == "digit"].groupby("image").size() == 2).all())


def initial_canvas(model) -> np.ndarray:
    """σ(c_0), the learned blank canvas a drawing starts from: (C, H, W)."""
    return model.c0.detach().sigmoid().float().cpu().numpy()


def owners(objects: pd.DataFrame, n: int, height: int, width: int) -> np.ndarray:
    """(n, H, W) ints: 0 neither, 1 digit A, 2 digit B (the first and second digit of each image in the table)."""
    digits = objects[objects["kind"] == "digit"]
    owner = np.zeros((n, height, width), dtype=np.int8)
    rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
    for image, pieces in digits.groupby("image"):
        if image >= n:
            continue
        pieces = pieces.iloc[:2]
        inside, distance = [], []
        for piece in pieces.itertuples():
            inside.append(
                (cols >= piece.x) & (cols < piece.x + piece.width) & (rows >= piece.y) & (rows < piece.y + piece.height)
            )
            # centre of the box in the same 0-based pixel coordinates as rows and cols
            distance.append(np.hypot(cols - (piece.x + (piece.width - 1) / 2), rows - (piece.y + (piece.height - 1) / 2)))
        owner[image][inside[0]] = 1
        if len(inside) > 1:
            b_wins = inside[1] & (~inside[0] | (distance[1] < distance[0]))
            owner[image][b_wins] = 2
    return owner


def shares(canvas: np.ndarray, before: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step and digit, the visible change received (T, batch, 2) and its cumulative share (T, batch, 2).

    canvas: σ(c_t) for t = 1..T, (T, batch, C, H, W); before: σ(c_0), (C, H, W) or (batch, C, H, W);
    owner: (batch, H, W) from ``owners``. A digit that receives no change has NaN shares."""
    canvas = np.asarray(canvas, dtype=np.float64)
    previous = np.broadcast_to(np.asarray(before, dtype=np.float64), canvas.shape[1:])
    steps = np.concatenate([previous[None], canvas])
    change = np.abs(np.diff(steps, axis=0)).sum(2)  # (T, batch, H, W)
    got = np.stack([(change * (owner == k)[None]).sum((2, 3)) for k in (1, 2)], -1)  # (T, batch, 2)
    total = got.sum(0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, np.cumsum(got, 0) / total, np.nan)
    return got, share


def ink_shares(canvas: np.ndarray, owner: np.ndarray, threshold: float = INK) -> tuple[np.ndarray, np.ndarray]:
    """Per step and digit, the final ink that arrives (T, batch, 2) and its cumulative share (T, batch, 2).

    A pixel's ink arrives at the first step from which σ(c_t) > threshold holds to the end (the max over channels);
    canvas: σ(c_t) for t = 1..T, (T, batch, C, H, W); owner: (batch, H, W). A digit with no final ink has NaN shares."""
    inked = np.asarray(canvas).max(2) > threshold  # (T, batch, H, W)
    # inked from step t to T: a reverse cumulative AND over the steps
    stays = np.flip(np.logical_and.accumulate(np.flip(inked, 0), 0), 0)
    arrived = np.diff(np.concatenate([np.zeros_like(stays[:1]), stays]).astype(np.int8), axis=0) > 0  # (T, batch, H, W)
    got = np.stack([(arrived & (owner == k)[None]).sum((2, 3)) for k in (1, 2)], -1).astype(np.float64)
    total = got.sum(0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, np.cumsum(got, 0) / total, np.nan)
    return got, share


def drawing_order(
    canvas: np.ndarray, before: np.ndarray, objects: pd.DataFrame, by: str = "change"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The order measure of a recorded drawing: (steps, images), read by the visible change (``by="change"``,
    the rule above) or by when each pixel's final ink arrives (``by="ink"``).

    steps: tidy, one row per (image, step, digit) with ``change`` (the change received, or by ink the inked
    pixels that arrived) and cumulative ``share``;
    images: one row per image with half_A, half_B, first (the digit that reaches half first), one_at_a_time
    and switches (the rule in the module's docstring). Images with fewer than two digits or a digit that
    received no change are left out of ``images``."""
    if by not in READINGS:
        raise ValueError(f"by must be one of {READINGS}, got {by!r}")
    T, batch, _, height, width = canvas.shape
    owner = owners(objects, batch, height, width)
    got, share = shares(canvas, before, owner) if by == "change" else ink_shares(canvas, owner)
    step, image, digit = np.meshgrid(np.arange(1, T + 1), np.arange(batch), ["A", "B"], indexing="ij")
    steps = pd.DataFrame(
        {"image": image.ravel(), "step": step.ravel(), "digit": digit.ravel(), "change": got.ravel(), "share": share.ravel()}
    )
    steps = steps.sort_values(["image", "digit", "step"], kind="stable", ignore_index=True)
    rows = []
    for i in range(batch):
        a, b = share[:, i, 0], share[:, i, 1]
        if not (np.isfinite(a).all() and np.isfinite(b).all()) or not (owner[i] == 2).any():
            continue
        half_a, half_b = int(np.argmax(a >= 0.5)) + 1, int(np.argmax(b >= 0.5)) + 1
        one = bool((((a >= FIRST) & (b < SECOND)) | ((b >= FIRST) & (a < SECOND))).any())
        gain = np.diff(np.concatenate([[[0.0, 0.0]], share[:, i]]), axis=0)  # (T, 2) share gained per step
        counted = gain.max(1) >= COUNTED
        leader = gain[counted].argmax(1)
        rows.append(
            {
                "image": i,
                "half_A": half_a,
                "half_B": half_b,
                "first": "A" if half_a <= half_b else "B",
                "one_at_a_time": one,
                "switches": int((np.diff(leader) != 0).sum()),
            }
        )
    columns = ["image", "half_A", "half_B", "first", "one_at_a_time", "switches"]
    return steps, pd.DataFrame(rows, columns=columns)


def summary(images: pd.DataFrame, total: int) -> dict:
    """The figures a card or a table gives: the share drawn one digit at a time (of the images measured), the
    mean number of switches, the median gap between the two halves, and how many images were measured of ``total``."""
    return {
        "one_at_a_time": float(images["one_at_a_time"].mean()) if len(images) else float("nan"),
        "switches": float(images["switches"].mean()) if len(images) else float("nan"),
        "half_gap": float((images["half_A"] - images["half_B"]).abs().median()) if len(images) else float("nan"),
        "measured": int(len(images)),
        "of": int(total),
    }


def objects_from_canvas(canvas: np.ndarray, *, threshold: float = 0.5, min_pixels: int = 15) -> pd.DataFrame:
    """The digits of drawn images, found as ink: the two largest connected pieces of σ(c_T) > threshold (pieces
    1 pixel apart are joined: a stroke broken by the threshold stays one digit), each at least ``min_pixels``.

    canvas: (batch, C, H, W). An objects table (drawviz.scenes) with kind "digit", label -1 and the pieces'
    bounding boxes; an image where fewer than two pieces are found has fewer rows."""
    from scipy import ndimage

    ink = np.asarray(canvas).max(1) > threshold  # (batch, H, W)
    rows = []
    for i, mask in enumerate(ink):
        joined = ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool))
        labelled, count = ndimage.label(joined, structure=np.ones((3, 3), bool))
        sizes = ndimage.sum(mask, labelled, index=np.arange(1, count + 1))
        for k in np.argsort(-sizes)[:2]:
            if sizes[k] < min_pixels:
                continue
            ys, xs = np.nonzero(mask & (labelled == k + 1))
            rows.append(
                {
                    "image": i,
                    "kind": "digit",
                    "label": -1,
                    "source": -1,
                    "x": int(xs.min()),
                    "y": int(ys.min()),
                    "width": int(xs.max() - xs.min() + 1),
                    "height": int(ys.max() - ys.min() + 1),
                }
            )
    return pd.DataFrame(rows, columns=["image", "kind", "label", "source", "x", "y", "width", "height"])
