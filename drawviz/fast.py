"""A fast path for DRAW training and recorded inference, with the same numbers as drawviz.model.

DRAW is T small sequential steps per image; a plain PyTorch loop spends most of its time on
per-op and autograd overhead, not arithmetic.  This module runs the same network (eq. 3-8 of
Gregor et al. 2015, attention of section 3) as one autograd node with a hand-written
backpropagation through time:

* Every matmul that reads h_dec_t is fused into one GEMM: the write parameters and patch at
  step t (eq. 28-29) and, for step t+1, the read parameters (eq. 21), the encoder's h_dec input
  (eq. 5) and the decoder's recurrent input (eq. 7).  Likewise h_enc_t feeds one GEMM for
  Q(z_t | h_enc_t) and the encoder's recurrent input at t+1.  All exact: only the summation
  order of a few sums changes.
* The backward pass computes input gradients step by step, but every weight gradient once,
  as one large GEMM over all T·batch rows (what cuDNN does for RNNs).
* Each time step is one function forward (_step_forward) and one backward (_step_backward);
  torch.compile (make_fast's compile) turns each into one region: the GEMMs stay library calls
  and inductor fuses the pointwise work around them, the tiny filterbank products included
  (_mm), into a few kernels, instead of hundreds of small eager ops per step.
* What outlives a step is written in place into time-first buffers: the backward rows of the
  weight-gradient GEMMs, and the canvases and error images that a recording hands out as they
  are (a full trace costs a few percent of a forward pass).
* Optionally (make_fast(bf16=True)) the GEMMs take bfloat16 operands: about twice the GEMM
  throughput where the hardware has bfloat16 dot products, with states and parameters in fp32.

The parameters are those of the wrapped :class:`~drawviz.model.DRAW`; the state_dict is the
same, so checkpoints are interchangeable.  Gradients flow to the parameters only, not to x or ε.

A scale canvas (DrawConfig.scale_canvas, issue 33's arm) is painted through the same write window as the canvas:
the state carries both as one tensor of 2C channels, [c_t | s_t], and the write paints a patch of 2C channels, so
the write's forward and backward are the canvas's own with twice the channels (as DRAW._write paints them).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from torch import nn

from .attention import _EPS, stride_scale
from . import quantities as Q
from .attention import Window
from .model import DRAW, DrawOutput, check_images
from .quantities import Tap

__all__ = ["FastDRAW", "make_fast"]

# Rows of the attention linears are reordered from (g̃_X, g̃_Y, log σ², log δ̃, log γ) to the
# window order (g_X, g_Y, δ, σ², γ) of drawviz.probes, so one exp/where/scale maps them (eq. 21-24).
_PERM = [0, 1, 3, 2, 4]  # its own inverse


# ---------------------------------------------------------------------------- building blocks


class _Grid(NamedTuple):
    """Constants of one attention grid (plain tensors and ints, so torch.compile guards stay cheap)."""

    N: int
    width: int
    height: int
    offs: torch.Tensor  # filter offsets i − N/2 − 0.5, (N,)
    a: torch.Tensor  # pixel columns 1..A
    b: torch.Tensor  # pixel rows 1..B
    use_exp: torch.Tensor  # window = (where(use_exp, e^p, p) + add) · scale, eq. 21-24,
    add: torch.Tensor  # in (g_X, g_Y, δ, σ², γ) order
    scale: torch.Tensor


def _grid(N: int, width: int, height: int, like: torch.Tensor) -> _Grid:
    kw = dict(dtype=like.dtype, device=like.device)
    return _Grid(
        N,
        width,
        height,
        torch.arange(1, N + 1, **kw) - N / 2 - 0.5,
        torch.arange(1, width + 1, **kw),
        torch.arange(1, height + 1, **kw),
        torch.tensor([False, False, True, True, True], device=like.device),
        torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0], **kw),
        torch.tensor([(width + 1) / 2, (height + 1) / 2, stride_scale(N, width, height), 1.0, 1.0], **kw),
    )


def _window(g: _Grid, p: torch.Tensor) -> torch.Tensor:
    """(batch, 5) linear outputs in window order -> (g_X, g_Y, δ, σ², γ) (batch, 5)."""
    return (torch.where(g.use_exp, p.exp(), p) + g.add) * g.scale


def _window_backward(g: _Grid, dwin: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """dL/dp from dL/dwindow; the γ column of dwin already holds γ·dL/dγ."""
    dp = torch.where(g.use_exp, dwin * win, dwin * g.scale)
    dp[:, 4] = dwin[:, 4]
    return dp


def _filters(g: _Grid, win: torch.Tensor):
    """F_X (batch, N, A), F_Y (batch, N, B) and the 'not clamped' masks (eq. 25-26)."""
    c, delta, sigma2 = win[:, :2], win[:, 2], win[:, 3]
    if g.width == g.height:  # both axes in one batched build
        Fxy, keep = _bank(c, delta, sigma2, g.offs, g.a)
        return Fxy[:, 0], Fxy[:, 1], keep
    Fx, kx = _bank(c[:, :1], delta, sigma2, g.offs, g.a)
    Fy, ky = _bank(c[:, 1:], delta, sigma2, g.offs, g.b)
    return Fx[:, 0], Fy[:, 0], (kx, ky)


def _filters_backward(g: _Grid, dFx, dFy, Fx, Fy, keep, win):
    """(dL/dg_X, dL/dg_Y) (batch, 2), dL/dδ and dL/dσ² (batch,)."""
    c, delta, sigma2 = win[:, :2], win[:, 2], win[:, 3]
    if g.width == g.height:
        return _bank_backward(torch.stack((dFx, dFy), 1), torch.stack((Fx, Fy), 1), keep, c, delta, sigma2, g.offs, g.a)
    gx, dx, sx = _bank_backward(dFx[:, None], Fx[:, None], keep[0], c[:, :1], delta, sigma2, g.offs, g.a)
    gy, dy, sy = _bank_backward(dFy[:, None], Fy[:, None], keep[1], c[:, 1:], delta, sigma2, g.offs, g.b)
    return torch.cat((gx, gy), 1), dx + dy, sx + sy


def _bank(g, delta, sigma2, offs, a):
    """k filterbanks sharing δ and σ² (eq. 19-20, 25-26), the same float ops as attention._filters.

    g: (batch, k) centres; delta, sigma2: (batch,). Returns F (batch, k, N, size), rows summing
    to 1, and keep (batch, k, N, 1): True where the normaliser was not clamped at _EPS.
    """
    mu = g[:, :, None] + offs * delta[:, None, None]  # (batch, k, N)
    E = torch.exp(-((a - mu[..., None]) ** 2) / (2 * sigma2[:, None, None, None]))
    s = E.sum(-1, keepdim=True)
    return E / s.clamp_min(_EPS), s > _EPS


def _bank_backward(dF, F_, keep, g, delta, sigma2, offs, a):
    """Backward of _bank: (dL/dg (batch, k), dL/dδ (batch,), dL/dσ² (batch,)).

    With F = E / s, dL/dE · E = (dF − Σ_a dF·F) · F (the sum drops where s was clamped), and
    ∂E/∂μ = E (a − μ)/σ², ∂E/∂σ² = E (a − μ)²/(2σ⁴).
    """
    mu = g[:, :, None] + offs * delta[:, None, None]
    d = a - mu[..., None]  # (batch, k, N, size)
    q = (dF - keep * (dF * F_).sum(-1, keepdim=True)) * F_  # dL/dE · E
    qd = q * d
    dmu = qd.sum(-1) / sigma2[:, None, None]  # (batch, k, N)
    dsigma2 = (qd * d).sum((1, 2, 3)) / (2 * sigma2 * sigma2)
    return dmu.sum(-1), (dmu * offs).sum((1, 2)), dsigma2


def _lstm(gates, c):
    """LSTM cell pointwise part (PyTorch gate order i, f, g, o): (act, c', tanh c', h')."""
    n = c.shape[1]
    act = torch.sigmoid(gates)
    act[:, 2 * n : 3 * n] = torch.tanh(gates[:, 2 * n : 3 * n])
    i, f, g, o = act.chunk(4, 1)
    c_new = torch.addcmul(f * c, i, g)  # c' = f c + i g
    tanh_c = torch.tanh(c_new)
    return act, c_new, tanh_c, o * tanh_c  # h' = o tanh(c')


def _lstm_backward(dh, dc, act, c_prev, tanh_c):
    """(dL/dgates (batch, 4n), dL/dc_prev) of one LSTM cell; act holds σ(i), σ(f), tanh(g), σ(o)."""
    i, f, g, o = act.chunk(4, 1)
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    da = torch.cat((dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g), dh * tanh_c * o * (1 - o)), 1)
    return da, dc * f


