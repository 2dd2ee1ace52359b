"""Where the read-only classifier looks, measured against where the digit is (paper section 4.1, Fig. 5).

The paper shows glimpses on cluttered images; with the scene's objects known (``ImageSet.objects``) the
looking can be measured: per glimpse, the distance from the window's centre to the digit's centre, whether
the window covers that centre, and the window's footprint N·δ (does it zoom in?), each beside chance (a window
of the same footprint with its centre uniform over the frame). And an intervention asks whether the model
classifies *by* looking: every read window held at the frame's centre, or moved onto the largest distractor.

Coordinates are the attention's (drawviz.attention): pixel columns a = 1..A, rows b = 1..B, so a piece whose
top-left is the 0-based (x, y) and that is w wide has its centre at (x + (w + 1) / 2, y + (h + 1) / 2). A
window covers a point when the point lies within N·δ / 2 of its centre on both axes (its N filters, one
stride apart, with half a stride beyond the outer ones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import probes
from .data import ImageSet
from .interventions import set_window

__all__ = ["centres", "where_it_looks", "by_glimpse", "read_elsewhere", "confusion", "LOOK_COLUMNS"]

LOOK_COLUMNS = [
    "image",
    "glimpse",
    "label",
    "predicted",
    "g_x",
    "g_y",
    "sigma",
    "footprint",
    "distance",
    "covers",
    "chance_distance",
    "chance_covers",
]


def centres(objects: pd.DataFrame, kind: str = "digit") -> pd.DataFrame:
    """Per image, the centre (c_x, c_y) of its piece of ``kind`` in the attention's coordinates (one digit per image)."""
    pieces = objects[objects["kind"] == kind].groupby("image").first()
    return pd.DataFrame(
        {
            "c_x": pieces["x"] + (pieces["width"] + 1) / 2,
            "c_y": pieces["y"] + (pieces["height"] + 1) / 2,
            "label": pieces["label"],
        }
    )


def where_it_looks(trace, images: ImageSet, *, seed: int = 0) -> pd.DataFrame:
    """One row per (image, glimpse) of a recorded pass (``probes.record(model, images.images)``): LOOK_COLUMNS.

    footprint: N·δ, the window's side in pixels; distance: from the window's centre to the digit's, pixels;
    covers: the window holds the digit's centre. chance_*: the same for a window of that footprint whose centre
    is drawn uniformly over the frame (seeded), the looking of a model that does not look."""
    window = trace.windows["read"]  # fields (T, batch)
    T, batch = window.g_x.shape
    N = trace.glimpse.shape[-1]
    height, width = images.shape[1:]
    where = centres(images.objects).loc[np.arange(batch)]
    glimpse, image = np.meshgrid(np.arange(1, T + 1), np.arange(batch), indexing="ij")
    c_x, c_y = where["c_x"].to_numpy()[None], where["c_y"].to_numpy()[None]
    half = N * window.delta / 2
    rng = np.random.Generator(np.random.PCG64(seed))
    r_x, r_y = rng.uniform(1, width, size=(T, batch)), rng.uniform(1, height, size=(T, batch))
    predicted = trace.logits.argmax(1) if trace.logits is not None else np.full(batch, -1)
    frame = pd.DataFrame(
        {
            "image": image.ravel(),
            "glimpse": glimpse.ravel(),
            "label": np.broadcast_to(where["label"].to_numpy()[None], (T, batch)).ravel(),
            "predicted": np.broadcast_to(predicted[None], (T, batch)).ravel(),
            "g_x": window.g_x.ravel(),
            "g_y": window.g_y.ravel(),
            "sigma": np.sqrt(window.sigma2).ravel(),
            "footprint": (2 * half).ravel(),
            "distance": np.hypot(window.g_x - c_x, window.g_y - c_y).ravel(),
            "covers": ((abs(window.g_x - c_x) <= half) & (abs(window.g_y - c_y) <= half)).ravel(),
            "chance_distance": np.hypot(r_x - c_x, r_y - c_y).ravel(),
            "chance_covers": ((abs(r_x - c_x) <= half) & (abs(r_y - c_y) <= half)).ravel(),
        }
    )
    return frame.sort_values(["image", "glimpse"], kind="stable", ignore_index=True)[LOOK_COLUMNS]


def by_glimpse(looks: pd.DataFrame) -> pd.DataFrame:
    """Per glimpse: the median distance to the digit's centre, the share of images whose window covers it,
    the median footprint, and chance's distance and share beside them."""
    return looks.groupby("glimpse").agg(
        distance=("distance", "median"),
        covers=("covers", "mean"),
        footprint=("footprint", "median"),
        chance_distance=("chance_distance", "median"),
        chance_covers=("chance_covers", "mean"),
    )


def _largest_distractor(images: ImageSet) -> pd.DataFrame:
    """Per image, the centre of the distractor with the most ink in its own box, among those whose box does not
    touch the digit's (any distractor where all do)."""
    objects = images.objects
    digit = objects[objects["kind"] == "digit"].set_index("image")
    crops = objects[objects["kind"] == "distractor"].copy()
    pixels = images.images[:, 0].numpy()
    crops["ink"] = [pixels[r.image, r.y : r.y + r.height, r.x : r.x + r.width].sum() for r in crops.itertuples()]
    d = digit.loc[crops["image"]]
    apart = (
        (crops["x"].to_numpy() + crops["width"].to_numpy() <= d["x"].to_numpy())
        | (d["x"].to_numpy() + d["width"].to_numpy() <= crops["x"].to_numpy())
        | (crops["y"].to_numpy() + crops["height"].to_numpy() <= d["y"].to_numpy())
        | (d["y"].to_numpy() + d["height"].to_numpy() <= crops["y"].to_numpy())
    )
    crops["rank"] = crops["ink"] + apart * 1e6  # apart first, then the most ink
    best = crops.loc[crops.groupby("image")["rank"].idxmax()].set_index("image").sort_index()
    return pd.DataFrame({"c_x": best["x"] + (best["width"] + 1) / 2, "c_y": best["y"] + (best["height"] + 1) / 2})


def read_elsewhere(model, images: ImageSet, *, seed: int = 0) -> pd.DataFrame:
    """Does it classify by looking? The test error with the model's own windows, with every read window held at
    the frame's centre, and with every read window moved onto the largest distractor (the model's own stride,
    σ² and γ kept): one row per condition with ``error`` and ``images``."""
    T, height, width = model.config.T, model.config.height, model.config.width
    labels = images.labels.numpy()
    elsewhere = _largest_distractor(images)
    conditions = {
        "its own windows": [],
        "held at the centre": [set_window("read", range(1, T + 1), g_x=(width + 1) / 2, g_y=(height + 1) / 2)],
        "on the largest distractor": [
            set_window(
                "read",
                range(1, T + 1),
                g_x=torch.tensor(elsewhere["c_x"].to_numpy()),
                g_y=torch.tensor(elsewhere["c_y"].to_numpy()),
            )
        ],
    }
    rows = []
    for condition, hooks in conditions.items():
        trace = probes.run(model, images.images, hooks=hooks, seed=seed, measure=False)
        rows.append({"condition": condition, "error": float((trace.logits.argmax(1) != labels).mean()), "images": len(labels)})
    return pd.DataFrame(rows)


def confusion(labels, predicted, classes: int = 10) -> pd.DataFrame:
    """Counts: rows the true class, columns the predicted one."""
    table = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(table, (np.asarray(labels), np.asarray(predicted)), 1)
    return pd.DataFrame(table, index=pd.Index(range(classes), name="true"), columns=pd.Index(range(classes), name="predicted"))
