"""Scenes made from MNIST digits, seeded, with every pasted piece kept as data.

Two of the paper's experiments need images of several objects whose positions are known:

- ``cluttered-mnist`` (section 4.1, after Mnih et al. 2014): a 28×28 digit at a uniform random position wholly
  inside a 100×100 frame, and 8 distractors, each an 8×8 crop at a random position of a random *other* digit
  of the same split, pasted wholly inside the frame at a uniform random position.
- ``two-digit-mnist`` (section 4.3): two digits drawn at random, each at a uniform random position wholly inside
  a 60×60 frame.

In both, the pieces' 8-bit intensities are added and clipped at 255 (1 after scaling), so a scene is exactly
the clipped sum of its pieces, and the table of pieces (``objects``) says where every digit is: one row per
piece with ``image``, ``kind`` (digit or distractor), ``label``, ``source`` (index into the MNIST split),
``x``, ``y`` (top-left column and row, 0-based), ``width``, ``height`` and, for distractors, ``crop_x``,
``crop_y`` (the crop's top-left inside its source digit; <NA> for digits).

The random draws use numpy's PCG64 from a seed fixed per set and split, so every machine builds the same
images. A built split is cached (``DRAWVIZ_CACHE`` or ``~/.cache/drawviz``) atomically, with a digest of its
images that is checked on every read; a damaged cache is rebuilt.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Scene", "SCENES", "Pieces", "compose", "build", "redraw", "cached", "stored", "OBJECT_COLUMNS"]

OBJECT_COLUMNS = ["image", "kind", "label", "source", "x", "y", "width", "height", "crop_x", "crop_y"]
_VERSION = 1  # part of the cache's name: a change to the construction must change it


@dataclass(frozen=True)
class Scene:
    """How a scene set is made from a split of 28×28 digits."""

    name: str
    size: int  # the square frame's side, pixels
    digits: int  # whole digits per image
    distractors: int = 0  # crops of other digits per image
    crop: int = 8  # a distractor's side, pixels
    seed: int = 0  # the train split uses seed, the test split seed + 1

    def __post_init__(self):
        if not 28 <= self.size or not 1 <= self.crop <= 28 or self.digits < 1 or self.distractors < 0:
            raise ValueError(f"{self}: a scene needs size >= 28, 1 <= crop <= 28, digits >= 1, distractors >= 0")


@dataclass(frozen=True, eq=False)
class Pieces:
    """What a scene set is made from: its scene and the split's digits (N, 28, 28) uint8 and labels (N,),
    which its objects' ``source`` index. Enough to draw the same digits again in new places (``redraw``)."""

    scene: Scene
    digits: np.ndarray
    labels: np.ndarray


SCENES = {
    "cluttered-mnist": Scene("cluttered-mnist", size=100, digits=1, distractors=8, crop=8, seed=2014),
    "two-digit-mnist": Scene("two-digit-mnist", size=60, digits=2, seed=2015),
}


def build(scene: Scene, digits: np.ndarray, labels: np.ndarray, n: int, seed) -> tuple[np.ndarray, pd.DataFrame]:
    """n scenes from ``digits`` (N, 28, 28) uint8 with their ``labels`` (N,): (images (n, size, size) uint8, objects).

    One digit scene: the digits are a permutation of the split (each digit once while n <= N), so a
    60,000-image set uses every training digit. Several: each image's digits are distinct, drawn at random.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    count = len(digits)
    if count < scene.digits + (1 if scene.distractors else 0):
        raise ValueError(f"{scene.name} needs at least {scene.digits + 1} digits to draw from, got {count}")
    if scene.digits == 1:
        sources = np.concatenate([rng.permutation(count) for _ in range(-(-n // count))])[:n, None]
    else:
        sources = np.stack([rng.choice(count, scene.digits, replace=False) for _ in range(n)])
    return _place(scene, sources, digits, labels, rng)


def redraw(scene: Scene, objects: pd.DataFrame, digits: np.ndarray, labels: np.ndarray, seed) -> tuple[np.ndarray, pd.DataFrame]:
    """The same scenes' digits in new places, with new distractors: (images, objects) like ``build``.

    Each image of ``objects`` keeps its digits (their ``source`` in ``digits``, the split they came from);
    where they stand and every distractor are drawn again with ``seed``. Training on a fresh draw each
    epoch shows the classifier new clutter around the same 60,000 digits instead of the same 60,000 scenes.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    mine = objects[objects["kind"] == "digit"].sort_values(["image"], kind="stable")
    sources = mine["source"].to_numpy(dtype=np.int64).reshape(-1, scene.digits)
    return _place(scene, sources, digits, labels, rng)