class _K(NamedTuple):
    """The static sizes one time step needs (Python ints: constants to torch.compile)."""

    attn: bool
    C: int
    P: int  # painted channels: C, or 2C with a scale canvas ([c_t | s_t] in one tensor)
    Zs: int
    E: int
    nw: int  # write columns of the fused h_dec projection
    nc: int  # where the canvas's write columns end (a scale canvas's follow it, up to nw)
    col_r: int  # first read column
    col_e: int  # first encoder column
    col_d: int  # first decoder column
    unroll: bool = False  # filterbank products as multiply-and-sum (see _mm)
    bf16: bool = False  # the big GEMMs in bfloat16 (see _addmm)


def _mm(k, a, b):
    """Batched a @ b.  The filterbank products are tiny (N <= 12 filters, 28-32 pixels), so
    compiled, they are written as a broadcast multiply and sum, which inductor fuses with the
    pointwise work around them, instead of one library call each (k.unroll)."""
    if k.unroll:
        return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)
    return torch.matmul(a, b)


def _addmm(k, bias, x, W):
    """bias + x Wᵀ.  With k.bf16, W is already bfloat16 and x is rounded to it: the product runs
    at bfloat16 speed (fp32 accumulation, result rounded to bfloat16), everything else stays fp32."""
    if k.bf16:
        return bias + torch.mm(x.to(W.dtype), W.t()).float()
    return torch.addmm(bias, x, W.t())


def _lowp(k, g):
    """A GEMM operand in the GEMM dtype (bfloat16 with k.bf16, else g itself)."""
    return g.to(torch.bfloat16) if k.bf16 else g


def _up(k, y):
    """A GEMM result back in fp32 (with k.bf16; else y itself)."""
    return y.float() if k.bf16 else y


# ---------------------------------------------------------------------------- one time step


class _Saved(NamedTuple):
    """What one forward step keeps for its backward step (and for the weight gradients and _emit)."""

    S: torch.Tensor  # σ(c_{t-1})
    r: torch.Tensor  # read vector
    read: Optional[tuple]  # (window, glimpse, [x, x̂], F_X, F_Y, keep, F_Y [x, x̂]); None without attention
    act_e: torch.Tensor
    tanh_ce: torch.Tensor
    h_enc: torch.Tensor
    sigma: torch.Tensor  # σ_t of Q(z_t | h_enc_t)
    z: torch.Tensor
    act_d: torch.Tensor
    tanh_cd: torch.Tensor
    h_dec: torch.Tensor
    write: Optional[tuple]  # (window, F_X, F_Y, keep, w F_X); None without attention


class _Grids(NamedTuple):
    """The read and write grids (None without attention)."""

    read: Optional[_Grid]
    write: Optional[_Grid]


class _Weights(NamedTuple):
    """The weights every step multiplies by: the fused GEMMs' in the GEMM dtype (see _addmm)."""

    W_r: torch.Tensor  # encoder columns of the read vector (fp32: 2·N² columns thin)
    We: torch.Tensor  # fused h_enc projection: [Q(z|h_enc) (μ, log σ) | encoder hh]
    be: torch.Tensor
    W_ih_dec: torch.Tensor  # decoder input (z)
    Wd: torch.Tensor  # fused h_dec projection: [write params | patch | read params | encoder | decoder hh]
    bd: torch.Tensor


