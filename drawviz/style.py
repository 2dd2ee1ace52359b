"""The shared look of drawviz's figures and animations: colours and how an image is shown.

The paper draws the write window in red (Gregor et al. 2015, Fig. 1 and 4); read is green. Every
figure (:mod:`drawviz.plots`) and animation (:mod:`drawviz.animation`) uses the same colours, and
shows images the same way: grey images on a gray scale fixed at [0, 1], colour images as RGB,
nearest-neighbour pixels, no ticks.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["OP_COLOURS", "STEP_CMAP", "image_args", "show"]

OP_COLOURS = {"read": "#2ca02c", "write": "#e8112d"}  # op -> colour of its window, its lines, its labels
STEP_CMAP = "viridis"  # step t: dark = early, yellow = late


def image_args(img: np.ndarray) -> tuple[np.ndarray, dict]:
    """(C, H, W) in [0, 1] -> (array, kwargs) for imshow: (H, W) with a gray [0, 1] scale for one
    channel, (H, W, C) clipped to [0, 1] (no kwargs) for colour."""
    if img.shape[0] == 1:
        return img[0], {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}
    return np.clip(np.moveaxis(img, 0, -1), 0, 1), {}


def show(ax, img: np.ndarray, title: Optional[str] = None):
    """Show a (C, H, W) image on ``ax`` without ticks (and with a small title); returns the AxesImage."""
    arr, kw = image_args(img)
    artist = ax.imshow(arr, interpolation="nearest", **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return artist
