"""Checkpoints: written atomically, read without running pickled code, resumed exactly, exported to ship.

A checkpoint is a dict: format and version, the model's kind (drawviz.kinds; ``draw`` where a file predates
kinds), config and weights, the optimiser state, the step,
the RNG state, the history (one row per step) and ``train_args`` (the settings, the machine, the legs).
"""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path
from typing import Optional

import torch

from . import files as _files
from . import kinds as _kinds
from .campaign import totals
from .checks import positive_int
from .device import pick_device

__all__ = [
    "FORMAT",
    "settings_of",
    "VERSION",
    "CheckpointError",
    "check_writable",
    "save_checkpoint",
    "load_checkpoint",
    "export_checkpoint",
    "model_from_checkpoint",
    "training_summary",
    "grow_checkpoint",
]

FORMAT = "drawviz-checkpoint"
VERSION = 2  # 2: weights may be stored as int8 rows ("int8_rows"); a file without them is written as version 1
INT8_MIN_SIZE = 4096  # smaller tensors (biases, a few rows) stay float16: int8 would save little on them


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, not drawviz's, or for another config."""


def check_writable(path) -> Path:
    """Fail now, not after an hour of training, when ``path``'s folder cannot take a file."""
    try:
        return _files.check_writable(path, "choose a writable folder (--checkpoint PATH)")
    except _files.WriteError as err:
        raise CheckpointError(str(err)) from None


def save_checkpoint(
    path,
    *,
    model,
    optimizer=None,
    step: int = 0,
    generator=None,
    history: Optional[list[dict]] = None,
    train_args: Optional[dict] = None,
    weights_dtype: Optional[torch.dtype] = None,
) -> Path:
    """Write atomically: a temporary file beside the target, fsync, then rename over it.

    A process killed at any moment leaves either the previous checkpoint or the new one.
    weights_dtype: store floating-point weights in this dtype (torch.float16 halves a shipped
    file; torch.int8 quarters it, see _int8_rows); loading copies them into the float32 model.
    """
    path = Path(path)
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    rows = {}
    if weights_dtype == torch.int8:
        weights, rows = _int8_rows(weights)
    elif weights_dtype is not None:
        weights = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in weights.items()}
    state = {
        "format": FORMAT,
        "version": 2 if rows else 1,  # a reader of version 1 would not find the int8 weights: it is told to upgrade
        "kind": _kinds.of(model).name,
        "config": model.config.to_dict(),
        "model": weights,
        **({"int8_rows": rows} if rows else {}),
        "weights_dtype": str(weights_dtype or "float32").replace("torch.", ""),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step),
        "rng": generator.get_state() if generator is not None else None,
        "rng_device": str(generator.device) if generator is not None else None,
        "history": list(history or []),
        "train_args": dict(train_args or {}),
    }
    buffer = io.BytesIO()  # serialised in memory: the disk sees one plain write, whose failure is an OSError
    torch.save(state, buffer)
    try:
        _files.write_bytes(path, buffer.getbuffer(), "checkpoint")
    except _files.WriteError as err:  # a full disk, a quota, a file-size limit
        raise CheckpointError(str(err).replace("run again", "resume")) from None
    return path


def _int8_rows(weights: dict) -> tuple[dict, dict]:
    """Each large weight matrix as int8 per output row (symmetric: w ≈ q · scale, scale = max|row| / 127), the rest
    float16. For a model too large for the 10 MB a shipped file may take in float16 (DRAW without attention on a
    60×60 canvas: 9.2 M weights); the error is at most half a step, scale / 2, in each weight."""
    plain, rows = {}, {}
    for name, v in weights.items():
        if v.is_floating_point() and v.dim() >= 2 and v.numel() >= INT8_MIN_SIZE:
            flat = v.float().reshape(v.shape[0], -1)
            scale = flat.abs().amax(dim=1).clamp_min(1e-30) / 127  # (rows,)
            rows[name] = {"q": torch.round(flat / scale[:, None]).to(torch.int8).reshape(v.shape), "scale": scale}
        else:
            plain[name] = v.half() if v.is_floating_point() else v
    return plain, rows


def _from_int8_rows(state: dict) -> None:
    """Put the int8 rows back into ``state["model"]`` as float32 weights (q · scale)."""
    for name, row in state.pop("int8_rows", {}).items():
        q, scale = row["q"], row["scale"]
        state["model"][name] = q.float() * scale.reshape(-1, *[1] * (q.dim() - 1))


