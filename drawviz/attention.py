"""Selective attention of DRAW (Gregor et al. 2015, section 3).

An N×N grid of Gaussian filters is placed on the image by five numbers that the
decoder emits each step: the grid centre (g_X, g_Y), the stride δ, the isotropic
variance σ² and an intensity γ.  Reading extracts an N×N glimpse per channel;
writing paints an N×N patch back into image space with the transposed filters.

Conventions (as in the paper): an image is A pixels wide (x, columns) and B high
(y, rows); pixel coordinates run a = 1..A and b = 1..B, and filter indices
i = 1..N, so that a centred grid is symmetric about the image centre.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["Window", "filterbank", "window_from_params", "Read", "Write", "FullRead", "FullWrite"]

# Guards the filter normalisation when a grid sits entirely off the image.
_EPS = 1e-8


class Window(NamedTuple):
    """Attention parameters in pixel space, each of shape (batch,)."""

    g_x: torch.Tensor
    g_y: torch.Tensor
    delta: torch.Tensor
    sigma2: torch.Tensor
    gamma: torch.Tensor

    def map(self, fn) -> "Window":
        """The same fn applied to every field (e.g. detach, stack over time, index a sample)."""
        return Window(*(fn(v) for v in self))

    def at(self, *index) -> "Window":
        """The fields indexed alike: ``w.at(t - 1, sample)`` on a recorded (T, batch) window."""
        return self.map(lambda v: v[index])


def stride_scale(N: int, width: int, height: int) -> float:
    """(max(A,B)−1)/(N−1): the stride δ for δ̃ = 1, i.e. N filters spanning the image (eq. 24).
    For N = 1 the stride is irrelevant (the single filter sits on g), so N−1 := 1 there."""
    return (max(width, height) - 1) / max(N - 1, 1)


def window_from_params(params: torch.Tensor, N: int, width: int, height: int) -> Window:
    """Map the linear layer's output (g̃_X, g̃_Y, log σ², log δ̃, log γ) to pixel space (eq. 21-24).

    params: (batch, 5).  g_X = (A+1)/2·(g̃_X+1), g_Y = (B+1)/2·(g̃_Y+1),
    δ = (max(A,B)−1)/(N−1)·δ̃ (see stride_scale).
    """
    gx_tilde, gy_tilde, log_sigma2, log_delta_tilde, log_gamma = params.unbind(-1)
    g_x = (width + 1) / 2 * (gx_tilde + 1)
    g_y = (height + 1) / 2 * (gy_tilde + 1)
    delta = stride_scale(N, width, height) * torch.exp(log_delta_tilde)
    return Window(g_x, g_y, delta, torch.exp(log_sigma2), torch.exp(log_gamma))


def _filters(g: torch.Tensor, delta: torch.Tensor, sigma2: torch.Tensor, N: int, size: int) -> torch.Tensor:
    """One axis of the filterbank (eq. 19-20, 25-26): (batch, N, size), rows sum to 1."""
    i = torch.arange(1, N + 1, dtype=g.dtype, device=g.device)  # (N,)
    a = torch.arange(1, size + 1, dtype=g.dtype, device=g.device)  # (size,)
    mu = g[:, None] + (i - N / 2 - 0.5) * delta[:, None]  # (batch, N)
    # sigma2 is a variance: it enters the exponent once, as 2σ².
    F = torch.exp(-((a - mu[:, :, None]) ** 2) / (2 * sigma2[:, None, None]))
    return F / F.sum(-1, keepdim=True).clamp_min(_EPS)


def filterbank(g_x, g_y, sigma2, delta, N: int, width: int, height: int):
    """The horizontal and vertical filterbanks F_X and F_Y of eq. 25-26.

    All parameters are pixel-space tensors of shape (batch,).  Returns
    ``(F_x, F_y)`` with shapes (batch, N, width) and (batch, N, height); filter i
    is centred at g + (i − N/2 − 0.5)·δ and each row sums to 1.
    """
    if N < 1:
        raise ValueError(f"the attention grid needs N >= 1 filters per axis, got N={N}")
    return _filters(g_x, delta, sigma2, N, width), _filters(g_y, delta, sigma2, N, height)


class _Attention(nn.Module):
    """Owns the linear layer h_dec -> (g̃_X, g̃_Y, log σ², log δ̃, log γ) (eq. 21)."""

    def __init__(self, dec_size: int, N: int, width: int, height: int):
        super().__init__()
        if N < 1:
            raise ValueError(f"the attention grid needs N >= 1 filters per axis, got N={N}")
        self.N, self.width, self.height = N, width, height
        self.params = nn.Linear(dec_size, 5)
        # The paper leaves the initialisation open. Start with the grid spread over the whole image
        # (g̃ ≈ 0, δ̃ ≈ 1) and each filter as wide as half its stride, so the N×N filters tile the
        # image like a low-resolution copy: the first reads see the digit (not the empty corners a
        # 2×2 grid of σ≈1 filters lands on) and the first writes paint smooth strokes, not dots.
        stride = stride_scale(N, width, height)
        with torch.no_grad():
            self.params.bias[2] = 2 * math.log(max(stride / 2, 0.5))

    def window(self, h_dec: torch.Tensor) -> Window:
        return window_from_params(self.params(h_dec), self.N, self.width, self.height)

    def filters(self, window: Window):
        return filterbank(window.g_x, window.g_y, window.sigma2, window.delta, self.N, self.width, self.height)


class Read(_Attention):
    """read(x, x̂, h_dec) = γ·[F_Y x F_Xᵀ, F_Y x̂ F_Xᵀ] (eq. 27), the same filters on every channel."""

    def output_size(self, channels: int) -> int:
        return 2 * channels * self.N * self.N

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor, h_dec: torch.Tensor):
        """x, x_hat: (batch, C, B, A). Returns (r (batch, 2·C·N·N), window, glimpses (batch, 2, C, N, N))."""
        window = self.window(h_dec)
        glimpse = self.glimpse(x, x_hat, window)
        return glimpse.flatten(1), window, glimpse

    def glimpse(self, x: torch.Tensor, x_hat: torch.Tensor, window: Window) -> torch.Tensor:
        """γ·[F_Y x F_Xᵀ, F_Y x̂ F_Xᵀ] through ``window``: (batch, 2, C, N, N)."""
        return self.look(torch.stack((x, x_hat), 1), window)  # (batch, 2, C, B, A) -> (batch, 2, C, N, N)

    def look(self, images: torch.Tensor, window: Window) -> torch.Tensor:
        """γ·F_Y image F_Xᵀ for each of K images per sample: (batch, K, C, B, A) -> (batch, K, C, N, N).

        DRAW reads the image and the error image (K = 2); the read-only classifier the image alone."""
        F_x, F_y = self.filters(window)
        glimpse = torch.einsum("bnh,bkchw,bmw->bkcnm", F_y, images, F_x)
        return glimpse * window.gamma[:, None, None, None, None]


class Write(_Attention):
    """write(h_dec) = (1/γ̂)·F̂_Yᵀ w_t F̂_X (eq. 28-29), with w_t = W(h_dec) an N×N patch per channel."""

    def __init__(self, dec_size: int, N: int, width: int, height: int, channels: int):
        super().__init__(dec_size, N, width, height)
        self.channels = channels
        self.patch = nn.Linear(dec_size, channels * N * N)

    def forward(self, h_dec: torch.Tensor):
        """Returns (canvas update (batch, C, B, A), window, patch w_t (batch, C, N, N))."""
        window, w = self.window(h_dec), self.patch_from(h_dec)
        return self.paint(w, window), window, w

    def patch_from(self, h_dec: torch.Tensor) -> torch.Tensor:
        """w_t = W(h_dec), eq. 28: (batch, C, N, N)."""
        return self.patch(h_dec).view(-1, self.channels, self.N, self.N)

    def paint(self, w: torch.Tensor, window: Window) -> torch.Tensor:
        """(1/γ)·F_Yᵀ w F_X through ``window``, eq. 29: the canvas update (batch, C, B, A)."""
        F_x, F_y = self.filters(window)
        update = torch.einsum("bnh,bcnm,bmw->bchw", F_y, w, F_x)
        return update / window.gamma[:, None, None, None]


class FullRead(nn.Module):
    """The paper's no-attention read: the whole image and error image, concatenated (eq. 17)."""

    def __init__(self, channels: int, width: int, height: int):
        super().__init__()
        self.size = channels * width * height

    def output_size(self, channels: int) -> int:
        return 2 * self.size

    def forward(self, x, x_hat, h_dec):
        return torch.cat((x.flatten(1), x_hat.flatten(1)), 1), None, None


class FullWrite(nn.Module):
    """The paper's no-attention write: a linear map from h_dec to the whole canvas (eq. 18)."""

    def __init__(self, dec_size: int, channels: int, width: int, height: int):
        super().__init__()
        self.shape = (channels, height, width)
        self.linear = nn.Linear(dec_size, channels * width * height)

    def forward(self, h_dec):
        return self.linear(h_dec).view(-1, *self.shape), None, None