class _State(NamedTuple):
    """What step t hands to step t+1: c_t, the fused projections of h_dec_t and h_enc_t, the cell states."""

    canvas: torch.Tensor  # c_t (B, C, H, W), logits; with a scale canvas [c_t | s_t] (B, 2C, H, W)
    proj_dec: torch.Tensor  # bd + h_dec_t Wdᵀ (B, rows of Wd)
    proj_enc: torch.Tensor  # be + h_enc_t Weᵀ (B, rows of We)
    c_enc: torch.Tensor
    c_dec: torch.Tensor


def _step_forward(k: _K, grids: _Grids, x, bx, state: _State, eps_t, w: _Weights, out_canvas, out_x_hat):
    """Step t of eq. 3-8 from the state after step t-1.  Returns the next state and what backward
    needs; writes c_t and x̂_t into out_canvas and out_x_hat (rows of time-first buffers, for recording)."""
    C, Zs = k.C, k.Zs
    canvas, proj_dec, proj_enc, c_enc, c_dec = state
    S = torch.sigmoid(canvas[:, :C] if k.P != C else canvas)
    x_hat = x - S  # eq. 3
    gates_e = proj_dec[:, k.col_e : k.col_d] + proj_enc[:, 2 * Zs :]  # (B, 4E)
    if k.attn:  # eq. 4 and 27: r = γ [F_Y x F_Xᵀ, F_Y x̂ F_Xᵀ]
        win_r = _window(grids.read, proj_dec[:, k.col_r : k.col_e])
        Fx, Fy, keep = _filters(grids.read, win_r)
        both = torch.cat((x, x_hat), 1)  # (B, 2C, H, W)
        FyS = _mm(k, Fy[:, None], both)  # (B, 2C, N, A)
        glimpse = _mm(k, FyS, Fx.transpose(1, 2)[:, None]) * win_r[:, 4, None, None, None]
        r = glimpse.flatten(1)
        read = (win_r, glimpse, both, Fx, Fy, keep, FyS)
    else:  # eq. 17
        r = x_hat.flatten(1)
        gates_e = gates_e + bx
        read = None
    gates_e = torch.addmm(gates_e, r, w.W_r.t())
    act_e, c_enc, tanh_ce, h_enc = _lstm(gates_e, c_enc)  # eq. 5
    proj_enc = _addmm(k, w.be, h_enc, w.We)
    mu, log_sigma = proj_enc[:, :Zs], proj_enc[:, Zs : 2 * Zs]
    sigma = torch.exp(log_sigma)
    z = torch.addcmul(mu, sigma, eps_t)  # eq. 6
    gates_d = _addmm(k, proj_dec[:, k.col_d :], z, w.W_ih_dec)
    act_d, c_dec, tanh_cd, h_dec = _lstm(gates_d, c_dec)  # eq. 7
    proj_dec = _addmm(k, w.bd, h_dec, w.Wd)
    if k.attn:  # eq. 28-29: c_t = c_{t-1} + (1/γ) F_Yᵀ w F_X
        wg = grids.write
        win_w = _window(wg, proj_dec[:, :5])
        Fx, Fy, keep = _filters(wg, win_w)
        patch = proj_dec[:, 5 : k.nw].view(-1, k.P, wg.N, wg.N)  # with a scale canvas: [w | w_s]
        wFx = _mm(k, patch, Fx[:, None])  # (B, P, M, A)
        update = _mm(k, Fy.transpose(1, 2)[:, None], wFx) / win_w[:, 4, None, None, None]
        write = (win_w, Fx, Fy, keep, wFx)
    else:  # eq. 18
        update = proj_dec[:, : k.nw].view_as(canvas)
        write = None
    canvas = canvas + update  # eq. 8 (and s_t = s_(t−1) + write_s(h_dec_t))
    out_canvas.copy_(canvas)
    out_x_hat.copy_(x_hat)
    saved = _Saved(S, r, read, act_e, tanh_ce, h_enc, sigma, z, act_d, tanh_cd, h_dec, write)
    return _State(canvas, proj_dec, proj_enc, c_enc, c_dec), saved


class _Grads(NamedTuple):
    """What backward of step t+1 hands to step t."""

    canvas: torch.Tensor  # dL/dc_t
    c_dec: torch.Tensor  # dL/d of the decoder cell state
    c_enc: torch.Tensor
    rest: torch.Tensor  # dL/d of the non-write columns of proj_dec_t (read params, encoder, decoder hh)