def _upgraded(args: dict) -> dict:
    """train_args in the current layout: the run's settings (a TrainConfig's dict) under "settings", beside what the
    run recorded (hardware, legs, train_images, train_source, ...). A file written before TrainConfig kept its
    settings as flat keys (dataset, seed, binarize, recipe, and lr, clip, batch_size beside the recipe): they are
    moved under "settings" as they are read."""
    if isinstance(args.get("settings"), dict):
        return args
    from .recipe import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = {k: v for k, v in args.items() if k in fields}
    if not isinstance(settings.get("recipe"), dict) and any(k in args for k in ("lr", "clip", "batch_size")):
        settings["recipe"] = {k: args[k] for k in ("lr", "clip", "batch_size") if k in args}
    recorded = {k: v for k, v in args.items() if k not in fields and k not in ("lr", "clip", "batch_size", "config")}
    return {**recorded, "settings": settings}


def settings_of(state: dict) -> dict:
    """A loaded checkpoint's training settings (TrainConfig.to_dict(): dataset, seed, binarize, recipe, limit, ...);
    empty for a model saved without any."""
    return (state.get("train_args") or {}).get("settings") or {}


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint (``weights_only=True``: plain tensors and data, no pickled code)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path} is not a readable drawviz checkpoint ({type(err).__name__}: {str(err)[:200]}). "
            f"It may be truncated or corrupt; drawviz writes checkpoints atomically, so files named "
            f"'*.tmp<pid>' are partial writes and the file without that suffix is the last complete one."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a drawviz checkpoint (no format={FORMAT!r} entry)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer drawviz (checkpoint version {state['version']}, "
            f"this one reads up to {VERSION}); upgrade drawviz"
        )
    missing = [k for k in ("config", "model", "step") if k not in state]
    if missing:
        raise CheckpointError(f"{path} is a drawviz checkpoint without {', '.join(missing)}: it cannot be used")
    if isinstance(state["step"], bool) or not isinstance(state["step"], int) or state["step"] < 0:
        raise CheckpointError(f"{path} holds step {state['step']!r}; a checkpoint's step is a count of optimiser steps")
    _from_int8_rows(state)
    state["train_args"] = _upgraded(state.get("train_args") or {})
    state["kind"] = state.get("kind", "draw")  # written before kinds existed: DRAW
    if state["kind"] not in _kinds.REGISTRY:
        raise CheckpointError(
            f"{path} holds a model of kind {state['kind']!r}, which this drawviz does not know "
            f"(it knows {', '.join(_kinds.REGISTRY)}): import the module that registers it first"
        )
    try:
        state["config"] = _kinds.get(state["kind"]).config.from_dict(state["config"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path} holds an unusable config: {err}") from None
    return state


def _load_weights(model, state: dict, path) -> None:
    if state["config"] != model.config:
        changes = ", ".join(f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in state["config"].diff(model.config).items())
        raise CheckpointError(
            f"checkpoint {path} was trained with a different config ({changes}). "
            f"Build the model from the checkpoint instead: drawviz.checkpoints.model_from_checkpoint(path)"
        )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not fit the model: {str(err)[:300]}") from None


def export_checkpoint(src, dst, *, keep_every: int = 50, half: bool = False, int8: bool = False, force: bool = False) -> Path:
    """A checkpoint to ship: weights, config, RNG state and a thinned history, no optimiser state.

    Keeps every ``keep_every``-th history row and every row with a test bound. Resuming from it
    continues training with a fresh Adam state. half: store the weights as float16 (half the
    size; the model loads as float32 with weights rounded to 11 significant bits). int8: each large weight matrix
    as int8 rows with a scale per row, the rest float16 (a quarter of the size; check the bound it costs with
    ``drawviz evaluate``).
    An existing ``dst`` is replaced only when it is an export of the same model (its kind and config, no
    optimiser state), or with ``force``: a training checkpoint or any other file there is refused.
    """
    keep_every = positive_int(keep_every, "keep_every", "keep every N-th history row")
    if half and int8:
        raise CheckpointError("choose one of half (float16 weights) and int8 (int8 rows, the rest float16)")
    if Path(dst).resolve() == Path(src).resolve():
        raise CheckpointError(
            f"export would replace {src} itself, and with it the optimiser state and the full "
            f"history that training resumes from: give another output file"
        )
    state = load_checkpoint(src)
    if Path(dst).exists() and not force:
        _replaceable(dst, state)
    check_writable(dst)
    model = _model_from_state(state, src)
    broken = [name for name, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise CheckpointError(
            f"{src} holds NaN or infinite weights ({', '.join(broken[:5])}): a model that cannot "
            f"draw; export an earlier checkpoint"
        )
    if half or int8:
        limit = torch.finfo(torch.float16).max
        large = [
            f"{name} (|w| up to {v.abs().max().item():.3g})"
            for name, v in model.state_dict().items()
            if v.is_floating_point() and v.abs().max().item() > limit
        ]
        if large:
            raise CheckpointError(
                f"--half would store {', '.join(large[:5])} as infinity: float16 holds at most {limit:g}; export without --half"
            )
    history = [
        row for row in state["history"] if row["step"] % keep_every == 0 or math.isfinite(row.get("test_nll_bound", math.nan))
    ]
    generator = torch.Generator().manual_seed(0)
    if state["rng"] is not None and state["rng_device"] == "cpu":
        generator.set_state(state["rng"])
    return save_checkpoint(
        dst,
        model=model,
        step=state["step"],
        generator=generator,
        history=history,
        train_args=state["train_args"],
        weights_dtype=torch.int8 if int8 else torch.float16 if half else None,
    )


def _replaceable(dst, state: dict) -> None:
    """Refuse to export over a file that is not an earlier export of the same model (swapped arguments would
    replace a training checkpoint, Adam state and history; ``--out notes.md`` a text file)."""
    try:
        there = load_checkpoint(dst)
    except (CheckpointError, OSError):
        raise CheckpointError(
            f"{dst} exists and is not a drawviz checkpoint: export will not replace it (give another --out, or --force)"
        ) from None
    if there.get("optimizer") is not None:
        raise CheckpointError(
            f"{dst} is a training checkpoint (it holds the optimiser state training resumes from): export will not "
            f"replace it. Were the arguments swapped? export TRAINING_CHECKPOINT --out SHIPPED_FILE (or --force)"
        )
    if there["kind"] != state["kind"] or there["config"] != state["config"]:
        raise CheckpointError(
            f"{dst} is an export of another model ({there['kind']}, {there['config']}): export will not replace it "
            f"(give another --out, or --force)"
        )


def _model_from_state(state: dict, path):
    model = _kinds.get(state["kind"]).model(state["config"])
    _load_weights(model, state, path)
    return model


def training_summary(state: dict, path=None) -> dict:
    """What a checkpoint says about its training: data, steps, epochs, minutes, hardware, model file.

    For a figure's caption and a report's index (``state`` from load_checkpoint). Older
    checkpoints lack ``train_images``; it is then recovered from the last epoch count.
    """
    args, settings, history = state.get("train_args", {}), settings_of(state), state.get("history") or []
    recipe = settings.get("recipe") or {}
    last = history[-1] if history else {}
    images = args.get("train_images")
    batch = recipe.get("batch_size") or 64
    if images is None and last.get("epoch"):
        images = int(round(last["step"] * batch / last["epoch"], -2))  # to the nearest hundred
    tests = [
        row for row in history if row.get("test_nll_bound") is not None and math.isfinite(row.get("test_nll_bound") or math.nan)
    ]
    total = totals(state)
    return {
        "trained_on": settings.get("dataset"),
        "train_images": images,
        "train_source": args.get("train_source"),
        "legs": total["legs"],
        "cpu_hours": total["cpu_hours"],
        "gpu_hours": total["gpu_hours"],
        "steps": state.get("step"),
        "epochs": last.get("epoch"),
        "minutes": last["seconds"] / 60 if last.get("seconds") is not None else None,
        "hardware": args.get("hardware"),
        "recipe": recipe,
        "last_test_bound": tests[-1]["test_nll_bound"] if tests else None,
        "model_file": str(path) if path is not None else None,
    }


def model_from_checkpoint(path, device="auto", *, state: Optional[dict] = None):
    """The network stored in a checkpoint (of its kind), built from the config that travels with it.

    state: the checkpoint as load_checkpoint(path) already returned it (not read again)."""
    state = load_checkpoint(path) if state is None else state
    return _model_from_state(state, path).to(pick_device(device)).eval()


def grow_checkpoint(source, out, grow) -> dict:
    """A trained model grown into a larger one that starts out computing exactly what it did (``grow``: model -> model,
    e.g. drawviz.model.with_arms, drawviz.conditional.grown_from), saved to ``out`` with the source's step, history and
    training settings, so that the training that follows (and its card) reads as more legs of the same model.
    Returns the source's state."""
    state = load_checkpoint(source)
    grown = grow(model_from_checkpoint(source, device="cpu", state=state))
    save_checkpoint(out, model=grown, step=state["step"], history=state.get("history"), train_args=state.get("train_args"))
    return state
