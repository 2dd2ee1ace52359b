"""MNIST with captions, as alignDRAW made it (Mansimov et al. 2016, "Generating Images from Captions with
Attention", section 4.1): one or two digits on a 60×60 canvas, placed where a caption says.

Captions come from eight templates, twelve tokens each, over a fixed vocabulary of 22 words:

- two digits: "the digit 3 is on the left of the digit 5 ." (also "on the right of", "at the top of",
  "at the bottom of");
- one digit: "the digit 7 is at the top left of the image ." (also top right, bottom left, bottom right).

Placement follows alignDRAW's generator: a left/right pair on rows 16–18, the left digit at columns 0–4 and the
right one at 28–32; a top/bottom pair on columns 16–18, the upper digit at rows 0–2 and the lower at 30–32; a single
digit in its corner, 2–4 pixels in from both edges (each position uniform over its range). Pieces are added and
clipped as in every scene set (drawviz.scenes), and the objects table says where each digit is (the first row of an
image is the caption's first digit).

**Held-out combinations**: a fixed set of (digit, relation, digit) triples (``HELD_OUT``, 10 % of the 400, drawn with a
fixed seed) never occurs in the training split; the test split draws from all 400 and marks each image
``held_out``, so a model can be asked whether it composes what it never saw together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import scenes

__all__ = [
    "VOCABULARY",
    "LENGTH",
    "RELATIONS",
    "CORNERS",
    "HELD_OUT",
    "CAPTIONED",
    "UnknownWord",
    "caption",
    "tokens",
    "text",
    "parse",
    "build",
    "cached",
]

# the 22 words: the template's words, then the digits (a token is an index into this)
VOCABULARY = ("the", "digit", "is", "on", "at", "left", "right", "top", "bottom", "of", "image", ".") + tuple(
    str(d) for d in range(10)
)
LENGTH = 12  # tokens in every caption
RELATIONS = ("left", "right", "top", "bottom")  # "the digit A is <on the left of | ...> the digit B ."
CORNERS = ("top left", "top right", "bottom left", "bottom right")  # "the digit A is at the <corner> of the image ."
SIZE, SIDE = 60, 28  # the canvas and a digit, pixels
_PHRASE = {"left": "on the left of", "right": "on the right of", "top": "at the top of", "bottom": "at the bottom of"}


def _held_out() -> frozenset:
    rng = np.random.Generator(np.random.PCG64(2016))  # fixed: the same triples on every machine, in every split
    every = [(a, r, b) for a in range(10) for r in RELATIONS for b in range(10)]
    return frozenset(every[i] for i in rng.choice(len(every), size=len(every) // 10, replace=False))


HELD_OUT = _held_out()  # (first digit, relation, second digit): never in the training split


@dataclass(frozen=True)
class Captioned:
    """How a captioned set is made: its name, the share of one-digit images, and the seed (the test split uses seed + 1)."""

    name: str = "captioned-mnist"
    single: float = 0.5
    seed: int = 2020


CAPTIONED = Captioned()


class UnknownWord(ValueError):
    """A caption with a word outside the vocabulary; the message names the vocabulary."""


def caption(first: int, where: str, second: int | None = None) -> str:
    """The caption of a digit placed ``where`` (a corner) or of a pair (``where`` a relation, ``second`` given)."""
    if second is None:
        if where not in CORNERS:
            raise ValueError(f"a single digit is at one of the corners {CORNERS}, got {where!r}")
        return f"the digit {first} is at the {where} of the image ."
    if where not in RELATIONS:
        raise ValueError(f"two digits stand in one of the relations {RELATIONS}, got {where!r}")
    return f"the digit {first} is {_PHRASE[where]} the digit {second} ."


def tokens(caption_text: str) -> np.ndarray:
    """A caption as LENGTH token ids (int64); a word outside the vocabulary or another length is refused, clearly."""
    words = caption_text.replace(".", " . ").split()
    unknown = [w for w in words if w not in VOCABULARY]
    if unknown:
        raise UnknownWord(
            f"{', '.join(repr(w) for w in unknown)} {'is' if len(unknown) == 1 else 'are'} not in the vocabulary "
            f"of {len(VOCABULARY)} words: {' '.join(VOCABULARY)}"
        )
    if len(words) != LENGTH:
        raise UnknownWord(f"a caption has {LENGTH} words (e.g. {caption(3, 'left', 5)!r}), got {len(words)}: {caption_text!r}")
    return np.array([VOCABULARY.index(w) for w in words], dtype=np.int64)


def text(ids) -> str:
    """Token ids back to the caption."""
    return " ".join(VOCABULARY[int(i)] for i in ids)


def parse(ids) -> tuple[int, str, int | None]:
    """What a caption asks for: (first digit, where, second digit), ``where`` a relation (a pair) or a corner
    (one digit, second None); the inverse of :func:`caption`."""
    words = text(ids).split()
    first = int(words[2])
    if "image" in words:  # "the digit A is at the <corner> of the image ."
        return first, f"{words[6]} {words[7]}", None
    return first, words[6], int(words[10])  # "the digit A is <on|at> the <relation> of the digit B ."


def _place(rng, where: str, n: int) -> np.ndarray:
    """Top-left (x, y) of n digits: for a corner (one digit), or for the first digit of a pair in ``where`` and
    then the second's: (n, 2) or (n, 2, 2)."""
    u = lambda lo, hi: rng.integers(lo, hi + 1, size=n)  # noqa: E731 -- uniform over [lo, hi]
    far = SIZE - SIDE  # 32: the top-left coordinate of a digit against the far edge
    if where in CORNERS:
        dx, dy = u(2, 4), u(2, 4)
        x = dx if "left" in where else far - dx
        y = dy if "top" in where else far - dy
        return np.stack([x, y], -1)
    near_far = {"left": (u(0, 4), u(28, 32)), "right": (u(28, 32), u(0, 4))}  # the first digit's column, then the second's
    if where in near_far:
        (xa, xb), ya, yb = near_far[where], u(16, 18), u(16, 18)
        return np.stack([np.stack([xa, ya], -1), np.stack([xb, yb], -1)], 1)
    ya, yb = (u(0, 2), u(30, 32)) if where == "top" else (u(30, 32), u(0, 2))
    return np.stack([np.stack([u(16, 18), ya], -1), np.stack([u(16, 18), yb], -1)], 1)


