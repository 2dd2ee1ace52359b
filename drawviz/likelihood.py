"""D(x | c_T): the distribution the final canvas defines over an image (eq. 9).

- ``bernoulli`` (the paper's): each pixel ~ Bernoulli(σ(c_T)).  A likelihood of binary images
  (binarised MNIST); on grey or colour intensities it is a cross-entropy, not a density of the
  8-bit data, and its "bits/dim" cannot be compared with published figures.
- ``logistic``: each 8-bit subpixel value k ∈ {0, …, 255} is discretised from a logistic on the
  logit scale: logit(x) ~ Logistic(c_T, s) with a learned scale s per subpixel, and value k takes
  the mass between the logits of its bin edges (k ± ½) / 255 (so the two end bins take the tails).
  A proper probability mass on the 8-bit values, whose bits/dim compare with published numbers on
  CIFAR-10; its median is σ(c_T), the canvas as drawviz shows it.  On the logit scale, unlike a
  logistic with mean σ(c_T) on the intensity scale (PixelCNN++'s, Salimans et al. 2017), the
  gradient for a saturated canvas logit does not vanish: a canvas painted far too bright or dark
  is pulled back as a Bernoulli's logits are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "Likelihood",
    "LIKELIHOODS",
    "register",
    "describe",
    "nll",
    "bernoulli_nll",
    "logistic_nll",
    "log_bin_mass",
    "logistic_probs",
    "INITIAL_LOG_SCALE",
]

_FAR = 1e4
INITIAL_LOG_SCALE = math.log(0.5)  # logit units: ±0.5 is about ±0.12 in intensity around 0.5


def bernoulli_nll(canvas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log D(x | c_T) for D = Bernoulli(σ(c_T)), per image (batch,); eq. 9 in logits form."""
    return F.binary_cross_entropy_with_logits(canvas, x, reduction="none").flatten(1).sum(1)


def _edges(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of the bin edges (k − ½)/255 and (k + ½)/255 of k = round(255 x).

    The outer edges of the end bins, logit(0) and logit(1), are ∓inf; they are held at ∓1e4 (far
    beyond any canvas logit), which keeps every gradient finite (0 · inf would be NaN).
    """
    k = torch.round(x * 255)
    lower = torch.logit((k - 0.5).clamp_min(0) / 255).clamp_min(-_FAR)
    upper = torch.logit((k + 0.5).clamp_max(255) / 255).clamp_max(_FAR)
    return lower, upper


def log_bin_mass(canvas: torch.Tensor, x: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(k) per subpixel for k = round(255 x): F(u) − F(l) for the logistic CDF F (same shape as x).

    u, l = (logit of the upper / lower edge − c_T) / s.  Stable everywhere as
    log σ(u) + log σ(−l) + log(1 − exp(l − u)), since σ(u) − σ(l) = σ(u) σ(−l) (1 − e^(l−u)); at the
    end bins l or u is far out and the terms reduce to log σ(u) or log σ(−l).
    """
    lower, upper = _edges(x)
    inv_s = torch.exp(-log_scale)
    u = (upper - canvas) * inv_s
    l = (lower - canvas) * inv_s
    width = (upper - lower) * inv_s  # the bin's width in units of s
    return F.logsigmoid(u) + F.logsigmoid(-l) + torch.log(-torch.expm1(-width))


def logistic_nll(canvas: torch.Tensor, x: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """−log D(x | c_T) for the discretised logistic, in nats per image (batch,).

    canvas, x: (batch, C, H, W); log_scale broadcasts against them (the model's is (C, H, W)).
    """
    return -log_bin_mass(canvas, x, log_scale).flatten(1).sum(1)


def logistic_probs(canvas: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """P(k) for every 8-bit value k: (..., 256) for canvas logits of shape (...); sums to 1 (telescoping)."""
    k = torch.arange(256, dtype=canvas.dtype, device=canvas.device) / 255
    shape = canvas.shape
    canvas, log_scale = torch.broadcast_tensors(canvas, log_scale.expand(shape))
    return log_bin_mass(
        canvas.unsqueeze(-1).expand(*shape, 256), k.expand(*shape, 256), log_scale.unsqueeze(-1).expand(*shape, 256)
    ).exp()


@dataclass(frozen=True)
class Likelihood:
    """D(x | c_T) as one declaration: its name, its NLL, the parameters the model learns for it, and what
    its figures are worth. ``register`` it and DrawConfig(likelihood=name), the CLI and the cards know it.

    nll(canvas, x, **parameters) -> (batch,) nats; parameters: {attribute name: initial value for a config}
    (each becomes an nn.Parameter of the model under that name); describe(binarized) -> one sentence.
    """

    name: str
    nll: Callable[..., torch.Tensor]
    describe: Callable[[bool], str]
    parameters: Callable[[object], dict] = field(default=lambda config: {})
    help: str = ""
    binary: bool = False  # it models 0/1 pixels: greyscale images are binarised for it (the paper's MNIST)


LIKELIHOODS: dict[str, Likelihood] = {}


def register(likelihood: Likelihood) -> Likelihood:
    """Add a likelihood (or replace one of the same name)."""
    LIKELIHOODS[likelihood.name] = likelihood
    return likelihood


def _bernoulli_note(binarized: bool) -> str:
    if binarized:
        return (
            "likelihood: Bernoulli on binarised pixels (stochastic binarisation with a fixed seed; "
            "comparable with the paper's binarised-MNIST figures up to the binarisation)"
        )
    return (
        "likelihood: Bernoulli on intensities — a cross-entropy, not a likelihood of the 8-bit images: "
        "its nats and bits/dim cannot be compared with published figures"
    )


register(
    Likelihood(
        "bernoulli", lambda canvas, x: bernoulli_nll(canvas, x), _bernoulli_note, help="the paper's; binary images", binary=True
    )
)
register(
    Likelihood(
        "logistic",
        lambda canvas, x, log_scale: logistic_nll(canvas, x, log_scale),
        lambda binarized: (
            "likelihood: discretised logistic on the 8-bit values (logit scale, median σ(c_T); a proper "
            "probability mass, so bits/dim compare with published figures)"
        ),
        parameters=lambda config: {"log_scale": torch.full(config.image_shape, INITIAL_LOG_SCALE)},
        help="discretised, on 8-bit values: bits/dim comparable with published figures",
    )
)


def get(name: str) -> Likelihood:
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[name]


def nll(likelihood: str, canvas: torch.Tensor, x: torch.Tensor, **parameters) -> torch.Tensor:
    """−log D(x | c_T) per image for the named likelihood (a DrawConfig.likelihood), with its parameters."""
    return get(likelihood).nll(canvas, x, **parameters)


def describe(likelihood: str, binarized: bool) -> str:
    """One sentence that names the likelihood behind an NLL or bits/dim figure, and what it is worth."""
    return get(likelihood).describe(binarized)