def _step_backward(
    k: _K,
    grids: _Grids,
    grads: _Grads,
    d_mu,
    d_ls,
    eps_t,
    proj_dec,
    c_enc_prev,
    c_dec_prev,
    saved: "_Saved",
    w: _Weights,
    out_proj_dec,
    out_proj_enc,
):
    """Backward of step t: from the gradients after step t to those after step t-1.  Writes the rows
    dL/dproj_dec_t and dL/dproj_enc_t into out_proj_dec and out_proj_enc (the weight gradients' operands)."""
    C, E = k.C, k.E
    dc, dc_dec, dc_enc, rest = grads
    rg, wg = grids
    S, r, read, act_e, tanh_ce, h_enc, sigma, z, act_d, tanh_cd, h_dec, write = saved
    B = dc.shape[0]
    if k.attn:  # write, eq. 28-29
        win, Fx, Fy, keep, wFx = write
        M = wg.N
        patch = proj_dec[:, 5 : k.nw].view(B, k.P, M, M)
        dU = dc / win[:, 4, None, None, None]
        FydU = _mm(k, Fy[:, None], dU)  # (B, P, M, A)
        d_patch = _mm(k, FydU, Fx.transpose(1, 2)[:, None]).flatten(1)  # Σ dU·U = Σ F_Y dU · w F_X (dγ)
        dFx = _mm(k, patch.transpose(2, 3), FydU).sum(1)  # Σ_c wᵀ F_Y dU
        dFy = _mm(k, wFx, dU.transpose(2, 3)).sum(1)  # Σ_c w F_X dUᵀ
        dg, ddelta, dsigma2 = _filters_backward(wg, dFx, dFy, Fx, Fy, keep, win)
        dwin = torch.cat((dg, ddelta[:, None], dsigma2[:, None], -(FydU * wFx).sum((1, 2, 3))[:, None]), 1)
        dproj_dec = torch.cat((_window_backward(wg, dwin, win), d_patch, rest), 1)
    else:  # eq. 18
        dproj_dec = torch.cat((dc.flatten(1), rest), 1)
    dproj_dec = _lowp(k, dproj_dec)
    out_proj_dec.copy_(dproj_dec)
    dh = _up(k, dproj_dec @ w.Wd)
    dAd, dc_dec = _lstm_backward(dh, dc_dec, act_d, c_dec_prev, tanh_cd)  # eq. 7
    dz = _up(k, _lowp(k, dAd) @ w.W_ih_dec)  # eq. 6: z = μ + σ ε
    dAe_next = rest[:, k.col_e - k.nw : k.col_e - k.nw + 4 * E]
    dproj_enc = torch.cat((d_mu + dz, d_ls + dz * eps_t * sigma, dAe_next), 1)
    dproj_enc = _lowp(k, dproj_enc)
    out_proj_enc.copy_(dproj_enc)
    dh = _up(k, dproj_enc @ w.We)
    dAe, dc_enc = _lstm_backward(dh, dc_enc, act_e, c_enc_prev, tanh_ce)  # eq. 5
    dr = dAe @ w.W_r
    if k.attn:  # read, eq. 27
        win, glimpse, both, Fx, Fy, keep, FyS = read
        N = rg.N
        dgl = dr.view(B, 2 * C, N, N)
        dG = dgl * win[:, 4, None, None, None]
        dGFx = _mm(k, dG, Fx[:, None])  # (B, 2C, N, A)
        d_x_hat = _mm(k, Fy.transpose(1, 2)[:, None], dGFx[:, C:])
        dFx = _mm(k, dG.transpose(2, 3), FyS).sum(1)
        dFy = _mm(k, dGFx, both.transpose(2, 3)).sum(1)
        dg, ddelta, dsigma2 = _filters_backward(rg, dFx, dFy, Fx, Fy, keep, win)
        dwin = torch.cat((dg, ddelta[:, None], dsigma2[:, None], (dgl * glimpse).sum((1, 2, 3))[:, None]), 1)
        rest = torch.cat((_window_backward(rg, dwin, win), dAe, dAd), 1)
    else:
        d_x_hat = dr.view_as(S)
        rest = torch.cat((dAe, dAd), 1)
    d_c = d_x_hat * S * (1 - S)  # through x̂_t = x − σ(c_{t-1}), eq. 3
    dc = dc - d_c if k.P == C else torch.cat((dc[:, :C] - d_c, dc[:, C:]), 1)  # s_t is read by no step
    return _Grads(dc, dc_dec, dc_enc, rest)


class _Ops:
    """The two step functions, eager or torch.compile'd (falling back to eager if compiling fails).

    unroll: write the filterbank products as multiply-and-sum (_mm); default: when compiled.
    """

    names = ("forward", "backward")

    def __init__(self, compile: bool = False, mode: Optional[str] = None, unroll: Optional[bool] = None):
        self.compiled = False
        self._unroll = unroll
        eager = dict(forward=_step_forward, backward=_step_backward)
        for name, fn in eager.items():
            setattr(self, name, fn)
        if compile:
            try:
                for name, fn in eager.items():
                    setattr(self, name, _Fallback(torch.compile(fn, dynamic=False, mode=mode), fn, self))
                self.compiled = True
            except Exception as err:  # noqa: BLE001 -- any failure means: run eager
                self._fall_back(err)

    @property
    def unroll(self) -> bool:
        return self.compiled if self._unroll is None else self._unroll

    def _fall_back(self, err):
        warnings.warn(
            f"drawviz.fast: torch.compile failed ({type(err).__name__}: {err}); running the fast path eagerly",
            RuntimeWarning,
            stacklevel=3,
        )
        for name in self.names:
            fn = getattr(self, name)
            setattr(self, name, fn.eager if isinstance(fn, _Fallback) else fn)
        self.compiled = False


class _Fallback:
    """A compiled function whose first failure (compilation is lazy) switches all ops to eager."""

    def __init__(self, compiled, eager, ops):
        self.compiled, self.eager, self.ops = compiled, eager, ops

    def __call__(self, *args):
        try:
            return self.compiled(*args)
        except Exception as err:  # noqa: BLE001
            self.ops._fall_back(err)
            return self.eager(*args)


_EAGER = _Ops()


# ---------------------------------------------------------------------------- the sequence


def _param_list(m: DRAW):
    """The DRAW parameters the sequence reads, in _Sequence.apply order."""
    ps = [
        m.c0,
        m.h_enc0,
        m.h_dec0,
        m.encoder.weight_ih,
        m.encoder.bias_ih,
        m.encoder.weight_hh,
        m.encoder.bias_hh,
        m.decoder.weight_ih,
        m.decoder.bias_ih,
        m.decoder.weight_hh,
        m.decoder.bias_hh,
        m.q.weight,
        m.q.bias,
    ]
    if m.config.attention:
        ps += [
            m.read.params.weight,
            m.read.params.bias,
            m.write.params.weight,
            m.write.params.bias,
            m.write.patch.weight,
            m.write.patch.bias,
        ]
    else:
        ps += [m.write.linear.weight, m.write.linear.bias]
    if m.config.scale_canvas:  # write_s's own patch (or whole update), and s_0
        ps += [m.write_scale.weight, m.write_scale.bias, m.s0]
    return ps


@dataclass
class _Call:
    """One forward call's settings and, after it, its pass (what the autograd node hands back)."""

    workspace: dict  # backward's stacking buffers, reused across calls (_buffer)
    bf16: bool  # GEMM operands in bfloat16
    record: bool  # the time-first canvas and x̂ buffers come from pool (never reused while a trace holds them)
    pool: "_TracePool"
    result: Optional["_Pass"] = None