def build(digits: np.ndarray, labels: np.ndarray, n: int, seed, *, train: bool, spec: Captioned = CAPTIONED):
    """n captioned images from ``digits`` (N, 28, 28) uint8 and their ``labels``: (images (n, 60, 60) uint8,
    objects, extras {"captions": (n, LENGTH) token ids, "held_out": (n,) bool}). The training split never holds a
    triple of HELD_OUT."""
    rng = np.random.Generator(np.random.PCG64(seed))
    single = rng.random(n) < spec.single
    where = np.where(single, rng.integers(0, len(CORNERS), n), rng.integers(0, len(RELATIONS), n))
    first = rng.integers(0, len(digits), n)
    second = rng.integers(0, len(digits) - 1, n)
    second += second >= first  # another digit of the split
    if train:  # a held-out triple is drawn again (a new second digit) until it is not one
        for _ in range(1000):
            bad = np.array(
                [
                    (not s) and (int(labels[a]), RELATIONS[w], int(labels[b])) in HELD_OUT
                    for s, w, a, b in zip(single, where, first, second)
                ]
            )
            if not bad.any():
                break
            again = rng.integers(0, len(digits) - 1, int(bad.sum()))
            second[bad] = again + (again >= first[bad])
    captions = np.zeros((n, LENGTH), dtype=np.int64)
    held = np.zeros(n, dtype=bool)
    rows = []
    for k, corner in enumerate(CORNERS):
        chosen = np.flatnonzero(single & (where == k))
        xy = _place(rng, corner, len(chosen))
        rows.append(scenes._table(chosen, "digit", labels[first[chosen]], first[chosen], xy, SIDE))
        for i in chosen:
            captions[i] = tokens(caption(int(labels[first[i]]), corner))
    for k, relation in enumerate(RELATIONS):
        chosen = np.flatnonzero(~single & (where == k))
        xy = _place(rng, relation, len(chosen))
        rows.append(scenes._table(chosen, "digit", labels[first[chosen]], first[chosen], xy[:, 0], SIDE))
        rows.append(scenes._table(chosen, "digit", labels[second[chosen]], second[chosen], xy[:, 1], SIDE))
        for i in chosen:
            a, b = int(labels[first[i]]), int(labels[second[i]])
            captions[i] = tokens(caption(a, relation, b))
            held[i] = (a, relation, b) in HELD_OUT
    objects = pd.concat(rows, ignore_index=True)  # the first digit's row before the second's in every image
    objects = objects.sort_values("image", kind="stable", ignore_index=True)
    objects["crop_x"] = objects["crop_x"].astype("Int64")
    objects["crop_y"] = objects["crop_y"].astype("Int64")
    objects = objects[scenes.OBJECT_COLUMNS]
    return scenes.compose(objects, digits, SIZE), objects, {"captions": captions, "held_out": held}


def cached(split: str, digits: np.ndarray, labels: np.ndarray, cache_dir, tag: str, spec: Captioned = CAPTIONED):
    """The captioned set of a split built once and cached like every scene set (drawviz.scenes.stored)."""
    from pathlib import Path

    seed = spec.seed + (split == "test")

    def make():
        return build(digits, labels, len(digits), seed, train=split == "train", spec=spec)

    def fits(images, objects, extras):
        n = len(images)
        ok = images.shape[1:] == (SIZE, SIZE) and n == len(digits) > 0 and n <= len(objects) <= 2 * n
        return (
            ok and extras.get("captions", np.zeros(0)).shape == (n, LENGTH) and extras.get("held_out", np.zeros(0)).shape == (n,)
        )

    return scenes.stored(Path(cache_dir) / f"{spec.name}-{split}-{tag}-v{scenes._VERSION}.npz", make, fits)
