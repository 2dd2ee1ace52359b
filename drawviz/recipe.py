"""How DRAW is trained, as frozen values that travel in every checkpoint: the optimiser recipe (Adam,
clipping, the learning-rate schedule) and every other setting of a run (TrainConfig)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

from .checks import count
from .model import from_fields

__all__ = ["Recipe", "RECIPES", "TrainConfig"]


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

    @classmethod
    def from_flags(cls, flags) -> "Recipe":
        """The recipe a command line asks for: ``flags.recipe`` by name, changed by whichever of --lr,
        --batch-size, --clip, --warmup, --decay, --final-lr, --beta1, --beta2 were given (flags a parser
        does not have, or left unset, keep the recipe's)."""
        spelled = {"final": "final_lr"}  # --final-lr: "final" alone reads as a boolean on a command line
        return cls.named(
            flags.recipe, **{f.name: getattr(flags, spelled.get(f.name, f.name), None) for f in dataclasses.fields(cls)}
        )


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
    # a scene set's digits placed anew, with new distractors, every epoch after the first (drawviz.scenes.redraw):
    # the same 60,000 digits in ever new clutter, where a fixed set lets the classifier learn its scenes by heart
    fresh_scenes: bool = False
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
        if self.minutes is not None and not (
            isinstance(self.minutes, (int, float)) and math.isfinite(self.minutes) and self.minutes > 0
        ):
            raise ValueError(f"minutes must be a positive number, got {self.minutes!r}")
        object.__setattr__(self, "rewarm", count(self.rewarm, "rewarm", minimum=0, what="steps of warm-up"))
        # intervals: a zero or negative one would evaluate every step, or never let the clock pass it (a hang)
        object.__setattr__(
            self,
            "checkpoint_every",
            count(self.checkpoint_every, "checkpoint_every", minimum=1, what="steps between checkpoints"),
        )
        if self.eval_every is not None:
            object.__setattr__(
                self, "eval_every", count(self.eval_every, "eval_every", minimum=1, what="steps between test bounds")
            )
        if self.eval_every_minutes is not None and not (
            isinstance(self.eval_every_minutes, (int, float))
            and not isinstance(self.eval_every_minutes, bool)
            and math.isfinite(self.eval_every_minutes)
            and self.eval_every_minutes > 0
        ):
            raise ValueError(
                f"eval_every_minutes must be a positive number of minutes (or None: no timed evaluations), "
                f"got {self.eval_every_minutes!r}"
            )
        if self.cooldown_minutes is not None:
            if self.minutes is None:
                raise ValueError("cooldown_minutes is the end of a time budget: give minutes too")
            if not (isinstance(self.cooldown_minutes, (int, float)) and 0 < self.cooldown_minutes <= self.minutes):
                raise ValueError(f"cooldown_minutes must be in (0, minutes = {self.minutes}], got {self.cooldown_minutes!r}")
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
            raise TypeError(
                f"unknown training settings {sorted(unknown)}; TrainConfig has {sorted(own)} and "
                f"its recipe {sorted(recipe_fields)}"
            )
        recipe = Recipe.named(
            changes.pop("recipe", None) or self.recipe, **{k: changes.pop(k) for k in list(changes) if k in recipe_fields}
        )
        return dataclasses.replace(self, recipe=recipe, **changes)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "recipe": self.recipe.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        data = dict(data)
        data["recipe"] = Recipe.from_dict(data.get("recipe") or {})
        return from_fields(cls, data)
