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
* Forward activations live in preallocated (T, batch, ...) buffers, so recording a full trace
  is a handful of views, not extra work.

The parameters are those of the wrapped :class:`~drawviz.model.DRAW`; the state_dict is the
same, so checkpoints are interchangeable.  Gradients flow to the parameters only, not to x or ε.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .attention import _EPS
from .model import DRAW, DrawOutput, Recorder, check_images

__all__ = ["FastDRAW", "make_fast"]

# Rows of the attention linears are reordered from (g̃_X, g̃_Y, log σ², log δ̃, log γ) to the
# window order (g_X, g_Y, δ, σ², γ) of drawviz.probes, so one exp/where/scale maps them (eq. 21-24).
_PERM = [0, 1, 3, 2, 4]  # its own inverse


# ---------------------------------------------------------------------------- building blocks

class _Grid:
    """Constants of one attention grid: filter offsets i − N/2 − 0.5 and pixel coordinates."""

    def __init__(self, N: int, width: int, height: int, like: torch.Tensor, ops: "_Ops"):
        kw = dict(dtype=like.dtype, device=like.device)
        self.ops = ops
        self.N, self.width, self.height = N, width, height
        self.offs = torch.arange(1, N + 1, **kw) - N / 2 - 0.5  # (N,)
        self.a = torch.arange(1, width + 1, **kw)  # (A,)
        self.b = torch.arange(1, height + 1, **kw)  # (B,)
        self.square = width == height
        # window = (where(exp?, e^p, p) + add) · scale, eq. 21-24 in (g_X, g_Y, δ, σ², γ) order.
        self.use_exp = torch.tensor([False, False, True, True, True], device=like.device)
        self.add = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0], **kw)
        self.scale = torch.tensor([(width + 1) / 2, (height + 1) / 2,
                                   (max(width, height) - 1) / max(N - 1, 1), 1.0, 1.0], **kw)

    def window(self, p: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """(batch, 5) linear outputs in window order -> (g_X, g_Y, δ, σ², γ) (batch, 5), into out."""
        return torch.mul(torch.where(self.use_exp, p.exp(), p) + self.add, self.scale, out=out)

    def window_backward(self, dwin: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
        """dL/dp from dL/dwindow; the γ column of dwin already holds γ·dL/dγ."""
        dp = torch.where(self.use_exp, dwin * win, dwin * self.scale)
        dp[:, 4] = dwin[:, 4]
        return dp

    def filters(self, win: torch.Tensor):
        """F_X (batch, N, A), F_Y (batch, N, B) and the 'not clamped' masks (eq. 25-26)."""
        g, delta, sigma2 = win[:, :2], win[:, 2], win[:, 3]
        if self.square:  # both axes in one batched build
            Fxy, keep = self.ops.bank(g, delta, sigma2, self.offs, self.a)
            return Fxy[:, 0], Fxy[:, 1], keep
        Fx, kx = self.ops.bank(g[:, :1], delta, sigma2, self.offs, self.a)
        Fy, ky = self.ops.bank(g[:, 1:], delta, sigma2, self.offs, self.b)
        return Fx[:, 0], Fy[:, 0], (kx, ky)

    def filters_backward(self, dFx, dFy, Fx, Fy, keep, win):
        """(dL/dg_X, dL/dg_Y) (batch, 2), dL/dδ and dL/dσ² (batch,)."""
        g, delta, sigma2 = win[:, :2], win[:, 2], win[:, 3]
        if self.square:
            return self.ops.bank_backward(torch.stack((dFx, dFy), 1), torch.stack((Fx, Fy), 1), keep,
                                  g, delta, sigma2, self.offs, self.a)
        gx, dx, sx = self.ops.bank_backward(dFx[:, None], Fx[:, None], keep[0], g[:, :1], delta, sigma2,
                                    self.offs, self.a)
        gy, dy, sy = self.ops.bank_backward(dFy[:, None], Fy[:, None], keep[1], g[:, 1:], delta, sigma2,
                                    self.offs, self.b)
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


def _lstm(gates, c, act, c_out, tanh_c_out, h_out):
    """LSTM cell pointwise part (PyTorch gate order i, f, g, o), written into buffers."""
    n = c.shape[1]
    torch.sigmoid(gates, out=act)
    torch.tanh(gates[:, 2 * n:3 * n], out=act[:, 2 * n:3 * n])
    i, f, g, o = act.chunk(4, 1)
    torch.addcmul(f * c, i, g, out=c_out)  # c' = f c + i g
    torch.tanh(c_out, out=tanh_c_out)
    torch.mul(o, tanh_c_out, out=h_out)  # h' = o tanh(c')


def _lstm_backward(dh, dc, act, c_prev, tanh_c):
    """(dL/dgates (batch, 4n), dL/dc_prev) of one LSTM cell; act holds σ(i), σ(f), tanh(g), σ(o)."""
    i, f, g, o = act.chunk(4, 1)
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    da = torch.cat((dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
                    dh * tanh_c * o * (1 - o)), 1)
    return da, dc * f


class _Ops:
    """The pointwise-heavy pieces, eager or torch.compile'd (falling back to eager if compiling fails)."""

    names = ("bank", "bank_backward", "lstm_backward")

    def __init__(self, compile: bool = False, mode: Optional[str] = None):
        self.compiled = False
        eager = dict(bank=_bank, bank_backward=_bank_backward, lstm_backward=_lstm_backward)
        for name, fn in eager.items():
            setattr(self, name, fn)
        if compile:
            try:
                for name, fn in eager.items():
                    setattr(self, name, _Fallback(torch.compile(fn, dynamic=False, mode=mode), fn, self))
                self.compiled = True
            except Exception as err:  # noqa: BLE001 -- any failure means: run eager
                self._fall_back(err)

    def _fall_back(self, err):
        warnings.warn(f"drawviz.fast: torch.compile failed ({type(err).__name__}: {err}); "
                      "running the fast path eagerly", RuntimeWarning, stacklevel=3)
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
    ps = [m.c0, m.h_enc0, m.h_dec0, m.encoder.weight_ih, m.encoder.bias_ih, m.encoder.weight_hh,
          m.encoder.bias_hh, m.decoder.weight_ih, m.decoder.bias_ih, m.decoder.weight_hh,
          m.decoder.bias_hh, m.q.weight, m.q.bias]
    if m.config.attention:
        ps += [m.read.params.weight, m.read.params.bias, m.write.params.weight, m.write.params.bias,
               m.write.patch.weight, m.write.patch.bias]
    else:
        ps += [m.write.linear.weight, m.write.linear.bias]
    return ps


class _Sequence(torch.autograd.Function):
    """All T steps as one autograd node: outputs (c_T (batch, C, H, W), μ (T, batch, z), log σ (T, batch, z))."""

    @staticmethod
    def forward(ctx, cfg, ops, box, x, eps, *params):
        st = _run(cfg, ops, x, eps, params)
        box["state"] = st
        ctx.cfg, ctx.st = cfg, st
        z = cfg.z_size
        q = st["Pe"][1:, :, :2 * z]
        return st["canvas"][-1].clone(), q[..., :z].clone(), q[..., z:].clone()

    @staticmethod
    def backward(ctx, d_canvas, d_mu, d_log_sigma):
        grads = _backprop(ctx.cfg, ctx.st, d_canvas, d_mu, d_log_sigma)
        ctx.st = None  # free the activations now, not when the graph dies
        return (None, None, None, None, None, *grads)


def _run(cfg, ops, x, eps, params):
    """Forward pass of eq. 3-8 for all steps; returns every activation backward needs."""
    attn = cfg.attention
    (c0, h_enc0, h_dec0, W_ih_enc, b_ih_enc, W_hh_enc, b_hh_enc, W_ih_dec, b_ih_dec, W_hh_dec,
     b_hh_dec, W_q, b_q, *att) = params
    T, Zs, E, D, C = cfg.T, cfg.z_size, cfg.enc_size, cfg.dec_size, cfg.channels
    B = x.shape[0]
    new = lambda *shape: x.new_empty(shape)

    # Fused h_dec GEMM, rows: [write params | write patch | read params | encoder (h_dec part) | decoder hh].
    # (No attention: [write linear | encoder (h_dec part) | decoder hh].)
    R = W_ih_enc.shape[1] - D  # read vector size
    W_r, W_hd = W_ih_enc[:, :R], W_ih_enc[:, R:]
    if attn:
        W_rp, b_rp, W_wp, b_wp, W_patch, b_patch = att
        Wd = torch.cat((W_wp[_PERM], W_patch, W_rp[_PERM], W_hd, W_hh_dec))
        bd = torch.cat((b_wp[_PERM], b_patch, b_rp[_PERM], b_ih_enc + b_hh_enc, b_ih_dec + b_hh_dec))
        nw = 5 + W_patch.shape[0]  # write columns
        n_read = 5
        rg = _Grid(cfg.read_n, cfg.width, cfg.height, x, ops)
        wg = _Grid(cfg.write_n, cfg.width, cfg.height, x, ops)
    else:
        W_lin, b_lin = att
        Wd = torch.cat((W_lin, W_hd, W_hh_dec))
        bd = torch.cat((b_lin, b_ih_enc + b_hh_enc, b_ih_dec + b_hh_dec))
        nw, n_read = W_lin.shape[0], 0
    col_r, col_e = nw, nw + n_read  # first read, encoder column
    col_d = col_e + 4 * E  # first decoder column
    # Fused h_enc GEMM, rows: [Q(z|h_enc) (μ, log σ) | encoder hh].
    We = torch.cat((W_q, W_hh_enc))
    be = torch.cat((b_q, b_q.new_zeros(4 * E)))

    Hd, Cd, Td = new(T + 1, B, D), new(T + 1, B, D), new(T, B, D)  # h_dec, c_dec, tanh(c_dec)
    He, Ce, Te = new(T + 1, B, E), new(T + 1, B, E), new(T, B, E)
    Ad, Ae = new(T, B, 4 * D), new(T, B, 4 * E)  # activated gates
    Pd, Pe = new(T + 1, B, Wd.shape[0]), new(T + 1, B, We.shape[0])  # the fused projections
    canvas = new(T + 1, B, C, cfg.height, cfg.width)  # logits c_0 .. c_T
    S = new(T, B, C, cfg.height, cfg.width)  # σ(c_{t-1})
    both = new(T, B, 2 * C, cfg.height, cfg.width)  # [x, x̂_t] per step
    sigma, Z = new(T, B, Zs), new(T, B, Zs)
    if not attn:  # x's share of the encoder input is the same every step: project it once
        W_x, W_r = W_r[:, :R // 2], W_r[:, R // 2:]
        bx = x.flatten(1) @ W_x.t()  # (B, 4E)
    Rv = new(T, B, W_r.shape[1])  # encoder read input r_t (no attention: its x̂ half)
    Hd[0], Cd[0], He[0], Ce[0], canvas[0] = h_dec0, 0, h_enc0, 0, c0
    both[:, :, :C] = x
    torch.addmm(bd, Hd[0], Wd.t(), out=Pd[0])
    torch.addmm(be[2 * Zs:], He[0], W_hh_enc.t(), out=Pe[0, :, 2 * Zs:])
    st = dict(ops=ops, attn=attn, x=x, eps=eps, Wd=Wd, We=We, W_r=W_r, W_ih_dec=W_ih_dec, Hd=Hd, Cd=Cd, Td=Td,
              He=He, Ce=Ce, Te=Te, Ad=Ad, Ae=Ae, Pd=Pd, Pe=Pe, canvas=canvas, S=S, both=both, Rv=Rv,
              sigma=sigma, Z=Z, nw=nw, col_r=col_r, col_e=col_e, col_d=col_d, R=R)
    if attn:
        N, M = cfg.read_n, cfg.write_n
        glimpse = Rv.view(T, B, 2 * C, N, N)
        st.update(rg=rg, wg=wg, glimpse=glimpse, read_win=new(T, B, 5), write_win=new(T, B, 5),
                  read_F=[], write_F=[], FyS=[], wFx=[])

    for t in range(T):
        torch.sigmoid(canvas[t], out=S[t])
        x_hat = torch.sub(x, S[t], out=both[t, :, C:])  # eq. 3
        pd, pe = Pd[t], Pe[t]
        gates_e = pd[:, col_e:col_d] + pe[:, 2 * Zs:]  # (B, 4E)
        if attn:  # eq. 4 and 27: r = γ [F_Y x F_Xᵀ, F_Y x̂ F_Xᵀ]
            win = rg.window(pd[:, col_r:col_e], out=st["read_win"][t])
            Fx, Fy, keep = rg.filters(win)
            FyS = torch.matmul(Fy[:, None], both[t])  # (B, 2C, N, A)
            torch.mul(torch.matmul(FyS, Fx.transpose(1, 2)[:, None]), win[:, 4, None, None, None],
                      out=glimpse[t])
            st["read_F"].append((Fx, Fy, keep))
            st["FyS"].append(FyS)
        else:  # eq. 17
            Rv[t] = x_hat.flatten(1)
            gates_e += bx
        gates_e.addmm_(Rv[t], W_r.t())
        _lstm(gates_e, Ce[t], Ae[t], Ce[t + 1], Te[t], He[t + 1])  # eq. 5
        pe = Pe[t + 1]
        torch.addmm(be, He[t + 1], We.t(), out=pe)
        mu, log_sigma = pe[:, :Zs], pe[:, Zs:2 * Zs]
        torch.exp(log_sigma, out=sigma[t])
        torch.addcmul(mu, sigma[t], eps[t], out=Z[t])  # eq. 6
        gates_d = torch.addmm(pd[:, col_d:], Z[t], W_ih_dec.t())
        _lstm(gates_d, Cd[t], Ad[t], Cd[t + 1], Td[t], Hd[t + 1])  # eq. 7
        if t + 1 < T:
            torch.addmm(bd, Hd[t + 1], Wd.t(), out=Pd[t + 1])
        else:  # c_T only needs the write columns
            torch.addmm(bd[:nw], Hd[t + 1], Wd[:nw].t(), out=Pd[t + 1, :, :nw])
        pd = Pd[t + 1]
        if attn:  # eq. 28-29: c_t = c_{t-1} + (1/γ) F_Yᵀ w F_X
            win = wg.window(pd[:, :5], out=st["write_win"][t])
            Fx, Fy, keep = wg.filters(win)
            w = pd[:, 5:nw].view(B, C, wg.N, wg.N)
            wFx = torch.matmul(w, Fx[:, None])  # (B, C, N, A)
            update = torch.matmul(Fy.transpose(1, 2)[:, None], wFx) / win[:, 4, None, None, None]
            st["write_F"].append((Fx, Fy, keep))
            st["wFx"].append(wFx)
        else:  # eq. 18
            update = pd[:, :nw].view_as(canvas[t])
        torch.add(canvas[t], update, out=canvas[t + 1])  # eq. 8
    return st


def _backprop(cfg, st, d_canvas, d_mu, d_log_sigma):
    """Backpropagation through time of _run; returns gradients in _param_list order."""
    attn, ops = st["attn"], st["ops"]
    T, Zs, E, C = cfg.T, cfg.z_size, cfg.enc_size, cfg.channels
    x, eps, Wd, We, W_r, W_ih_dec = st["x"], st["eps"], st["Wd"], st["We"], st["W_r"], st["W_ih_dec"]
    Hd, Cd, Td, He, Ce, Te, Ad, Ae = (st[k] for k in ("Hd", "Cd", "Td", "He", "Ce", "Te", "Ad", "Ae"))
    S, both, Rv, sigma, Z = st["S"], st["both"], st["Rv"], st["sigma"], st["Z"]
    nw, col_r, col_e, col_d = st["nw"], st["col_r"], st["col_e"], st["col_d"]
    B = x.shape[0]
    # dL/d(fused projections); every entry is written below except these never-used corners.
    dPd, dPe = torch.empty_like(st["Pd"]), torch.empty_like(st["Pe"])
    dPd[0, :, :nw], dPd[T, :, nw:], dPe[0, :, :2 * Zs], dPe[T, :, 2 * Zs:] = 0, 0, 0, 0
    dPe[1:, :, :Zs] = 0 if d_mu is None else d_mu
    dPe[1:, :, Zs:2 * Zs] = 0 if d_log_sigma is None else d_log_sigma
    dAd, dAe = dPd[:T, :, col_d:], dPe[:T, :, 2 * Zs:]  # dL/dgates, written in place
    dc = torch.zeros_like(S[0]) if d_canvas is None else d_canvas.clone()  # dL/dc_t
    dc_dec, dc_enc = Cd.new_zeros(Cd.shape[1:]), Ce.new_zeros(Ce.shape[1:])
    if attn:
        rg, wg, glimpse = st["rg"], st["wg"], st["glimpse"]
        N, M = rg.N, wg.N
    for t in reversed(range(T)):
        pd_grad = dPd[t + 1]
        if attn:  # write, eq. 28-29
            win = st["write_win"][t]
            Fx, Fy, keep = st["write_F"][t]
            wFx = st["wFx"][t]
            w = st["Pd"][t + 1, :, 5:nw].view(B, C, M, M)
            dU = dc / win[:, 4, None, None, None]
            U = torch.matmul(Fy.transpose(1, 2)[:, None], wFx)
            FydU = torch.matmul(Fy[:, None], dU)  # (B, C, M, A)
            pd_grad[:, 5:nw] = torch.matmul(FydU, Fx.transpose(1, 2)[:, None]).flatten(1)
            dFx = torch.einsum("bcnm,bcnw->bmw", w, FydU)
            dFy = torch.einsum("bcnw,bchw->bnh", wFx, dU)
            dg, ddelta, dsigma2 = wg.filters_backward(dFx, dFy, Fx, Fy, keep, win)
            dwin = torch.cat((dg, ddelta[:, None], dsigma2[:, None], -(dU * U).sum((1, 2, 3))[:, None]), 1)
            pd_grad[:, :5] = wg.window_backward(dwin, win)
        else:  # eq. 18
            pd_grad[:, :nw] = dc.flatten(1)
        dh = pd_grad @ Wd if t + 1 < T else pd_grad[:, :nw] @ Wd[:nw]
        dAd[t], dc_dec = ops.lstm_backward(dh, dc_dec, Ad[t], Cd[t], Td[t])  # eq. 7
        dz = dAd[t] @ W_ih_dec  # eq. 6: z = μ + σ ε
        pe_grad = dPe[t + 1]
        pe_grad[:, :Zs] += dz
        pe_grad[:, Zs:2 * Zs] += dz * eps[t] * sigma[t]
        dh = pe_grad @ We if t + 1 < T else pe_grad[:, :2 * Zs] @ We[:2 * Zs]
        dAe[t], dc_enc = ops.lstm_backward(dh, dc_enc, Ae[t], Ce[t], Te[t])  # eq. 5
        dPd[t, :, col_e:col_d] = dAe[t]
        dr = dAe[t] @ W_r
        if attn:  # read, eq. 27
            win = st["read_win"][t]
            Fx, Fy, keep = st["read_F"][t]
            dgl = dr.view(B, 2 * C, N, N)
            dG = dgl * win[:, 4, None, None, None]
            dGFx = torch.matmul(dG, Fx[:, None])  # (B, 2C, N, A)
            d_x_hat = torch.matmul(Fy.transpose(1, 2)[:, None], dGFx[:, C:])
            dFx = torch.einsum("bknm,bknw->bmw", dG, st["FyS"][t])
            dFy = torch.einsum("bknw,bkhw->bnh", dGFx, both[t])
            dg, ddelta, dsigma2 = rg.filters_backward(dFx, dFy, Fx, Fy, keep, win)
            dwin = torch.cat((dg, ddelta[:, None], dsigma2[:, None], (dgl * glimpse[t]).sum((1, 2, 3))[:, None]), 1)
            dPd[t, :, col_r:col_e] = rg.window_backward(dwin, win)
        else:
            d_x_hat = dr.view_as(dc)
        dc = dc - d_x_hat * S[t] * (1 - S[t])  # through x̂_t = x − σ(c_{t-1}), eq. 3

    # Weight gradients: one GEMM over all T·batch rows each.
    flat = lambda a: a.flatten(0, 1)
    dWd, dbd = flat(dPd).t() @ flat(Hd), dPd.sum((0, 1))
    dWe, dbe = flat(dPe).t() @ flat(He), dPe.sum((0, 1))
    dW_r = flat(dAe).t() @ flat(Rv)
    dW_ih_dec = flat(dAd).t() @ flat(Z)
    db_enc, db_dec = dbd[col_e:col_d], dbd[col_d:]
    if not attn:
        dW_r = torch.cat((dAe.sum(0).t() @ x.flatten(1), dW_r), 1)
    dW_ih_enc = torch.cat((dW_r, dWd[col_e:col_d]), 1)
    grads = [dc.sum(0), dPe[0].sum(0) @ We, dPd[0].sum(0) @ Wd,
             dW_ih_enc, db_enc, dWe[2 * Zs:], db_enc.clone(),
             dW_ih_dec, db_dec, dWd[col_d:], db_dec.clone(), dWe[:2 * Zs], dbe[:2 * Zs]]
    if attn:
        grads += [dWd[col_r:col_e][_PERM], dbd[col_r:col_e][_PERM], dWd[:5][_PERM], dbd[:5][_PERM],
                  dWd[5:nw], dbd[5:nw]]
    else:
        grads += [dWd[:nw], dbd[:nw]]
    return grads


# ---------------------------------------------------------------------------- the module

class FastDRAW(nn.Module):
    """DRAW's fast path: the same numbers and parameters as the wrapped model, several times faster.

    ``FastDRAW(model)(x, eps)`` returns the :class:`DrawOutput` of ``model(x, eps)`` up to float
    rounding; ``record`` receives the same (name, tensor) pairs, emitted after the pass.  The
    state_dict is the wrapped model's, so checkpoints load into either.
    """

    def __init__(self, model: DRAW, compile: bool = False, mode: Optional[str] = None):
        super().__init__()
        self.model = model
        self.ops = _Ops(compile, mode) if compile else _EAGER

    @property
    def config(self):
        return self.model.config

    def state_dict(self, *args, **kwargs):
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)

    def sample_eps(self, batch: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.model.sample_eps(batch, generator)

    def forward(self, x: torch.Tensor, eps: Optional[torch.Tensor] = None, *,
                generator: Optional[torch.Generator] = None, record: Optional[Recorder] = None,
                check: bool = True) -> DrawOutput:
        """As DRAW.forward (eq. 3-12); eps (T, batch, z_size) is drawn from ``generator`` when not given."""
        m, cfg = self.model, self.model.config
        if check:
            check_images(x, cfg)
        if eps is None:
            eps = m.sample_eps(x.shape[0], generator)
        box: dict = {}
        canvas, mu, log_sigma = _Sequence.apply(cfg, self.ops, box, x.detach(), eps.detach(), *_param_list(m))
        sigma = torch.exp(log_sigma)
        # KL(N(μ, σ²) || N(0, 1)) per step, eq. 11, for all steps at once: (T, batch).
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 2 * log_sigma - 1).sum(-1)
        nll = F.binary_cross_entropy_with_logits(canvas, x, reduction="none").flatten(1).sum(1)  # eq. 9
        if record is not None:
            _emit(record, box["state"], mu.detach(), kl.detach(), cfg)
        return DrawOutput((nll + kl.sum(0)).mean(), nll, kl, canvas)

    def generate(self, n: int, *, generator: Optional[torch.Generator] = None,
                 eps: Optional[torch.Tensor] = None, record: Optional[Recorder] = None) -> torch.Tensor:
        """Sampling (eq. 13-16) has no backward pass to speed up: the reference loop."""
        return self.model.generate(n, generator=generator, eps=eps, record=record)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, *, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Canvas sequence σ(c_t) while reconstructing x: (T, batch, C, H, W)."""
        frames = []
        self(x, generator=generator, record=lambda name, v: frames.append(torch.sigmoid(v))
             if name == "canvas" else None)
        return torch.stack(frames)


def _emit(record, st, mu, kl, cfg):
    """Replay the reference recorder calls, step by step, from the stored (T, ...) buffers."""
    B, C = st["x"].shape[0], cfg.channels
    canvas, both, sigma, Z = st["canvas"], st["both"], st["sigma"], st["Z"]
    for t in range(cfg.T):
        record("x_hat", both[t, :, C:])
        record("canvas", canvas[t + 1])
        record("mu", mu[t])
        record("sigma_z", sigma[t])
        record("z", Z[t])
        record("kl", kl[t])
        if st["attn"]:
            N, M = cfg.read_n, cfg.write_n
            record("read_window", st["read_win"][t])
            record("glimpse", st["glimpse"][t].view(B, 2, C, N, N))
            record("write_window", st["write_win"][t])
            record("write_patch", st["Pd"][t + 1, :, 5:st["nw"]].view(B, C, M, M))


def make_fast(model: DRAW, compile="auto", *, tf32: bool = False) -> FastDRAW:
    """The fast path for ``model``, sharing its parameters (the one switch train() needs).

    compile: True compiles the pointwise-heavy pieces (filterbanks, LSTM backward) with
    torch.compile (default mode: "reduce-overhead"'s CUDA graphs would overwrite outputs this
    module keeps across steps); a failure warns and runs eagerly.  "auto" compiles on CUDA only: on CPU the GEMMs dominate once the step is fused, and
    compiling costs more than a short run saves.  tf32: allow TF32 matmuls on CUDA (a global
    torch setting; changes results at the 1e-3 level).
    """
    device = next(model.parameters()).device
    if compile == "auto":
        compile = device.type == "cuda"
    if tf32 and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    return FastDRAW(model, compile=bool(compile))