@dataclass
class _Pass:
    """Every activation of a forward pass that backward and recording need; lists are indexed by step
    (index 0: the learned initial state, index t: after step t)."""

    ops: "_Ops"
    k: _K
    grids: _Grids
    x: torch.Tensor
    eps: torch.Tensor
    Wd: torch.Tensor  # fp32 fused weights (the gradients' shapes and dtype)
    We: torch.Tensor
    weights: _Weights  # in the GEMM dtype
    workspace: dict
    h_dec0: torch.Tensor
    h_enc0: torch.Tensor
    canvas: torch.Tensor  # c_T; with a scale canvas [c_T | s_T]
    proj_dec: list  # bd + h_dec_t Wdᵀ, t = 0..T
    proj_enc: list  # be + h_enc_t Weᵀ, t = 0..T
    c_enc: list  # cell states, t = 0..T
    c_dec: list
    saved: list  # _Saved of steps 1..T
    canvas_steps: torch.Tensor  # (T, B, P, H, W): c_1..c_T (with a scale canvas [c_t | s_t])
    x_hat_steps: torch.Tensor  # (T, B, C, H, W): x̂_1..x̂_T


class _Sequence(torch.autograd.Function):
    """All T steps as one autograd node: outputs (c_T (batch, C, H, W), with a scale canvas [c_T | s_T] (batch, 2C,
    H, W); μ (T, batch, z); log σ (T, batch, z))."""

    @staticmethod
    def forward(ctx, cfg, ops, call: _Call, x, eps, *params):
        run = call.result = _run(cfg, ops, x, eps, params, call)
        ctx.cfg, ctx.run = cfg, run
        z = cfg.z_size
        q = torch.stack([p[:, : 2 * z] for p in run.proj_enc[1:]])
        return run.canvas.clone(), q[..., :z].clone(), q[..., z:].clone()

    @staticmethod
    def backward(ctx, d_canvas, d_mu, d_log_sigma):
        grads = _backprop(ctx.cfg, ctx.run, d_canvas, d_mu, d_log_sigma)
        ctx.run = None  # free the activations now, not when the graph dies
        return (None, None, None, None, None, *grads)


