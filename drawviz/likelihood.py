"""D(x | c_T): the distribution the final canvas defines over an image (eq. 9).

- ``bernoulli`` (the paper's): each pixel ~ Bernoulli(σ(c_T)).  A likelihood of binary images
  (binarised MNIST); on grey or colour intensities it is a cross-entropy, not a density of the
  8-bit data, and its "bits/dim" cannot be compared with published figures.
- ``logistic``: each 8-bit subpixel value k ∈ {0, …, 255} ~ a logistic with mean σ(c_T) and a
  learned per-subpixel scale, discretised to the 256 bins of width 1/255 (the two end bins take
  the tails), as in PixelCNN++ (Salimans et al. 2017).  A proper probability mass on the 8-bit
  values: its bits/dim are comparable with published numbers on CIFAR-10.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["LIKELIHOODS", "describe", "nll", "bernoulli_nll", "logistic_nll", "logistic_probs", "quantise",
           "INITIAL_LOG_SCALE"]

LIKELIHOODS = ("bernoulli", "logistic")
INITIAL_LOG_SCALE = math.log(0.1)  # a wide logistic to start: the first canvases are far off
_HALF_BIN = 0.5 / 255


def quantise(x: torch.Tensor) -> torch.Tensor:
    """Intensities in [0, 1] to the centres of their 8-bit bins, k / 255."""
    return torch.round(x * 255) / 255


def bernoulli_nll(canvas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log D(x | c_T) for D = Bernoulli(σ(c_T)), per image (batch,); eq. 9 in logits form."""
    return F.binary_cross_entropy_with_logits(canvas, x, reduction="none").flatten(1).sum(1)


def _log_bin_mass(canvas: torch.Tensor, x: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(k) per subpixel for k = round(255 x): the logistic's mass on k's bin (same shape as x)."""
    x = quantise(x)
    mean = torch.sigmoid(canvas)
    inv_s = torch.exp(-log_scale)
    upper = (x - mean + _HALF_BIN) * inv_s
    lower = (x - mean - _HALF_BIN) * inv_s
    log_cdf_upper = F.logsigmoid(upper)  # log σ(u): the first bin's mass (−∞, 0.5/255]
    log_sf_lower = F.logsigmoid(-lower)  # log(1 − σ(l)): the last bin's mass [254.5/255, ∞)
    # Interior bins: log(σ(u) − σ(l)), stable as log σ(u) + log(1 − exp(log σ(l) − log σ(u))).
    # Where the bin is far narrower than the logistic's scale, σ(u) − σ(l) underflows; the
    # density at the centre times the bin width is then exact to first order.
    delta = torch.sigmoid(upper) - torch.sigmoid(lower)
    centre = (x - mean) * inv_s
    log_density = centre - log_scale - 2 * F.softplus(centre) + math.log(2 * _HALF_BIN)
    log_interior = torch.where(delta > 1e-5, torch.log(delta.clamp_min(1e-12)), log_density)
    return torch.where(x < _HALF_BIN, log_cdf_upper, torch.where(x > 1 - _HALF_BIN, log_sf_lower, log_interior))


def logistic_nll(canvas: torch.Tensor, x: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """−log D(x | c_T) for the discretised logistic, in nats per image (batch,).

    canvas, x: (batch, C, H, W); log_scale broadcasts against them (the model's is (C, H, W)).
    """
    return -_log_bin_mass(canvas, x, log_scale).flatten(1).sum(1)


def logistic_probs(canvas: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """P(k) for every 8-bit value k: (..., 256) for canvas logits of shape (...); sums to 1."""
    k = torch.arange(256, dtype=canvas.dtype, device=canvas.device) / 255
    shape = canvas.shape
    canvas, log_scale = torch.broadcast_tensors(canvas, log_scale.expand(shape))
    return _log_bin_mass(canvas.unsqueeze(-1).expand(*shape, 256), k.expand(*shape, 256),
                         log_scale.unsqueeze(-1).expand(*shape, 256)).exp()


def nll(likelihood: str, canvas: torch.Tensor, x: torch.Tensor, log_scale=None) -> torch.Tensor:
    """−log D(x | c_T) per image for the named likelihood (a DrawConfig.likelihood)."""
    if likelihood == "bernoulli":
        return bernoulli_nll(canvas, x)
    if likelihood == "logistic":
        return logistic_nll(canvas, x, log_scale)
    raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")


def describe(likelihood: str, binarized: bool) -> str:
    """One sentence that names the likelihood behind an NLL or bits/dim figure, and what it is worth."""
    if likelihood == "logistic":
        return ("likelihood: discretised logistic on the 8-bit values (a proper probability mass; bits/dim "
                "comparable with published figures)")
    if binarized:
        return ("likelihood: Bernoulli on binarised pixels (stochastic binarisation with a fixed seed; "
                "comparable with the paper's binarised-MNIST figures up to the binarisation)")
    return ("likelihood: Bernoulli on intensities — a cross-entropy, not a likelihood of the 8-bit images: "
            "its nats and bits/dim cannot be compared with published figures")
