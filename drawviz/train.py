"""Training, evaluation and checkpoints.

``train`` is the loop for notebooks and the CLI: Adam, gradient-norm clipping, a periodic
test-set NLL bound, atomic checkpoints that resume exactly, and a history DataFrame.
It reports through ``callbacks`` (called with each history row); ``progress`` picks a
tqdm.auto bar or silence.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import pandas as pd
import torch

from . import data as _data
from . import files as _files
from .checks import count, positive_int
from .campaign import legs_of, totals
from . import distributed as _distributed
from .model import DRAW, DrawConfig, bits_per_dim, check_images, from_fields

__all__ = ["TrainConfig", "train", "evaluate", "Recipe", "RECIPES", "TrainResult", "TrainingDiverged", "CheckpointError",
           "save_checkpoint", "load_checkpoint", "model_from_checkpoint", "export_checkpoint", "pick_device",
           "training_summary"]

FORMAT = "drawviz-checkpoint"
VERSION = 1


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN/inf; the last good checkpoint is kept."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, not drawviz's, or for another config."""


def describe_hardware(device: torch.device) -> dict:
    """What a run trained on: the GPU's name or the CPU model, and the thread count (for model cards)."""
    if device.type == "cuda":
        return {"device": "cuda", "name": torch.cuda.get_device_name(device), "torch": str(torch.__version__)}
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        import platform
        name = platform.processor() or platform.machine()
    return {"device": "cpu", "name": name, "threads": torch.get_num_threads(), "cores": os.cpu_count(),
            "isa": torch.backends.cpu.get_cpu_capability(), "torch": str(torch.__version__)}


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no CUDA GPU; use device='auto' or 'cpu'")
    return device


# ----------------------------------------------------------------------------- checkpoints

def _after_divergence(checkpoint, rate: float, clip: float) -> str:
    """What to do after a divergence, naming a checkpoint only where one exists."""
    advice = f"a lower learning rate (now {rate:.3g}, --lr) or a smaller clip (now {clip:g}, --clip)"
    if checkpoint is not None and Path(checkpoint).exists():
        step = load_checkpoint(checkpoint)["step"]
        return f"The last good checkpoint, {checkpoint} (step {step:,}), is kept: resume from it with {advice}."
    return f"No checkpoint was written before it; train again with {advice}."


def check_writable(path) -> Path:
    """Fail now, not after an hour of training, when ``path``'s folder cannot take a file."""
    try:
        return _files.check_writable(path, "choose a writable folder (--checkpoint PATH)")
    except _files.WriteError as err:
        raise CheckpointError(str(err)) from None