def _run(cfg, ops, x, eps, params, call: _Call) -> _Pass:
    """Forward pass of eq. 3-8 for all steps; returns every activation backward needs."""
    ws = call.workspace
    attn = cfg.attention
    (c0, h_enc0, h_dec0, W_ih_enc, b_ih_enc, W_hh_enc, b_hh_enc, W_ih_dec, b_ih_dec, W_hh_dec, b_hh_dec, W_q, b_q, *att) = params
    T, Zs, E, D, C = cfg.T, cfg.z_size, cfg.enc_size, cfg.dec_size, cfg.channels
    B = x.shape[0]
    if cfg.scale_canvas:  # the scale's write rows follow the canvas's; the state starts at [c_0 | s_0]
        *att, W_s, b_s, s0 = att
        c0 = torch.cat((c0, s0))
    P = 2 * C if cfg.scale_canvas else C

    # Fused h_dec GEMM, rows: [write params | write patch | read params | encoder (h_dec part) | decoder hh].
    # (No attention: [write linear | encoder (h_dec part) | decoder hh].)
    R = W_ih_enc.shape[1] - D  # read vector size
    W_r, W_hd = W_ih_enc[:, :R], W_ih_enc[:, R:]
    bx = None
    grids = _Grids(None, None)
    if attn:
        W_rp, b_rp, W_wp, b_wp, W_patch, b_patch = att
        nc = 5 + W_patch.shape[0]
        if cfg.scale_canvas:  # one patch of 2C channels: [w | w_s]
            W_patch, b_patch = torch.cat((W_patch, W_s)), torch.cat((b_patch, b_s))
        Wd = torch.cat((W_wp[_PERM], W_patch, W_rp[_PERM], W_hd, W_hh_dec))
        bd = torch.cat((b_wp[_PERM], b_patch, b_rp[_PERM], b_ih_enc + b_hh_enc, b_ih_dec + b_hh_dec))
        nw = 5 + W_patch.shape[0]  # write columns
        n_read = 5
        grids = _Grids(_grid(cfg.read_n, cfg.width, cfg.height, x), _grid(cfg.write_n, cfg.width, cfg.height, x))
    else:
        W_lin, b_lin = att
        nc = W_lin.shape[0]
        if cfg.scale_canvas:  # one update of 2C channels: [c_t − c_(t−1) | s_t − s_(t−1)]
            W_lin, b_lin = torch.cat((W_lin, W_s)), torch.cat((b_lin, b_s))
        Wd = torch.cat((W_lin, W_hd, W_hh_dec))
        bd = torch.cat((b_lin, b_ih_enc + b_hh_enc, b_ih_dec + b_hh_dec))
        nw, n_read = W_lin.shape[0], 0
        # x's share of the encoder input is the same every step: project it once
        W_x, W_r = W_r[:, : R // 2], W_r[:, R // 2 :]
        bx = x.flatten(1) @ W_x.t()  # (B, 4E)
    k = _K(attn, C, P, Zs, E, nw, nc, nw, nw + n_read, nw + n_read + 4 * E, unroll=ops.unroll, bf16=call.bf16)
    # Fused h_enc GEMM, rows: [Q(z|h_enc) (μ, log σ) | encoder hh].
    We = torch.cat((W_q, W_hh_enc))
    be = torch.cat((b_q, b_q.new_zeros(4 * E)))
    # The per-step GEMM weights, in the GEMM dtype (W_r is 2·N² columns thin: it stays fp32).
    weights = _Weights(W_r, _lowp(k, We), be, _lowp(k, W_ih_dec), _lowp(k, Wd), bd)

    hd, he = h_dec0.expand(B, D).contiguous(), h_enc0.expand(B, E).contiguous()
    state = _State(
        c0.expand(B, *c0.shape).contiguous(),  # c_0; all later steps go to canvas_steps
        torch.addmm(bd, hd, Wd.t()),
        torch.cat((he.new_zeros(B, 2 * Zs), he @ W_hh_enc.t() + be[2 * Zs :]), 1),
        he.new_zeros(B, E),
        hd.new_zeros(B, D),
    )
    states, saved = [state], []
    steps, painted = (T, *x.shape), (T, B, P, *x.shape[2:])
    if call.record:
        if P == C:  # one take: two buffers of one shape, neither handed out twice
            canvas_steps, x_hat_steps = call.pool.take(steps, x, 2)
        else:
            (canvas_steps,), (x_hat_steps,) = call.pool.take(painted, x, 1), call.pool.take(steps, x, 1)
    else:  # written in training too, so that training and recording share one compiled step
        canvas_steps, x_hat_steps = _buffer(ws, "canvas", painted, x), _buffer(ws, "x_hat", steps, x)
    for t in range(T):
        state, step_saved = ops.forward(k, grids, x, bx, state, eps[t], weights, canvas_steps[t], x_hat_steps[t])
        states.append(state)
        saved.append(step_saved)
    return _Pass(
        ops,
        k,
        grids,
        x,
        eps,
        Wd,
        We,
        weights,
        ws,
        hd,
        he,
        state.canvas,
        [s.proj_dec for s in states],
        [s.proj_enc for s in states],
        [s.c_enc for s in states],
        [s.c_dec for s in states],
        saved,
        canvas_steps,
        x_hat_steps,
    )


def _buffer(ws: dict, name: str, shape, like: torch.Tensor, dtype=None):
    """An empty buffer kept across calls: the (T, batch, ...) operands of the weight GEMMs are
    tens of MB, and fresh ones cost a page fault per 4 KiB on every step."""
    dtype = dtype or like.dtype
    buf = ws.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype or buf.device != like.device:
        buf = ws[name] = like.new_empty(shape, dtype=dtype)
    return buf


def _use_count(t: torch.Tensor) -> int:
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


class _TracePool:
    """Time-first buffers for recordings, reused only once nothing else refers to their memory.

    A trace's canvases and error images are new arrays every pass (100 MB at CIFAR-10 batch 64),
    and first-touching fresh pages costs ~10% of a forward pass: the allocator hands blocks that
    big back to the OS when freed.  A buffer whose storage is still used (by a live Trace's numpy
    arrays, a view, a recorder) is never handed out again.  Keeps at most `keep` buffers.
    """

    def __init__(self, keep: int = 2):
        self.keep = keep
        self.buffers: list[tuple[torch.Tensor, int]] = []  # (buffer, its use count when only we hold it)
        self.reusable = hasattr(torch._C, "_storage_Use_Count")

    def take(self, shape, like: torch.Tensor, n: int) -> list[torch.Tensor]:
        if not self.reusable:  # no way to tell whether a trace still uses a buffer: always new ones
            return [like.new_empty(shape) for _ in range(n)]
        free = [
            b
            for b, idle in self.buffers
            if b.shape == shape and b.dtype == like.dtype and b.device == like.device and _use_count(b) == idle
        ][:n]
        while len(free) < n:
            buf = like.new_empty(shape)
            self.buffers.append((buf, _use_count(buf)))
            free.append(buf)
        taken = {id(b) for b in free}
        mine = [e for e in self.buffers if id(e[0]) in taken]
        others = [e for e in self.buffers if id(e[0]) not in taken][::-1]  # newest first
        self.buffers = (mine + others)[: max(self.keep, n)]
        return free


def _stack(ws: dict, name: str, tensors):
    """torch.stack into a _buffer."""
    return torch.stack(tensors, out=_buffer(ws, name, (len(tensors), *tensors[0].shape), tensors[0]))


def _backprop(cfg, run: _Pass, d_canvas, d_mu, d_log_sigma):
    """Backpropagation through time of _run; returns gradients in _param_list order."""
    k, w = run.k, run.weights
    T, Zs = cfg.T, cfg.z_size
    x, eps, Wd, We = run.x, run.eps, run.Wd, run.We
    Ce, Cd, saved = run.c_enc, run.c_dec, run.saved
    nw, col_e, col_d = k.nw, k.col_e, k.col_d
    B = x.shape[0]
    if d_mu is None:
        d_mu = eps.new_zeros(T, B, Zs)
    if d_log_sigma is None:
        d_log_sigma = eps.new_zeros(T, B, Zs)
    dc = torch.zeros_like(run.canvas) if d_canvas is None else d_canvas.contiguous()  # dL/dc_T
    grads = _Grads(dc, Cd[0].new_zeros(Cd[0].shape), Ce[0].new_zeros(Ce[0].shape), Wd.new_zeros(B, Wd.shape[0] - nw))
    ws = run.workspace
    # dL/d(fused projections) per step: rows of the weight-gradient GEMMs, written in place by each step.
    dPd = _buffer(ws, "dPd", (T + 1, B, Wd.shape[0]), Wd, w.Wd.dtype)
    dPe = _buffer(ws, "dPe", (T + 1, B, We.shape[0]), We, w.We.dtype)
    for t in reversed(range(T)):
        grads = run.ops.backward(
            k,
            run.grids,
            grads,
            d_mu[t],
            d_log_sigma[t],
            eps[t],
            run.proj_dec[t + 1],
            Ce[t],
            Cd[t],
            saved[t],
            w,
            dPd[t + 1],
            dPe[t + 1],
        )
    dc, rest = grads.canvas, grads.rest
    dPd0 = torch.cat((rest.new_zeros(B, nw), rest), 1)  # step 0 reads h_dec0 and h_enc0
    dPe0 = torch.cat((rest.new_zeros(B, 2 * Zs), rest[:, col_e - nw : col_d - nw]), 1)
    dPd[0], dPe[0] = dPd0, dPe0

    # Weight gradients: one GEMM over all T·batch rows each (in the GEMM dtype, summed in fp32).
    flat = lambda a: a.flatten(0, 1)
    Hd = _lowp(k, _stack(ws, "Hd", [run.h_dec0] + [s.h_dec for s in saved]))
    He = _lowp(k, _stack(ws, "He", [run.h_enc0] + [s.h_enc for s in saved]))
    Rv = _stack(ws, "Rv", [s.r for s in saved])
    Z = _lowp(k, _stack(ws, "Z", [s.z for s in saved]))
    dAe, dAd = dPd[:T, :, col_e:col_d], dPd[:T, :, col_d:]
    dWd, dbd = _up(k, flat(dPd).t() @ flat(Hd)), dPd.sum((0, 1), dtype=Wd.dtype)
    dWe, dbe = _up(k, flat(dPe).t() @ flat(He)), dPe.sum((0, 1), dtype=Wd.dtype)
    dW_r = _up(k, flat(dAe).t() @ _lowp(k, flat(Rv)))
    dW_ih_dec = _up(k, flat(dAd).t() @ flat(Z))
    db_enc, db_dec = dbd[col_e:col_d], dbd[col_d:]
    if not k.attn:
        dW_r = torch.cat((dAe.sum(0, dtype=Wd.dtype).t() @ x.flatten(1), dW_r), 1)
    dW_ih_enc = torch.cat((dW_r, dWd[col_e:col_d]), 1)
    C = k.C
    out = [
        dc[:, :C].sum(0),  # c_0 (with a scale canvas, s_0's gradient is the rest: last in the list)
        dPe0.sum(0) @ We,
        dPd0.sum(0) @ Wd,
        dW_ih_enc,
        db_enc,
        dWe[2 * Zs :],
        db_enc.clone(),
        dW_ih_dec,
        db_dec,
        dWd[col_d:],
        db_dec.clone(),
        dWe[: 2 * Zs],
        dbe[: 2 * Zs],
    ]
    col_r, nc = k.col_r, k.nc
    if k.attn:
        out += [dWd[col_r:col_e][_PERM], dbd[col_r:col_e][_PERM], dWd[:5][_PERM], dbd[:5][_PERM]]
        out += [dWd[5:nc], dbd[5:nc]]
    else:
        out += [dWd[:nc], dbd[:nc]]
    if k.P != C:  # write_s and s_0
        out += [dWd[nc:nw], dbd[nc:nw], dc[:, C:].sum(0)]
    return out


# ---------------------------------------------------------------------------- the module


class FastDRAW(nn.Module):
    """DRAW's fast path: the same numbers and parameters as the wrapped model, several times faster.

    ``FastDRAW(model)(x, eps)`` returns the :class:`DrawOutput` of ``model(x, eps)`` up to float
    rounding; a ``tap`` receives the same (name, step, value) calls, made after the pass (watching only).  The
    state_dict is the wrapped model's, so checkpoints load into either.
    """

    def __init__(self, model: DRAW, compile: bool = False, mode: Optional[str] = None, bf16: bool = False):
        super().__init__()
        _implemented(model)
        self.model = model
        self.ops = _Ops(compile, mode) if compile else _EAGER
        self.bf16 = bf16  # GEMM operands in bfloat16 (see make_fast)
        self._workspace: dict = {}  # backward's stacking buffers, reused across steps
        self._traces = _TracePool()  # recording buffers, reused once a trace is dropped

    @property
    def config(self):
        return self.model.config

    def state_dict(self, *args, **kwargs):
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)

    def sample_eps(self, batch: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.model.sample_eps(batch, generator)

    def forward(
        self,
        x: torch.Tensor,
        eps: Optional[torch.Tensor] = None,
        *,
        generator: Optional[torch.Generator] = None,
        tap: Optional[Tap] = None,
        check: bool = True,
    ) -> DrawOutput:
        """As DRAW.forward (eq. 3-12); eps (T, batch, z_size) is drawn from ``generator`` when not given.

        tap: only watches here. After the pass it is called with every quantity, step by step, and
        must return each value unchanged: interventions need the reference model (``self.model``)."""
        refuse_interventions(tap)
        m, cfg = self.model, self.model.config
        if check:
            check_images(x, cfg)
        if eps is None:
            eps = m.sample_eps(x.shape[0], generator)
        m.check_eps(eps, x.shape[0])
        m.check_dtype(x)
        call = _Call(self._workspace, self.bf16, tap is not None, self._traces)
        painted, mu, log_sigma = _Sequence.apply(cfg, self.ops, call, x.detach(), eps.detach(), *_param_list(m))
        canvas, scale = painted.split(cfg.channels, 1) if cfg.scale_canvas else (painted, None)  # c_T, s_T
        sigma = torch.exp(log_sigma)
        # KL(N(μ, σ²) || N(0, 1)) per step, eq. 11, for all steps at once: (T, batch).
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 2 * log_sigma - 1).sum(-1)
        nll = m.nll(canvas, x, scale)  # eq. 9; with a scale canvas the logistic's log-scale is s_T
        if tap is not None:
            _emit(tap, call.result, mu.detach(), kl.detach(), cfg, m.c0.detach())
        return DrawOutput((nll + kl.sum(0)).mean(), nll, kl, canvas)

    def generate(
        self,
        n: int,
        *,
        generator: Optional[torch.Generator] = None,
        eps: Optional[torch.Tensor] = None,
        tap: Optional[Tap] = None,
    ) -> torch.Tensor:
        """Sampling (eq. 13-16) has no backward pass to speed up: the reference loop (watching only)."""
        refuse_interventions(tap)
        return self.model.generate(n, generator=generator, eps=eps, tap=tap)

    reconstruct = DRAW.reconstruct  # records the canvases through this module's own forward