def _place(scene: Scene, sources: np.ndarray, digits: np.ndarray, labels: np.ndarray, rng) -> tuple[np.ndarray, pd.DataFrame]:
    """Scenes of the digits ``sources`` (n, digits per image), each at a uniform position wholly inside the frame,
    plus the scene's distractors: (images, objects)."""
    n, count, side = len(sources), len(digits), digits.shape[1]
    free = scene.size - side + 1  # top-left positions that keep a digit wholly inside
    where = rng.integers(0, free, size=(n, scene.digits, 2))  # (x, y) per digit
    rows = []
    for k in range(scene.digits):
        rows.append(_table(np.arange(n), "digit", labels[sources[:, k]], sources[:, k], where[:, k], side))
    if scene.distractors:
        d = scene.distractors
        # another digit of the split: a uniform draw among the N - 1 others
        other = rng.integers(0, count - 1, size=(n, d))
        other += other >= sources[:, :1]
        crop_at = rng.integers(0, side - scene.crop + 1, size=(n, d, 2))
        put_at = rng.integers(0, scene.size - scene.crop + 1, size=(n, d, 2))
        for k in range(d):
            piece = _table(np.arange(n), "distractor", labels[other[:, k]], other[:, k], put_at[:, k], scene.crop)
            piece["crop_x"], piece["crop_y"] = crop_at[:, k, 0], crop_at[:, k, 1]
            rows.append(piece)
    objects = pd.concat(rows, ignore_index=True)
    objects = objects.sort_values(["image", "kind"], kind="stable", ignore_index=True)
    objects["crop_x"] = objects["crop_x"].astype("Int64")
    objects["crop_y"] = objects["crop_y"].astype("Int64")
    return compose(objects, digits, scene.size), objects[OBJECT_COLUMNS]


def _table(image, kind, label, source, xy, side) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image": image,
            "kind": kind,
            "label": label.astype(np.int64),
            "source": source.astype(np.int64),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "width": side,
            "height": side,
            "crop_x": pd.NA,
            "crop_y": pd.NA,
        }
    )


def compose(objects: pd.DataFrame, digits: np.ndarray, size: int) -> np.ndarray:
    """The scenes an objects table describes: each piece added onto a zero frame, then clipped at 255.

    (n, size, size) uint8, n = the largest image index + 1."""
    import torch  # index_add_ adds repeated indices (overlapping pieces) and is ~3x faster than np.add.at

    n = int(objects["image"].max()) + 1 if len(objects) else 0
    frame = torch.zeros(n * size * size, dtype=torch.int32)
    for (w, h), pieces in objects.groupby(["width", "height"]):
        src = digits[pieces["source"].to_numpy()]
        if pieces["kind"].eq("distractor").any():
            cx = pieces["crop_x"].fillna(0).to_numpy(dtype=np.int64)
            cy = pieces["crop_y"].fillna(0).to_numpy(dtype=np.int64)
            r = cy[:, None, None] + np.arange(h)[None, :, None]
            c = cx[:, None, None] + np.arange(w)[None, None, :]
            src = src[np.arange(len(src))[:, None, None], r, c]
        rows = pieces["y"].to_numpy()[:, None, None] + np.arange(h)[None, :, None]
        cols = pieces["x"].to_numpy()[:, None, None] + np.arange(w)[None, None, :]
        at = (pieces["image"].to_numpy()[:, None, None] * size + rows) * size + cols  # (pieces, h, w) flat pixels
        frame.index_add_(0, torch.from_numpy(at.reshape(-1)), torch.from_numpy(src.astype(np.int32).reshape(-1)))
    return frame.clamp_(max=255).to(torch.uint8).view(n, size, size).numpy()


def _digest(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).data).hexdigest()


def cached(scene: Scene, split: str, digits: np.ndarray, labels: np.ndarray, cache_dir: Path, tag: str):
    """The scene set of a split, built once and cached as ``<name>-<split>-<tag>-v<version>.npz``.

    tag names the digits it was built from (e.g. "mnist" or "sample"), so sets from other digits never mix.
    Read back only when its digest matches its images and its objects fit them; otherwise rebuilt.
    """
    seed = scene.seed + (split == "test")
    pieces = scene.digits + scene.distractors

    def make():
        return (*build(scene, digits, labels, len(digits), seed), {})

    def fits(images, objects, extras):
        return (
            images.shape[1:] == (scene.size, scene.size)
            and len(images) == len(digits) > 0
            and len(objects) == len(images) * pieces
        )

    images, objects, _ = stored(Path(cache_dir) / f"{scene.name}-{split}-{tag}-v{_VERSION}.npz", make, fits)
    return images, objects


def stored(cache: Path, make, fits):
    """A built set kept in ``cache`` (npz): (images, objects, extras), read back when its digest matches its images
    and ``fits(images, objects, extras)`` holds, else made again by ``make()`` and written atomically. extras: named
    arrays that travel with the set (a caption set's tokens)."""
    from . import files as _files

    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as f:
                images, digest = f["images"], str(f["digest"])
                objects = pd.DataFrame({c: f[f"objects_{c}"] for c in OBJECT_COLUMNS})
                extras = {k[len("extra_") :]: f[k] for k in f.files if k.startswith("extra_")}
            if digest == _digest(images) and fits(images, objects, extras):
                objects["kind"] = objects["kind"].astype(str)
                for c in ("crop_x", "crop_y"):
                    objects[c] = pd.array(np.where(objects[c] < 0, pd.NA, objects[c]), dtype="Int64")
                return images, objects, extras
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass
        cache.unlink(missing_ok=True)  # truncated, foreign or from other digits: build it again
    images, objects, extras = make()
    keep = {f"objects_{c}": objects[c].to_numpy() for c in OBJECT_COLUMNS if c not in ("crop_x", "crop_y", "kind")}
    keep["objects_kind"] = objects["kind"].to_numpy(dtype="U10")
    for c in ("crop_x", "crop_y"):
        keep[f"objects_{c}"] = objects[c].fillna(-1).to_numpy(dtype=np.int64)
    keep.update({f"extra_{k}": v for k, v in extras.items()})
    with _files.atomic(cache) as tmp:
        np.savez(tmp, images=images, digest=_digest(images), **keep)
    return images, objects, extras
