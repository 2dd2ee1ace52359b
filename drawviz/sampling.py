"""Samples from any generator kind, told what to draw where the model takes it (``drawviz sample``, issue 34).

    python -m drawviz sample models/mnist-label.pt --n 16 --label 7 --out sevens.png
    python -m drawviz sample models/fashion-mnist-label.pt --n 16 --label dress --out dresses.png
    python -m drawviz sample models/captioned-mnist.pt --n 8 --caption "the digit 3 is on the left of the digit 5 ." --out a.npz

A PNG is a grid of the final canvases σ(c_T); an ``.npz`` holds ``images`` (N, C, H, W) in [0, 1].
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from . import captions as _captions
from . import files as _files
from . import kinds as _kinds

__all__ = ["FORMATS", "condition", "sample", "finished", "grid", "write"]

FORMATS = (".png", ".npz")
TILE = 96  # a PNG shows each sample at least this many pixels high (enlarged by a whole factor, pixels kept sharp)


def condition(
    model, n: int, *, label: Optional[int | str] = None, caption: Optional[str] = None, names: Sequence[str] = ()
) -> dict:
    """The ``labels=`` that asks ``model`` for n drawings of ``label`` (a class: its number, as typed or not, or its
    name among ``names``, drawviz.data.class_names) or ``caption``: {} for a model that takes no condition and is
    given none; a clear ValueError for a condition it cannot take, or none where it needs one."""
    if label is not None and caption is not None:
        raise ValueError("ask for a class (--label) or a caption (--caption), not both")
    takes = getattr(model.config, "condition", "none")
    asked = "label" if label is not None else "caption" if caption is not None else "none"
    if takes == "none" and asked != "none":
        raise ValueError(
            f"this {_kinds.of(model).name} model draws without a condition: leave out --{asked} "
            "(a model told what to draw is a conditional one, e.g. trained with --preset mnist-label)"
        )
    if takes != asked:
        how = {
            "label": f"--label K, a class 0..{getattr(model.config, 'classes', 10) - 1}",
            "caption": f'--caption "{_captions.caption(3, "left", 5)}" (words from: {" ".join(_captions.VOCABULARY)})',
        }[takes]
        raise ValueError(f"this model draws what it is asked for, by {takes}: give {how}")
    if takes == "none":
        return {}
    if takes == "label":
        return {"labels": torch.full((n,), _class(label, model.config.classes, names), dtype=torch.long)}
    ids = torch.from_numpy(_captions.tokens(caption))  # an unknown word is refused here, naming the vocabulary
    return {"labels": ids[None].repeat(n, 1)}


def _class(label, classes: int, names: Sequence[str] = ()) -> int:
    """A class id from a number, its text as typed ("7") or a class's name ("dress"); anything else is refused,
    naming the classes."""
    text = str(label).strip()
    named = [name.lower() for name in names]
    if not isinstance(label, bool) and text.lower() in named:
        return named.index(text.lower())
    if isinstance(label, bool) or not text.lstrip("-").isdigit() or not 0 <= int(text) < classes:
        numbers = [str(k) for k in range(len(names))]  # a digit is its own name: nothing more to list
        listed = f" or a name: {', '.join(f'{k} {name}' for k, name in enumerate(names))}" if list(names) != numbers else ""
        raise ValueError(f"{label!r} is no class of this model: give a number 0..{classes - 1}{listed}")
    return int(text)


@torch.no_grad()
def sample(
    model,
    n: int,
    *,
    label: Optional[int | str] = None,
    caption: Optional[str] = None,
    names: Sequence[str] = (),
    seed: int = 0,
) -> np.ndarray:
    """n drawings from the prior, finished: σ(c_T) as (n, C, H, W) float32 in [0, 1]."""
    missing = _kinds.lacks(model, "sampling")
    if missing:
        raise ValueError(missing)
    given = condition(model, n, label=label, caption=caption, names=names)
    return finished(model, n, labels=given.get("labels"), seed=seed)


@torch.no_grad()
def finished(model, n: int, *, labels=None, seed: int = 0, batch_size: Optional[int] = None) -> np.ndarray:
    """n finished drawings σ(c_T) from the prior, (n, C, H, W) float32 in [0, 1], told ``labels`` (n, ...) where the
    model takes a condition; in batches of ``batch_size`` (all at once by default) from one generator, seeded."""
    device = next(model.parameters()).device
    g = torch.Generator(device).manual_seed(seed)
    out, size = [], batch_size or max(n, 1)
    for start in range(0, n, size):
        told = {"labels": labels[start : start + size].to(device)} if labels is not None else {}
        out.append(model.eval().generate(min(size, n - start), generator=g, **told)[-1].float().cpu())
    return torch.cat(out).numpy()


def grid(images: np.ndarray, columns: Optional[int] = None, gap: int = 2) -> np.ndarray:
    """Images (N, C, H, W) as one picture (rows, columns, C) with a white gap between them, near-square."""
    n, c, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    out = np.ones((rows * (h + gap) - gap, columns * (w + gap) - gap, c), dtype=np.float32)
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = image.transpose(1, 2, 0)
    return out


def write(images: np.ndarray, path) -> Path:
    """Write images (N, C, H, W) in [0, 1] as a PNG grid (each sample enlarged to at least TILE pixels) or an
    ``.npz`` (``images``, as they are), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"--out {path}: write a {' or an '.join(FORMATS)} file (a grid picture, or the images as numbers)")
    buffer = io.BytesIO()
    if suffix == ".npz":
        np.savez_compressed(buffer, images=images.astype(np.float32))
    else:
        from matplotlib import image as _image

        picture = grid(images)
        zoom = max(1, math.ceil(TILE / images.shape[-2]))  # a 28×28 digit as 112×112: a grid one can look at
        picture = picture.repeat(zoom, 0).repeat(zoom, 1)
        picture = picture[..., 0] if picture.shape[-1] == 1 else picture
        _image.imsave(buffer, np.clip(picture, 0, 1), cmap="gray", vmin=0, vmax=1, format="png")
    return _files.write_bytes(path, buffer.getvalue(), what="samples")