INTERVENTION_REFUSED = (
    "the fast path only records: it computes a whole pass at once, so a hook cannot change "
    "a step's value; run interventions on the reference model: "
    "drawviz.interventions.run_with_hooks(fast_model.model, ...)"
)


def refuse_interventions(tap) -> None:
    if getattr(tap, "intervenes", False):
        raise TypeError(INTERVENTION_REFUSED)


def _emit(tap, run: _Pass, mu, kl, cfg, c0):
    """Replay the reference model's taps (drawviz.quantities), step by step, from the stored activations.

    A recorder with record_steps(name, values) (probes.Recorder) gets the canvases and error
    images as the time-first (T, batch, C, H, W) buffers they already are: no per-step copies.
    """
    B, C = run.x.shape[0], cfg.channels
    canvas_steps = run.canvas_steps[:, :, :C]  # (T, B, C, H, W): c_1..c_T (a view: the rest is the scale canvas)
    record_steps = getattr(tap, "record_steps", None)
    if record_steps is not None:
        record_steps(Q.X_HAT, run.x_hat_steps)
        record_steps(Q.CANVAS, canvas_steps)

    def watch(name, t, value):
        if tap(name, t, value) is not value:
            raise TypeError(INTERVENTION_REFUSED + f" (the tap returned another value for {name!r} at step {t})")

    def write_patch(t, s):
        if cfg.attention:
            return run.proj_dec[t][:, 5 : 5 + C * cfg.write_n**2].view(B, C, cfg.write_n, cfg.write_n)
        canvases = canvas_steps  # without attention: the whole update, c_t − c_{t−1}
        return canvases[t - 1] - (canvases[t - 2] if t > 1 else c0)

    # where each declared quantity lies in the stored activations of step t (s)
    value_of = {
        Q.X_HAT: lambda t, s: run.x_hat_steps[t - 1],
        Q.READ_WINDOW: lambda t, s: Window(*s.read[0].unbind(1)),
        Q.GLIMPSE: lambda t, s: s.read[1].view(B, 2, C, cfg.read_n, cfg.read_n),
        Q.H_ENC: lambda t, s: s.h_enc,
        Q.MU: lambda t, s: mu[t - 1],
        Q.SIGMA_Z: lambda t, s: s.sigma,
        Q.Z: lambda t, s: s.z,
        Q.KL: lambda t, s: kl[t - 1],
        Q.H_DEC: lambda t, s: s.h_dec,
        Q.WRITE_WINDOW: lambda t, s: Window(*s.write[0].unbind(1)),
        Q.WRITE_PATCH: write_patch,
        Q.CANVAS: lambda t, s: canvas_steps[t - 1],
        Q.SCALE_CANVAS: lambda t, s: run.canvas_steps[t - 1, :, C:],  # s_t
    }
    declared = Q.available(cfg, Q.RECONSTRUCTION)  # what quantities declares for this config, in step order
    missing = [name for name in declared if name not in value_of]
    if missing:
        raise NotImplementedError(
            f"the fast path does not compute {', '.join(missing)}: record with the reference model (drawviz.model.DRAW) instead"
        )
    whole = {Q.X_HAT, Q.CANVAS} if record_steps is not None else set()  # handed over time-first above
    for t, s in enumerate(run.saved, start=1):
        for name in declared:
            if name not in whole:
                watch(name, t, value_of[name](t, s))


