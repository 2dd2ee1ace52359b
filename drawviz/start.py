"""Where a training starts: resume a checkpoint, start from a given model, or make a new model from a preset.

One rule for ``python -m drawviz train`` (``--checkpoint``, ``--init-from``, ``--preset`` and the config flags)
and for train.ipynb (``checkpoint``, ``checkpoint_in``, ``preset``, ``T``, ``overrides``), like nanoGPT's
``init_from``, so that the same request starts the same model from either:

1. a given model that is the checkpoint itself is refused: training would write into the model it starts from;
2. the checkpoint exists: it is resumed (a given model is then not used, and one line says so, unless the
   checkpoint is an untouched copy of it: then it *is* the given model);
3. else a given model: training starts from it, with its config, on a copy made at the checkpoint only once
   the caller has checked its settings and its data (``Start.copy``); a start that then fails removes the
   copy again while nothing is trained into it (``Start.undo``, ``Start.copied``), so that no stray copy
   is resumed later in the given model's place;
4. else a new model: the preset (the dataset's by default) with the new-model defaults (``new_model``,
   e.g. train.ipynb's small T = 8) and the fields given.

Config values the caller *gave* (a preset, fields not None) that disagree with a model resumed or started
from are refused, naming each difference: quietly ignored, they would show or train another model than the
one asked for. New-model defaults are never compared: they size a new model only.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = ["Words", "CLI", "NOTEBOOK", "Start", "start_from"]


@dataclass(frozen=True)
class Words:
    """How a caller names what it was given, in the messages (the rule is the same; the spelling is the caller's)."""

    given: str  # what the config values are: flags, parameters
    checkpoint: str  # the file written (and resumed)
    init: str  # the model to start from


CLI = Words("flags", "--checkpoint", "--init-from")
NOTEBOOK = Words("parameters", "checkpoint", "checkpoint_in")


@dataclass(frozen=True)
class Start:
    """Where a training starts: a checkpoint to resume, a given model to start from, or a new config."""

    checkpoint: Path  # the file training writes
    config: object  # the model's config: the checkpoint's or the given model's, else the new one's
    state: Optional[dict]  # the checkpoint read (load_checkpoint) when resuming or starting from a model, else None
    source: Optional[Path]  # the file the weights come from: the checkpoint itself, a given model, or None (new)

    @property
    def given(self) -> bool:
        """Started from a given model (not the checkpoint resumed, not a new model)."""
        return self.source is not None and self.source != self.checkpoint

    @property
    def step(self) -> int:
        """Optimiser steps the model already has (0 for a new one)."""
        return int(self.state["step"]) if self.state else 0

    @property
    def minutes(self) -> float:
        """Minutes of training the model already has (the clock of its history; 0 for a new one)."""
        history = (self.state or {}).get("history") or [{}]
        return (history[-1].get("seconds") or 0.0) / 60

    def fits(self, images, dataset: str) -> None:
        """Refuse images (batch, C, H, W) of another shape than the model's, before anything is copied."""
        shape = tuple(images.shape[1:])
        if shape != tuple(self.config.image_shape):
            what = f"the model in {self.source}" if self.source is not None else "the new model"
            raise ValueError(
                f"{what} takes images of shape {tuple(self.config.image_shape)} (channels, height, width); "
                f"{dataset}'s are {shape}: give the dataset it was made for, or another model"
            )

    def copy(self) -> bool:
        """Copy the given model to the checkpoint (the given file is never written into); whether it copied."""
        if not self.given or self.checkpoint.exists():  # resumed, new, or already its untouched copy
            return False
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.source, self.checkpoint)
        print(f"drawviz: starting {self.checkpoint} from {self.source}", file=sys.stderr)
        return True

    def undo(self) -> None:
        """After a start that failed: remove the copy while nothing is trained into it."""
        if self.given and _untouched(self.checkpoint, self.source):
            self.checkpoint.unlink(missing_ok=True)

    @contextmanager
    def copied(self):
        """The copy (``copy``) for the block that trains or shows it; removed again if the block fails first."""
        made = self.copy()
        try:
            yield self
        except BaseException:
            if made:
                self.undo()
            raise


