"""What each notebook tells the report: one typed record per notebook, written as JSON beside its
page (``reports/<run>/<notebook>.json``) and read back by drawviz.report. The JSON keys are the
field names, so the files stay plain JSON for anything else that reads them.

A notebook builds its record and calls ``.write(metrics_out)``; the report calls ``Record.read(path)``,
which gives None for a missing or unreadable file and ignores keys it does not know (a file from
another version). A number the index shows is one field here.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional

from . import files as _files

__all__ = [
    "Record",
    "Trained",
    "Attention",
    "ErrorImages",
    "Blur",
    "Interventions",
    "Classification",
    "Asked",
    "RECORDS",
    "json_safe",
]


def json_safe(value):
    """JSON-safe: NaN/inf become null, numpy scalars and paths become Python values, records dicts."""
    if isinstance(value, Record):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


class Record:
    """A notebook's metrics: a frozen dataclass that reads and writes itself as JSON."""

    notebook: ClassVar[str]  # the notebook that writes it (its file is <notebook>.json)

    def to_dict(self) -> dict:
        return json_safe({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    def write(self, path) -> Path:
        """Write atomically (a reader never sees half a file; see drawviz.files)."""
        return _files.write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read(cls, path):
        """The record in ``path``, or None when there is none (the notebook failed or did not run)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None
        return cls.from_dict(data) if isinstance(data, dict) else None


@dataclass(frozen=True)
class Trained(Record):
    """train.ipynb: the model's test bound (eq. 12) and how it was trained."""

    notebook: ClassVar[str] = "train"
    nll_bound: Optional[float] = None  # nats per image
    bits_per_dim: Optional[float] = None
    recon_nll: Optional[float] = None  # L^x
    kl: Optional[float] = None  # L^z
    images: Optional[int] = None  # test images the bound is measured on
    dataset: Optional[str] = None
    source: Optional[str] = None  # where the test images came from
    step: Optional[int] = None  # optimiser steps over all legs
    epochs: Optional[float] = None
    trained_on: Optional[str] = None  # the dataset the model was trained on
    train_images: Optional[int] = None
    minutes: Optional[float] = None
    legs: Optional[int] = None
    cpu_hours: Optional[float] = None
    model_file: Optional[str] = None  # the shipped file it came from, if any
    trained: Optional[str] = None  # a sentence: what was trained, how long
    checkpoint: Optional[str] = None
    config: dict = field(default_factory=dict)  # DrawConfig.to_dict()
    likelihood: Optional[str] = None
    likelihood_note: Optional[str] = None
    seconds: Optional[float] = None
    binarization: str = "none"
    kl_per_step: list = field(default_factory=list)  # (T,) mean KL of each step, nats


@dataclass(frozen=True)
class Attention(Record):
    """attention.ipynb: the window diagnostics (drawviz.diagnostics.summary) over the steps ``steps``."""

    notebook: ClassVar[str] = "attention"
    images: Optional[int] = None
    steps: Optional[str] = None  # e.g. "7-64": the first 10 % of the steps are left out
    read_footprint: Optional[float] = None  # share of the width
    read_footprint_px: Optional[float] = None
    read_spread_px: Optional[float] = None  # spread of the window centres across images
    read_spread_uniform_px: Optional[float] = None  # the spread of centres uniform over the image
    read_off_image: Optional[float] = None  # share of centres off the image
    write_footprint: Optional[float] = None
    write_footprint_px: Optional[float] = None
    write_spread_px: Optional[float] = None
    write_spread_uniform_px: Optional[float] = None
    write_off_image: Optional[float] = None
    edit_area: Optional[float] = None  # median share of the canvas a step changes
    edit_area_reference: Optional[float] = None  # the same for the model without attention


@dataclass(frozen=True)
class ErrorImages(Record):
    """error_images.ipynb: how the error image x̂_t = x − σ(c_{t−1}) (eq. 3) shrinks, and what reads see."""

    notebook: ClassVar[str] = "error_images"
    dataset: Optional[str] = None
    images: Optional[int] = None
    T: Optional[int] = None
    mean_abs_error_per_step: list = field(default_factory=list)  # (T,)
    read_contains_peak_share: Optional[float] = None
    read_contains_peak_by_chance: Optional[float] = None
    median_distance_to_peak: Optional[float] = None


@dataclass(frozen=True)
class Blur(Record):
    """blur.ipynb: sharpness of reconstructions and samples relative to their test images, per run."""

    notebook: ClassVar[str] = "blur"
    runs: dict = field(default_factory=dict)  # run name -> {"samples/laplacian_variance": ratio, ...}
    sources: dict = field(default_factory=dict)  # run name -> where its test images came from
    bounds: list = field(default_factory=list)  # one row per run: bound, bits/dim, likelihood, epochs
    disagreements: list = field(default_factory=list)  # where the two measures disagree, in words
    table: list = field(default_factory=list)  # the sharpness table, one record per (run, images)


@dataclass(frozen=True)
class Interventions(Record):
    """interventions.ipynb: what editing z_t, the windows or the canvas does to the drawing."""

    notebook: ClassVar[str] = "interventions"
    dataset: Optional[str] = None
    step: Optional[int] = None
    images: Optional[int] = None
    interventions: list = field(default_factory=list)
    one_shot_vs_draw: list = field(default_factory=list)


@dataclass(frozen=True)
class Classification(Record):
    """classify.ipynb: the read-only classifier's error and where it looks (drawviz.looking), on the notebook's
    test images."""

    notebook: ClassVar[str] = "classify"
    dataset: Optional[str] = None
    images: Optional[int] = None
    glimpses: Optional[int] = None  # T
    error: Optional[float] = None  # a fraction
    cross_entropy: Optional[float] = None  # nats
    last_covers: Optional[float] = None  # share of images whose last glimpse covers the digit's centre
    chance_covers: Optional[float] = None  # the same for a window of its size placed at random
    last_distance: Optional[float] = None  # median px from the last glimpse's centre to the digit's
    error_centre: Optional[float] = None  # the error with every read window held at the frame's centre
    error_distractor: Optional[float] = None  # ... moved onto the largest distractor
    paper_error: Optional[float] = None  # the paper's Table 1 for this many glimpses


@dataclass(frozen=True)
class Asked(Record):
    """draw_this.ipynb: does a conditional DRAW draw what it was asked? Its drawings read by the judge (drawviz.asked)."""

    notebook: ClassVar[str] = "draw_this"
    dataset: Optional[str] = None
    condition: Optional[str] = None  # label or caption
    enters: Optional[str] = None  # decoder, prior or both
    T: Optional[int] = None  # the drawing's steps
    drawings: Optional[int] = None
    right: Optional[float] = None  # the share judged as asked
    worst: Optional[float] = None  # the lowest share of any class (of any group of captions)
    held_out_right: Optional[float] = None  # captions whose triple training never saw
    first_on_own_word: Optional[float] = None  # the share of a pair's first digit drawn while attending its word


RECORDS: dict[str, type] = {r.notebook: r for r in (Trained, Attention, ErrorImages, Blur, Interventions, Classification, Asked)}
