"""Model kinds: which network a checkpoint holds, and how to rebuild it from its config.

A kind is one declaration (``register(Kind(...))``) plus its module. Checkpoints record their kind's name
(files written before kinds existed read as ``draw``); training, resuming, evaluation, export, cards, the
notebooks and the report rebuild models through :func:`build` and ask :func:`of` what a model is.

What a kind's model provides (the protocol recording, interventions and the training loop use):

- ``config``: a frozen :class:`drawviz.model.ConfigFields` dataclass with ``T`` (steps), ``height``, ``width``,
  ``channels``, ``attention`` and ``read_images``, and ``taps``, the quantities it computes, where not all of
  DRAW's; the kind's presets are its config class's ``presets()``;
- ``forward(x, eps, *, labels=None, generator=None, tap=None, check=True)`` returning ``loss`` (what a training
  step minimises), ``nll`` (batch,) and ``kl`` (T, batch), passing every per-step quantity it computes
  through ``tap(name, t, value)`` (names from :mod:`drawviz.quantities`);
- ``sample_eps(batch, generator)``: the pass's noise (T, batch, z) (empty for a kind without latents);
- ``figures(x, labels, generator)``: per image, what :func:`drawviz.evaluation.evaluate` averages;
- for generators (``Kind.generator``), ``generate(n, generator=, eps=, tap=)`` from the prior, ``nll(canvas, x)``,
  ``reconstruct(x, generator=)`` (the canvases σ(c_t), (T, batch, C, H, W)) and ``c0``, the canvas before step 1;
- a kind that learns from labels (``Kind.labels``) takes them as ``labels=`` in ``forward``, ``figures`` and, for a
  generator, ``generate`` and ``reconstruct``; the ImageSet field they come from is its config's ``labels_from``
  (default ``labels``; a captioned model's are its ``captions``).

What a figure needs that a kind lacks is said in one line by :func:`lacks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import nn

from . import quantities as _quantities
from .classifier import ClassifierConfig, GlimpseClassifier
from .conditional import ConditionalConfig, ConditionalDRAW
from .convvae import ConvVAE, ConvVAEConfig
from .judge import Judge, JudgeConfig
from .model import DRAW, DrawConfig

__all__ = ["Kind", "REGISTRY", "register", "get", "of", "for_config", "build", "preset", "presets", "lacks", "lacks_in"]


@dataclass(frozen=True)
class Kind:
    """A kind of model: its class, its config class and what it does."""

    name: str
    model: type  # an nn.Module built as model(config)
    config: type  # its frozen config class
    generator: bool  # draws images (a canvas, samples from a prior)
    labels: bool = False  # learns from the labels: the training loop and evaluation hand them over
    help: str = ""


REGISTRY: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add a kind (or replace one of the same name)."""
    REGISTRY[kind.name] = kind
    return kind


def get(name: str) -> Kind:
    if name not in REGISTRY:
        raise ValueError(f"unknown model kind {name!r}; drawviz knows {', '.join(REGISTRY)} (drawviz.kinds.register adds one)")
    return REGISTRY[name]


def of(model: nn.Module) -> Kind:
    """The kind of a model: the registered class nearest to the model's own (a subclass is its parent's kind)."""
    for cls in type(model).__mro__:
        for kind in REGISTRY.values():
            if kind.model is cls:
                return kind
    raise ValueError(
        f"{type(model).__name__} is not a registered model kind ({', '.join(REGISTRY)}): register it with drawviz.kinds.register"
    )


def for_config(config) -> Kind:
    """The kind a config builds."""
    for kind in REGISTRY.values():
        if type(config) is kind.config:
            return kind
    raise ValueError(f"{type(config).__name__} is the config of no registered model kind ({', '.join(REGISTRY)})")


def build(config) -> nn.Module:
    """A fresh model of the kind ``config`` belongs to."""
    return for_config(config).model(config)


def presets() -> dict[str, Kind]:
    """Every kind's named presets: {preset name: its kind}."""
    return {name: kind for kind in REGISTRY.values() for name in kind.config.presets()}


def preset(name: str, **overrides):
    """The config a preset names, of whichever kind has it (``cluttered-mnist`` is a classifier's), with
    field overrides (e.g. T=4)."""
    key = name.lower().replace("_", "-")
    known = presets()
    if key not in known:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(known)}")
    return known[key].config.preset(key, **overrides)


def lacks(model: nn.Module, what: str, needs="generator") -> Optional[str]:
    """One line saying why ``what`` (a figure, a measure) cannot be made for this model, or None if it can.

    needs: "generator" (a canvas and samples from a prior), or the quantities (drawviz.quantities) it is made
    of, a name or several: e.g. ``lacks(model, "error images", "x_hat")`` for a convvae model, which has none.
    """
    return lacks_in(of(model), model.config, what, needs)


def lacks_in(kind: Kind, config, what: str, needs="generator") -> Optional[str]:
    """:func:`lacks` for a kind and a config (what a recorded Trace keeps of its model)."""
    if needs == "generator":
        if not kind.generator:
            return f"{what}: a {kind.name} model draws nothing (no canvas, no samples); this needs a generator such as DRAW"
        return None
    names = (needs,) if isinstance(needs, str) else tuple(needs)
    unknown = [name for name in names if name not in _quantities.QUANTITIES]
    if unknown:
        raise ValueError(
            f"{', '.join(map(repr, unknown))} is no quantity; the declared ones: {', '.join(_quantities.QUANTITIES)}"
        )
    modes = (_quantities.RECONSTRUCTION, _quantities.GENERATION)
    computed = [name for name in _quantities.QUANTITIES if any(name in _quantities.available(config, m) for m in modes)]
    missing = [name for name in names if name not in computed]
    if not missing:
        return None
    attention = not config.attention and all(_quantities.QUANTITIES[name].attention_only for name in missing)
    return (
        f"{what}: a {kind.name} model{' without attention' if attention else ''} computes no {', '.join(missing)} "
        f"(it computes {', '.join(computed)})"
    )


# ----------------------------------------------------------------------------- the kinds drawviz knows

register(Kind("draw", DRAW, DrawConfig, generator=True, help="DRAW, the recurrent VAE (section 2-3)"))
register(
    Kind(
        "classifier",
        GlimpseClassifier,
        ClassifierConfig,
        generator=False,
        labels=True,
        help="the read-only DRAW classifier of cluttered MNIST (section 4.1)",
    )
)
register(
    Kind(
        "convvae",
        ConvVAE,
        ConvVAEConfig,
        generator=True,
        help="a plain convolutional VAE, the one-shot generator beside DRAW: the whole image in one step",
    )
)
register(
    Kind(
        "conditional",
        ConditionalDRAW,
        ConditionalConfig,
        generator=True,
        labels=True,
        help="DRAW told what to draw: a class label or a caption, attended word by word (alignDRAW)",
    )
)
register(
    Kind(
        "judge",
        Judge,
        JudgeConfig,
        generator=False,
        labels=True,
        help="a small convolutional classifier that judges which class a drawing shows, digit or garment (used for nothing else)",
    )
)