def _worth_compiling(cfg) -> bool:
    """On CPU, compiling (tens of seconds, once per process) pays for preset-sized networks only."""
    return cfg.T * (cfg.enc_size + cfg.dec_size) >= 4096


def _implemented(model) -> None:
    """Refuse a model this path does not implement: it replays DRAW's equations and never calls model.forward,
    so a subclass (or another kind) would silently train as plain DRAW, its own modules without gradients; the same
    for an arm beyond the paper it does not replay (DrawConfig.beyond_paper: the learned prior; it does the scale
    canvas)."""
    if type(model) is not DRAW:
        raise ValueError(
            f"the fast path implements DRAW only, not {type(model).__name__}: its forward (and any module it adds) "
            f"would be skipped. Train it with fast=False (CLI: without --fast)"
        )
    arms = {k: v for k, v in model.config.beyond_paper().items() if k != "scale_canvas"}
    if arms:
        raise ValueError(
            f"the fast path implements the paper's DRAW only, not {', '.join(f'{k}={v!r}' for k, v in arms.items())}: "
            f"train it with fast=False (CLI: without --fast or --bf16)"
        )


def make_fast(model: DRAW, compile="auto", *, tf32: bool = False, bf16: bool = False) -> FastDRAW:
    """The fast path for ``model``, sharing its parameters (the one switch train() needs).

    compile: True compiles the per-step forward and the per-step backward function, each as one
    region, with torch.compile (inductor fuses the pointwise work into a few C++/Triton kernels
    around the GEMMs; default mode: "reduce-overhead"'s CUDA graphs would overwrite outputs this
    module keeps across steps); a failure warns and runs eagerly.  "auto" compiles on CUDA, and
    on CPU for networks of preset size (T·(enc_size + dec_size) >= 4096), where the first step
    pays ~20 s of compilation once per process and each later step saves a good share of its
    time; small networks run eagerly.  tf32: allow TF32 matmuls on CUDA (a global torch setting;
    changes results at the 1e-3 level).  bf16: the GEMMs (per step and for the weight
    gradients) multiply bfloat16 operands, accumulate in fp32 and round their result to bfloat16;
    parameters, LSTM states, attention, canvas and loss stay fp32.  It pays only where the hardware
    multiplies bfloat16 natively (AVX512-BF16 or AMX, GPUs): time it with benchmarks/bench.py. The loss
    moves by ~0.1%, and training follows the fp32 curve (tests/test_fast.py measures both).
    """
    _implemented(model)
    device = next(model.parameters()).device
    if compile == "auto":
        compile = device.type == "cuda" or _worth_compiling(model.config)
    if tf32 and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    if bf16:
        _check_bf16(device)
    return FastDRAW(model, compile=bool(compile), bf16=bf16)


def _check_bf16(device: torch.device) -> None:
    """bf16=True pays only where the hardware multiplies bfloat16 natively: say so where it does not."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ValueError(
            f"bf16=True: {torch.cuda.get_device_name(device)} has no native bfloat16 matmuls; "
            "train without bf16 (fast=True alone gives the same numbers as the reference)"
        )
    if device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        warnings.warn(
            "bf16=True: this CPU has no native bfloat16 dot products (AVX512-BF16 or AMX), so "
            "bfloat16 GEMMs are emulated and likely slower than fp32; consider bf16=False",
            RuntimeWarning,
            stacklevel=3,
        )