def start_from(
    checkpoint,
    init_from=None,
    *,
    dataset: str,
    preset: Optional[str] = None,
    fields: Optional[dict] = None,
    new_model: Optional[dict] = None,
    words: Words = NOTEBOOK,
    say: bool = True,
) -> Start:
    """Where training into ``checkpoint`` starts (the module's rules); nothing is written here.

    init_from: a model to start from (its file is copied to ``checkpoint`` by ``Start.copy``), or None.
    preset, fields: the config values the caller gave (a field given as None is not given); compared with a
      model resumed or started from, they make a new model otherwise.
    new_model: config fields for a new model only (never compared), below the fields given.
    words: the caller's names in the messages (``CLI``, ``NOTEBOOK``); say: print the line saying that a given
      model is not used (False on the other ranks of a distributed run).
    """
    from .checkpoints import load_checkpoint

    checkpoint = Path(checkpoint)
    init = Path(init_from) if init_from not in (None, "") else None
    fields = {k: v for k, v in (fields or {}).items() if v is not None}
    if init is not None and init.resolve() == checkpoint.resolve():
        raise ValueError(
            f"{words.init} {init} is the {words.checkpoint} itself: training would write into the model it starts "
            f"from. Give another {words.checkpoint} (e.g. runs/{checkpoint.stem}-leg.pt), or leave {words.init} out "
            f"to resume it"
        )
    if checkpoint.exists():
        # an untouched copy of the given model is that model (train.ipynb run again with the same checkpoint_in)
        source = init if init is not None and _untouched(checkpoint, init) else checkpoint
        if say and init is not None and source == checkpoint:
            print(
                f"drawviz: resuming {checkpoint}; {words.init} {init} is not used (give another {words.checkpoint} "
                f"to start from it)",
                file=sys.stderr,
            )
    else:
        source = init
    if source is None:
        return Start(checkpoint, _new_config(dataset, preset, fields, new_model or {}), None, None)
    state = load_checkpoint(source)  # refuses a file that is not a checkpoint, before anything is copied
    saved = state["config"]
    changed = _disagreements(saved, preset, fields)
    if changed:
        resumed = source == checkpoint
        then = f"resume it, or give another {words.checkpoint}" if resumed else f"start from it, or leave {words.init} out"
        raise ValueError(
            f"{source} holds a model with {', '.join(f'{k} = {a!r}' for k, (a, b) in changed.items())}, "
            f"not {', '.join(f'{k} = {b!r}' for k, (a, b) in changed.items())}: drop those {words.given} to {then}"
        )
    return Start(checkpoint, saved, state, source)


def _new_config(dataset: str, preset: Optional[str], fields: dict, new_model: dict):
    """The new model: the preset (of its kind: a classifier's, a convvae's) with the new-model defaults its config
    has (a one-step convvae has no T for train.ipynb's T = 8) and the fields given (every one, or refused)."""
    from . import data, kinds

    name = preset or data.default_preset(dataset)
    kind = kinds.presets().get(name.lower().replace("_", "-"))  # None: an unknown preset, refused by kinds.preset
    defaults = {k: v for k, v in new_model.items() if kind is None or k in {f.name for f in dataclasses.fields(kind.config)}}
    return kinds.preset(name, **{**defaults, **fields})


def _disagreements(saved, preset: Optional[str], fields: dict) -> dict:
    """{field: (the model's, the one asked for)} over what was given: a preset names every field, a flag one."""
    from . import kinds

    if preset is not None:
        return saved.diff(kinds.preset(preset, **fields))
    known = {f.name for f in dataclasses.fields(saved)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"a {type(saved).__name__} has no {', '.join(unknown)}; its fields are {', '.join(sorted(known))}")
    return {k: (getattr(saved, k), v) for k, v in fields.items() if getattr(saved, k) != v}


def _untouched(checkpoint: Path, source: Path) -> bool:
    """Whether ``checkpoint`` is still a plain copy of ``source`` (no step trained into it)."""
    try:
        return checkpoint.stat().st_size == source.stat().st_size and checkpoint.read_bytes() == source.read_bytes()
    except OSError:
        return False