def save_checkpoint(path, *, model: DRAW, optimizer=None, step: int = 0, generator=None,
                    history: Optional[list[dict]] = None, train_args: Optional[dict] = None,
                    weights_dtype: Optional[torch.dtype] = None) -> Path:
    """Write atomically: a temporary file beside the target, fsync, then rename over it.

    A process killed at any moment leaves either the previous checkpoint or the new one.
    weights_dtype: store floating-point weights in this dtype (torch.float16 halves a shipped
    file); loading copies them into the float32 model.
    """
    path = Path(path)
    state = {
        "format": FORMAT, "version": VERSION,
        "config": model.config.to_dict(),
        "model": {k: v.detach().cpu().to(weights_dtype) if weights_dtype is not None and v.is_floating_point()
                  else v.detach().cpu() for k, v in model.state_dict().items()},
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
            f"'*.tmp<pid>' are partial writes and the file without that suffix is the last complete one.") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a drawviz checkpoint (no format={FORMAT!r} entry)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer drawviz (checkpoint version {state['version']}, "
                              f"this one reads up to {VERSION}); upgrade drawviz")
    missing = [k for k in ("config", "model", "step") if k not in state]
    if missing:
        raise CheckpointError(f"{path} is a drawviz checkpoint without {', '.join(missing)}: it cannot be used")
    if isinstance(state["step"], bool) or not isinstance(state["step"], int) or state["step"] < 0:
        raise CheckpointError(f"{path} holds step {state['step']!r}; a checkpoint's step is a count of optimiser steps")
    try:
        state["config"] = DrawConfig.from_dict(state["config"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path} holds an unusable config: {err}") from None
    return state


def _load_weights(model: DRAW, state: dict, path) -> None:
    if state["config"] != model.config:
        changes = ", ".join(f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in state["config"].diff(model.config).items())
        raise CheckpointError(f"checkpoint {path} was trained with a different config ({changes}). "
                              f"Build the model from the checkpoint instead: drawviz.train.model_from_checkpoint(path)")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not fit the model: {str(err)[:300]}") from None


def export_checkpoint(src, dst, *, keep_every: int = 50, half: bool = False) -> Path:
    """A checkpoint to ship: weights, config, RNG state and a thinned history, no optimiser state.

    Keeps every ``keep_every``-th history row and every row with a test bound. Resuming from it
    continues training with a fresh Adam state. half: store the weights as float16 (half the
    size; the model loads as float32 with weights rounded to 11 significant bits).
    """
    keep_every = positive_int(keep_every, "keep_every", "keep every N-th history row")
    if Path(dst).resolve() == Path(src).resolve():
        raise CheckpointError(f"export would replace {src} itself, and with it the optimiser state and the full "
                              f"history that training resumes from: give another output file")
    state = load_checkpoint(src)
    check_writable(dst)
    model = _model_from_state(state, src)
    broken = [name for name, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise CheckpointError(f"{src} holds NaN or infinite weights ({', '.join(broken[:5])}): a model that cannot "
                              f"draw; export an earlier checkpoint")
    if half:
        limit = torch.finfo(torch.float16).max
        large = [f"{name} (|w| up to {v.abs().max().item():.3g})" for name, v in model.state_dict().items()
                 if v.is_floating_point() and v.abs().max().item() > limit]
        if large:
            raise CheckpointError(f"--half would store {', '.join(large[:5])} as infinity: float16 holds at most "
                                  f"{limit:g}; export without --half")
    history = [row for row in state["history"]
               if row["step"] % keep_every == 0 or math.isfinite(row.get("test_nll_bound", math.nan))]
    generator = torch.Generator().manual_seed(0)
    if state["rng"] is not None and state["rng_device"] == "cpu":
        generator.set_state(state["rng"])
    return save_checkpoint(dst, model=model, step=state["step"], generator=generator, history=history,
                           train_args=state["train_args"], weights_dtype=torch.float16 if half else None)


def _model_from_state(state: dict, path) -> DRAW:
    model = DRAW(state["config"])
    _load_weights(model, state, path)
    return model


def training_summary(state: dict, path=None) -> dict:
    """What a checkpoint says about its training: data, steps, epochs, minutes, hardware, model file.

    For a figure's caption and a report's index (``state`` from load_checkpoint). Older
    checkpoints lack ``train_images``; it is then recovered from the last epoch count.
    """
    args, history = state.get("train_args", {}), state.get("history") or []
    last = history[-1] if history else {}
    images = args.get("train_images")
    batch = args.get("batch_size") or 64
    if images is None and last.get("epoch"):
        images = int(round(last["step"] * batch / last["epoch"], -2))  # to the nearest hundred
    tests = [row for row in history if row.get("test_nll_bound") is not None
             and math.isfinite(row.get("test_nll_bound") or math.nan)]
    total = totals(state)
    return {"trained_on": args.get("dataset"), "train_images": images, "train_source": args.get("train_source"),
            "legs": total["legs"], "cpu_hours": total["cpu_hours"], "gpu_hours": total["gpu_hours"],
            "steps": state.get("step"), "epochs": last.get("epoch"),
            "minutes": last["seconds"] / 60 if last.get("seconds") is not None else None,
            "hardware": args.get("hardware"), "recipe": (args.get("recipe") or {}),
            "last_test_bound": tests[-1]["test_nll_bound"] if tests else None,
            "model_file": str(path) if path is not None else None}


def model_from_checkpoint(path, device="auto", *, state: Optional[dict] = None) -> DRAW:
    """The DRAW network stored in a checkpoint, built from the config that travels with it.

    state: the checkpoint as load_checkpoint(path) already returned it (not read again)."""
    state = load_checkpoint(path) if state is None else state
    return _model_from_state(state, path).to(pick_device(device)).eval()


# ----------------------------------------------------------------------------- evaluation

def _as_images(images) -> torch.Tensor:
    return images.images if isinstance(images, _data.ImageSet) else images


@torch.no_grad()
def evaluate(model: DRAW, images: torch.Tensor | _data.ImageSet, *, batch_size: int = 500, seed: int = 0,
             binarize: bool = False, progress: bool = False) -> dict:
    """The test negative ELBO, an upper bound on −log p(x), in nats per image (and bits/dim).

    binarize=True binarises the images first with a fixed seed (the static benchmark set).
    The noise ε is drawn from ``seed`` too, so the figure is reproducible.
    """
    batch_size = positive_int(batch_size, "batch_size", "a number of images per pass")
    images = _as_images(images)
    check_images(images, model.config)
    if binarize:
        images = _data.binarize(images, seed=seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    g = torch.Generator(device).manual_seed(seed)
    totals = torch.zeros(3, dtype=torch.float64)
    chunks = range(0, images.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="evaluate", unit="batch", leave=False)
    for i in chunks:
        x = images[i:i + batch_size].to(device)
        out = model(x, generator=g, check=False)
        totals += torch.stack([(out.nll + out.kl.sum(0)).sum(), out.nll.sum(), out.kl.sum()]).double().cpu()
    model.train(was_training)
    n = images.shape[0]
    bound, nll, kl = (totals / n).tolist()
    if not math.isfinite(bound):
        raise TrainingDiverged(f"the test bound is {bound} (reconstruction {nll}, KL {kl}): the model's outputs are "
                               "not finite (NaN or inf weights?); evaluate an earlier checkpoint")
    return {"nll_bound": bound, "bits_per_dim": bits_per_dim(bound, model.config), "recon_nll": nll,
            "kl": kl, "images": n}


# ----------------------------------------------------------------------------- the recipe

@dataclass(frozen=True)
class Recipe:
    """How DRAW is optimised (the paper leaves it open): Adam, gradient-norm clipping and a
    learning-rate schedule, as one frozen value that travels in every checkpoint.

    The rate is ``lr`` times a linear warm-up over the first ``warmup`` steps times ``decay``
    ("constant", "cosine" or "linear"), which falls to ``final`` · lr at the end of the horizon. The horizon
    is the step budget, or the time budget when training is given ``minutes`` (so a wall-clock run
    anneals exactly when its time is up).
    """

    lr: float = 1e-3  # peak learning rate
    warmup: int = 0  # steps of linear warm-up
    decay: str = "constant"
    final: float = 0.0  # rate at the end of the horizon, as a fraction of lr (cosine, linear)
    batch_size: int = 64
    clip: float = 10.0  # gradient-norm clip
    beta1: float = 0.9
    beta2: float = 0.999
    adam_eps: float = 1e-8

    def __post_init__(self):
        if self.decay not in ("constant", "cosine", "linear"):
            raise ValueError(f"Recipe.decay must be 'constant', 'cosine' or 'linear', got {self.decay!r}")
        for name in ("lr", "clip", "adam_eps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"Recipe.{name} must be a positive number, got {value!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"Recipe.batch_size must be a positive integer, got {self.batch_size!r}")
        if not (isinstance(self.warmup, int) and self.warmup >= 0):
            raise ValueError(f"Recipe.warmup must be a non-negative integer (steps), got {self.warmup!r}")
        if not 0 <= self.final <= 1:
            raise ValueError(f"Recipe.final is a fraction of lr in [0, 1], got {self.final!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"Recipe.{name} must lie in [0, 1), got {getattr(self, name)!r}")

    def rate(self, step: int, progress: float) -> float:
        """The learning rate for optimiser step ``step`` (0-based), ``progress`` ∈ [0, 1] of the horizon."""
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        p = min(max(progress, 0.0), 1.0)
        if self.decay == "constant":
            return self.lr * warm
        shape = 0.5 * (1 + math.cos(math.pi * p)) if self.decay == "cosine" else 1 - p
        return self.lr * warm * (self.final + (1 - self.final) * shape)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        return from_fields(cls, data)

    @classmethod
    def named(cls, name: "str | Recipe", **overrides) -> "Recipe":
        """A recipe from RECIPES by name (or a Recipe as is), with field overrides (None = keep)."""
        base = name if isinstance(name, Recipe) else RECIPES.get(name)
        if base is None:
            raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
        return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


RECIPES: dict[str, Recipe] = {
    # Adam 1e-3 throughout (as the public ports), clip 10, batch 64. Measured with
    # benchmarks/time_to_quality.py (models/README.md): for budgets of an hour on a CPU (~5 epochs)
    # it beats "anneal" by far; DRAW is then far from convergence and needs the full rate.
    "constant": Recipe(),
    # the same Adam, a short warm-up, then a cosine anneal to 5% of the rate by the end of the step
    # or time budget: the shipped models' recipe (mnist.pt with its budget extended to 110 minutes)
    "anneal": Recipe(lr=1e-3, warmup=100, decay="cosine", final=0.05),
}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, as one frozen value saved in its checkpoints
    (``train_args["config"]``). The defaults live here only: train(), the CLI and train.ipynb start
    from them.

    The run stops at ``steps`` optimiser steps in total or after ``minutes`` of training time
    (evaluations and checkpoints not counted), whichever comes first; the recipe anneals over the
    time budget when one is given, else over the steps.
    """

    steps: Optional[int] = 1000
    minutes: Optional[float] = None
    recipe: Recipe = RECIPES["constant"]
    seed: int = 0  # model initialisation (from a config), data order, binarisation, ε
    # "dynamic" (a fresh Bernoulli draw of each batch; the usual MNIST training), "static"
    # (binarised once with the seed) or None (intensities, for colour)
    binarize: Optional[str] = "dynamic"
    checkpoint_every: int = 500  # steps between checkpoints (also written at the end and on Ctrl-C)
    eval_every: Optional[int] = None  # steps between test NLL bounds (also at the end)
    eval_every_minutes: Optional[float] = None  # minutes of training between test NLL bounds
    eval_batch_size: int = 500
    # steps of linear warm-up after resuming without optimiser state (a shipped model): a fresh
    # Adam's first steps are as large as lr itself in every weight
    rewarm: int = 100
    # the last minutes of the time budget: the rate falls linearly to recipe.final · lr (a constant rate
    # that ends each leg of a long campaign annealed; a function of the clock only, so resuming is exact)
    cooldown_minutes: Optional[float] = None
    fast: bool = False  # drawviz.fast: the same numbers, several times faster
    bf16: bool = False  # the fast path's GEMMs in bfloat16 (implies fast; see make_fast)
    # provenance: what the images are (resuming warns when it changes); data_root only when the user gave one
    dataset: Optional[str] = None
    data_root: Optional[str] = None
    limit: Optional[int] = None
    test_limit: Optional[int] = None

    def __post_init__(self):
        if self.binarize not in ("dynamic", "static", None):
            raise ValueError(f"binarize must be 'dynamic', 'static' or None, got {self.binarize!r}")
        if self.steps is None and self.minutes is None:
            raise ValueError("give a step budget (steps=...), a time budget (minutes=...) or both")
        if self.steps is not None:
            object.__setattr__(self, "steps", count(self.steps, "steps", minimum=0, what="optimiser steps in all"))
        if self.minutes is not None and not (isinstance(self.minutes, (int, float)) and math.isfinite(self.minutes)
                                             and self.minutes > 0):
            raise ValueError(f"minutes must be a positive number, got {self.minutes!r}")
        object.__setattr__(self, "rewarm", count(self.rewarm, "rewarm", minimum=0, what="steps of warm-up"))
        if self.cooldown_minutes is not None:
            if self.minutes is None:
                raise ValueError("cooldown_minutes is the end of a time budget: give minutes too")
            if not (isinstance(self.cooldown_minutes, (int, float)) and 0 < self.cooldown_minutes <= self.minutes):
                raise ValueError(f"cooldown_minutes must be in (0, minutes = {self.minutes}], got "
                                 f"{self.cooldown_minutes!r}")
        if not isinstance(self.recipe, Recipe):
            raise ValueError(f"recipe must be a Recipe (Recipe.named(name) gives one), got {self.recipe!r}")

    def replace(self, **changes) -> "TrainConfig":
        """A copy with fields changed (None is a value here: steps=None is a time budget only, binarize=None
        no binarisation). recipe may be a name, and the recipe's own fields (lr, batch_size, clip, warmup,
        decay, final, ...) are accepted too; for those and for recipe, None keeps the current one."""
        own = {f.name for f in dataclasses.fields(self)}
        recipe_fields = {f.name for f in dataclasses.fields(Recipe)}
        unknown = set(changes) - own - recipe_fields
        if unknown:
            raise TypeError(f"unknown training settings {sorted(unknown)}; TrainConfig has {sorted(own)} and "
                            f"its recipe {sorted(recipe_fields)}")
        recipe = Recipe.named(changes.pop("recipe", None) or self.recipe,
                              **{k: changes.pop(k) for k in list(changes) if k in recipe_fields})
        return dataclasses.replace(self, recipe=recipe, **changes)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "recipe": self.recipe.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        data = dict(data)
        data["recipe"] = Recipe.from_dict(data.get("recipe") or {})
        return from_fields(cls, data)


# ----------------------------------------------------------------------------- training

def _on_stop_signals(callback) -> Callable[[], None]:
    """Call ``callback`` on SIGTERM or SIGINT (Ctrl-C, a notebook's interrupt) while training (main
    thread only), so the loop can finish the step in hand and save once; returns the undo.

    A second Ctrl-C is the user insisting: it raises KeyboardInterrupt at once (nothing is saved
    then, so no half-applied step is ever written; the last checkpoint stays).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    pressed = []

    def on_sigint(signum, frame):
        if pressed:
            raise KeyboardInterrupt("interrupted twice: stopped at once; the last checkpoint is kept")
        pressed.append(True)
        callback()

    signal.signal(signal.SIGTERM, lambda signum, frame: callback())
    signal.signal(signal.SIGINT, on_sigint)
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


class _Stop(Exception):
    """A stop signal arrived: the loop finished its step; save and stop."""


@dataclass
class TrainResult:
    model: DRAW
    history: pd.DataFrame  # one row per step; test_nll_bound where evaluated
    checkpoint: Optional[Path]
    step: int

    @property
    def final_nll_bound(self) -> float:
        evaluated = self.history["test_nll_bound"].dropna()
        return float(evaluated.iloc[-1]) if len(evaluated) else math.nan


def train(model_or_config: DRAW | DrawConfig, train_images, test_images=None, settings: Optional[TrainConfig] = None,
          *, device="auto", checkpoint=None, resume: bool = True, progress: bool = True,
          callbacks: Iterable[Callable[[dict], None]] = (), train_args: Optional[dict] = None,
          **changes) -> TrainResult:
    """Train DRAW with Adam as ``settings`` (a :class:`TrainConfig`) says, changed by ``changes``: any
    TrainConfig field (steps, minutes, recipe, seed, binarize, eval_every, fast, bf16, ...) or recipe
    field (lr, batch_size, clip, ...), e.g. ``train(config, images, steps=2000, recipe="anneal")``.

    checkpoint: a path; written every ``checkpoint_every`` steps, at the end, and on Ctrl-C.
      With ``resume`` and an existing file, training continues from it exactly (settings that differ
      from the checkpoint's are applied from the resumed step, with a warning).
    Test NLL bounds (statically binarised when binarize is set) every ``eval_every`` steps or
    ``eval_every_minutes``, and at the end when test images are given.
    fast: train through :func:`drawviz.fast.make_fast` (same numbers, same parameters and
      checkpoints; fused GEMMs and a hand-written backward pass).
    bf16: the fast path with its GEMMs in bfloat16 (implies fast; fp32 parameters and states; faster
      only where the hardware multiplies bfloat16 natively: measure with benchmarks/bench.py; loss
      within ~0.1%).
    train_args: provenance to record (dataset, data_root, limit, test_limit), as the notebooks give it.
    """
    if checkpoint is None or not _distributed.current().main:
        return _train(model_or_config, train_images, test_images, settings, device=device, checkpoint=checkpoint,
                      resume=resume, progress=progress, callbacks=callbacks, train_args=train_args, **changes)
    checkpoint = check_writable(checkpoint)  # before the lock beside it is made
    try:
        lock = _files.exclusive(checkpoint, "training")
        lock.__enter__()
    except _files.InUse as err:  # two runs on one file would resume and overwrite each other's steps
        raise CheckpointError(str(err)) from None
    try:
        return _train(model_or_config, train_images, test_images, settings, device=device, checkpoint=checkpoint,
                      resume=resume, progress=progress, callbacks=callbacks, train_args=train_args, **changes)
    finally:
        lock.__exit__(None, None, None)


def _train(model_or_config, train_images, test_images, settings, *, device, checkpoint, resume, progress,
           callbacks, train_args, **changes) -> TrainResult:
    provenance = {k: v for k, v in (train_args or {}).items() if k in ("dataset", "data_root", "limit", "test_limit")}
    settings = (settings or TrainConfig()).replace(**provenance, **changes)
    recipe, steps, minutes, seed, binarize = (settings.recipe, settings.steps, settings.minutes, settings.seed,
                                              settings.binarize)
    batch_size, clip = recipe.batch_size, recipe.clip
    fast, bf16 = settings.fast, settings.bf16
    checkpoint_every, eval_every = settings.checkpoint_every, settings.eval_every
    eval_every_minutes, eval_batch_size = settings.eval_every_minutes, settings.eval_batch_size
    ranks = _distributed.current()  # under torchrun: this process's share of every global batch
    shard = ranks.shard(batch_size) if ranks.world > 1 else None
    dev = pick_device(device)
    if isinstance(model_or_config, DRAW):
        model = model_or_config
    else:  # initialise from the seed too, so train(config, seed=s) is reproducible end to end
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DRAW(model_or_config)
    model.to(dev).train()
    if ranks.world > 1:  # a rank started with another --seed or --T would train its own model: refuse at once
        agreed = json.dumps({"config": model.config.to_dict(), "settings": settings.to_dict()}, sort_keys=True, default=str)
        if not ranks.same(agreed):
            raise ValueError(f"the {ranks.world} training processes were started with different settings or configs "
                             f"(e.g. --seed, --T, --lr); start every rank with the same command")
    train_x = _as_images(train_images)
    check_images(train_x, model.config)
    test_x = _as_images(test_images) if test_images is not None else None
    if test_x is not None:
        check_images(test_x, model.config)
    if train_x.shape[0] < batch_size:
        raise ValueError(f"batch_size {batch_size} is larger than the training set ({train_x.shape[0]} images)")
    if binarize == "static":
        train_x = _data.binarize(train_x, seed=seed)
    train_x = train_x.to(dev)

    net = model
    if fast or bf16:
        from .fast import make_fast
        net = make_fast(model, bf16=bf16)  # shares model's parameters: optimiser and checkpoints see no difference
    if ranks.world > 1:  # gradients averaged over the ranks in backward: every rank applies the same step
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.rate(0, 0.0), betas=(recipe.beta1, recipe.beta2),
                                 eps=recipe.adam_eps)
    generator = torch.Generator(dev).manual_seed(seed)
    history: list[dict] = []
    start, legs, fresh_adam = 0, [], True
    if checkpoint is not None:  # only rank 0 writes
        checkpoint = check_writable(checkpoint) if ranks.main else Path(checkpoint)
    # what a checkpoint says of its training: the settings, and (flat, as older checkpoints and their
    # readers have them) batch_size, lr, clip, seed, dataset, ..., plus the run's facts
    args = {**settings.to_dict(), "batch_size": batch_size, "lr": recipe.lr, "clip": clip,
            "fast": bool(fast or bf16), "config": settings.to_dict(), "hardware": describe_hardware(dev),
            "processes": ranks.world,
            "train_images": int(train_x.shape[0]), "train_source": _data.portable(getattr(train_images, "source", None)),
            **{k: v for k, v in (train_args or {}).items() if k not in provenance}}
    if checkpoint is not None and resume and checkpoint.exists():
        state = load_checkpoint(checkpoint, map_location=dev)
        _load_weights(model, state, checkpoint)
        if state["optimizer"] is not None:
            fresh_adam = False
            optimizer.load_state_dict(state["optimizer"])
            for group in optimizer.param_groups:  # the recipe in hand sets the betas, not the saved one
                group["betas"], group["eps"] = (recipe.beta1, recipe.beta2), recipe.adam_eps
        if state["rng"] is not None and state["rng_device"] == str(generator.device):
            generator.set_state(state["rng"].cpu())
        start, history, legs = state["step"], list(state["history"]), legs_of(state)
        before = state.get("train_args", {})
        for key, now in (("seed", seed), ("dataset", settings.dataset)):
            if before.get(key) is not None and now is not None and before[key] != now:
                warnings.warn(f"resuming {checkpoint} with {key} {now!r} (it was trained with {before[key]!r}); "
                              f"applied from step {start}" + (": the data order changes from here" if key == "seed"
                                                               else ": the model now trains on other data"),
                              stacklevel=3)
        for key in ("dataset", "train_source"):  # a resume that does not name its data keeps the checkpoint's
            if args.get(key) is None and before.get(key) is not None:
                args[key] = before[key]
        saved = before.get("recipe")
        if saved is not None and saved != recipe.to_dict():
            changed = {k: (v, recipe.to_dict()[k]) for k, v in saved.items() if recipe.to_dict().get(k) != v}
            warnings.warn(f"resuming {checkpoint} with another recipe; applied from step {start}: "
                          + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()), stacklevel=3)

    budget = minutes * 60 if minutes is not None else math.inf
    per_epoch = train_x.shape[0] // batch_size
    seconds = history[-1]["seconds"] if history else 0.0  # the clock counts training only
    # epochs add up over legs of any batch size: this leg's steps count in its own batches
    offset = (history[-1]["epoch"] - start / per_epoch) if history and start else 0.0
    offset = 0.0 if abs(offset) < 1e-9 else offset
    start_epoch = start / per_epoch + offset
    hardware = args["hardware"]
    leg = {"start_step": start, "end_step": start, "start_epoch": start_epoch, "end_epoch": start_epoch,
           "start_seconds": seconds, "end_seconds": seconds, "recipe": recipe.to_dict(), "batch_size": batch_size,
           "device": hardware["device"], "machine": hardware["name"], "threads": hardware.get("threads"),
           "processes": ranks.world, "fresh_optimizer": fresh_adam,
           "cooldown_minutes": settings.cooldown_minutes, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    rewarm = settings.rewarm if fresh_adam and start > 0 else 0
    cooldown = settings.cooldown_minutes * 60 if settings.cooldown_minutes else 0.0

    def save(step):
        if history and history[-1]["step"] == step > start:  # this leg added steps: record it
            leg.update(end_step=step, end_epoch=history[-1]["epoch"], end_seconds=history[-1]["seconds"])
            args["legs"] = legs + [leg]
        else:
            args["legs"] = legs
        if checkpoint is not None and ranks.main:
            save_checkpoint(checkpoint, model=model, optimizer=optimizer, step=step, generator=generator,
                            history=history, train_args=args)

    def test_bound():
        # evaluate restores train mode itself
        return evaluate(model, test_x, batch_size=eval_batch_size, seed=seed,
                        binarize=binarize is not None)["nll_bound"]

    order_epoch, order = None, None
    bar = None
    if progress and ranks.main:
        from tqdm.auto import tqdm
        if minutes is None:
            bar = tqdm(total=steps, initial=start, desc="train DRAW", unit="step", dynamic_ncols=True)
        else:
            bar = tqdm(total=round(budget), desc=f"train DRAW ({minutes:g} min)", unit="s", dynamic_ncols=True,
                       bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]")
    if bar is not None and minutes is not None:
        bar.update(min(seconds, budget))
    next_eval = (math.floor(seconds / (eval_every_minutes * 60)) + 1) * eval_every_minutes * 60 \
        if eval_every_minutes else math.inf
    step = start
    terminated = []
    stop_agreed = False  # several processes: a stop any of them was told of, agreed after each step
    told_to_stop = (lambda: bool(terminated)) if ranks.world == 1 else (lambda: stop_agreed)
    in_step = False
    restore = _on_stop_signals(lambda: terminated.append(True))
    try:
        while (steps is None or step < steps) and seconds < budget:
            if told_to_stop():  # Ctrl-C or SIGTERM: the step in hand is finished; the RNG is at `step` exactly
                raise _Stop()
            in_step = True  # from here until its row is recorded, weights, RNG and `step` disagree
            epoch, pos = divmod(step, per_epoch)
            if epoch != order_epoch:
                order_epoch, order = epoch, _data.batches(train_x, batch_size, seed=seed, epoch=epoch)
            tick = time.perf_counter()
            rate = recipe.rate(step, seconds / budget if minutes is not None else step / max(steps, 1))
            if rewarm:  # a fresh Adam on trained weights: warm up again
                rate *= min(1.0, (step - start + 1) / rewarm)
            if cooldown:
                left = min(max((budget - seconds) / cooldown, 0.0), 1.0)
                rate *= recipe.final + (1 - recipe.final) * left
            for group in optimizer.param_groups:
                group["lr"] = rate
            x = train_x[order[pos].to(dev)]
            if binarize == "dynamic":
                x = _data.binarize(x, generator=generator)
            eps = model.sample_eps(batch_size, generator)
            if shard is not None:  # the whole batch's randomness is drawn on every rank: each keeps its rows
                x, eps = x[shard], eps[:, shard]
            out = net(x, eps, check=False)
            # one device sync for the three figures the history keeps (means over the ranks)
            loss, nll, kl = ranks.mean(torch.stack([out.loss, out.nll.mean(), out.kl.sum(0).mean()]).detach()).tolist()
            if not math.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss} at step {step + 1}; stopped without saving this state. "
                                       + _after_divergence(checkpoint, rate, clip))
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip).item()
            if not math.isfinite(grad_norm):
                raise TrainingDiverged(f"gradient norm became {grad_norm} at step {step + 1}; stopped before "
                                       "applying it. " + _after_divergence(checkpoint, rate, clip))
            optimizer.step()
            step += 1
            took = time.perf_counter() - tick
            seconds += took
            if ranks.world > 1:  # the slowest rank's clock, so all stop at the same step
                seconds, stop_agreed = ranks.agree(seconds, bool(terminated))
            row = {"step": step, "epoch": step / per_epoch + offset, "loss": loss, "nll": nll, "kl": kl, "grad_norm": grad_norm,
                   "lr": rate, "seconds": seconds, "images_per_s": batch_size / max(took, 1e-9),
                   "test_nll_bound": math.nan}
            last = step == steps or seconds >= budget
            if test_x is not None and ((eval_every and step % eval_every == 0) or seconds >= next_eval or last):
                if ranks.main:  # the others go on to the next step and wait for rank 0 there
                    row["test_nll_bound"] = test_bound()
                while next_eval <= seconds:
                    next_eval += eval_every_minutes * 60
            history.append(row)
            in_step = False
            if checkpoint_every and step % checkpoint_every == 0 and not last:
                save(step)
            if bar is not None:
                bar.update(1 if minutes is None else min(took, max(budget - bar.n, 0)))
                bar.set_postfix(loss=f"{loss:.2f}", **({"test": f"{row['test_nll_bound']:.2f}"}
                                                       if math.isfinite(row["test_nll_bound"]) else {}))
            for callback in callbacks if ranks.main else ():
                callback(row)
        if told_to_stop() or terminated:  # a signal during the last step
            raise _Stop()
        save(step)
    except _Stop:
        save(step)  # nothing lost on Ctrl-C: every completed step is on disk, and no partial one
        raise KeyboardInterrupt(f"stopped after step {step} (checkpoint {checkpoint or 'not configured'})") from None
    except KeyboardInterrupt:  # raised by other code (a callback, a second Ctrl-C): save only between steps
        if not in_step:
            save(step)
        raise
    finally:
        restore()
        if bar is not None:
            bar.close()
    frame = pd.DataFrame(history, columns=["step", "epoch", "loss", "nll", "kl", "grad_norm", "lr", "seconds",
                                           "images_per_s", "test_nll_bound"])
    return TrainResult(model.eval(), frame, checkpoint, step)
