"""A recorded pass of DRAW: every declared quantity (drawviz.quantities) by name, time first
(T, batch, ...), with the tidy tables a seaborn call can use. drawviz.probes makes them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch

from . import kinds as _kinds
from . import quantities as Q
from .attention import Window
from .geometry import edit_area

__all__ = ["Trace", "trace_of", "need", "trace_bytes", "check_memory", "FRAME_COLUMNS", "STEP_COLUMNS"]

# Columns of Trace.frame: one row per (sample, step, op). sigma is the filter standard deviation √σ² (pixels).
FRAME_COLUMNS = ["mode", "sample", "step", "op", "g_x", "g_y", "delta", "sigma", "gamma"]
# Columns of Trace.steps: one row per (sample, step); the KL lives here once, not on each op's row.
STEP_COLUMNS = ["mode", "sample", "step", "kl", "kl_bits", "edit_area"]
_OPS = {"read": Q.READ_WINDOW, "write": Q.WRITE_WINDOW}


def _quantity(name: str, doc: str = "") -> property:
    """A Trace attribute for a declared quantity: its array, None when the pass did not compute it."""
    return property(
        lambda self: self.arrays.get(name),
        lambda self, value: self.arrays.__setitem__(name, value),
        doc=doc or Q.QUANTITIES[name].meaning,
    )


class Trace:
    """A recorded pass: every declared quantity (drawviz.quantities) by name, time first (T, batch, ...).

    trace["z"], trace["write_window"], ...: the arrays as recorded (windows: a Window of (T, batch) arrays in
      pixels); properties for the common ones (x_hat, glimpse, write_patch, kl, z, mu, sigma_z, h_enc, h_dec).
    canvas: σ(c_t), t = 1..T, (T, batch, C, H, W) probabilities (trace["canvas"] too).
    windows: op ("read", "write") -> Window of (T, batch) arrays.
    frame: long-form DataFrame with FRAME_COLUMNS, one row per (sample, step, op) (empty without attention).
    steps: long-form DataFrame with STEP_COLUMNS, one row per (sample, step): KL (NaN when generating),
      edit area, and recon_nll when measured. Sum KL from here (the frame has no KL: a groupby cannot count it twice).
    edit_area: (T, batch) the share of pixels that receives 90 % of the step's canvas change
      |c_t − c_{t−1}| before the sigmoid (drawviz.geometry.edit_area).
    recon_nll: (T, batch) −log D(target | c_t) when the run measured it; hooks: the quantities hooked.
    logits: a classifier's class scores after its last glimpse, (batch, classes); None for a generator.
    canvas is None for a kind that draws nothing (the classifier); T and batch then come from its quantities.
    kind, config: the model's kind (drawviz.kinds) and config, when known: ``need`` says what the kind lacks.
    """

    def __init__(
        self,
        mode: str,
        frame: pd.DataFrame,
        canvas: np.ndarray,
        x: Optional[np.ndarray] = None,
        *,
        arrays: Optional[dict] = None,
        windows: Optional[dict] = None,
        loss: Optional[float] = None,
        edit_area: Optional[np.ndarray] = None,
        steps: Optional[pd.DataFrame] = None,
        recon_nll: Optional[np.ndarray] = None,
        hooks: tuple = (),
        logits: Optional[np.ndarray] = None,
        kind: Optional[str] = None,
        config=None,
        **quantities,
    ):
        self.mode, self.frame, self.canvas, self.x, self.loss = mode, frame, canvas, x, loss
        self.arrays = dict(arrays or {})
        self.arrays.update({name: v for name, v in quantities.items() if v is not None})
        unknown = set(self.arrays) - set(Q.QUANTITIES)
        if unknown:
            raise TypeError(f"a Trace holds the declared quantities ({', '.join(Q.QUANTITIES)}); got {sorted(unknown)}")
        for op, window in (windows or {}).items():
            self.arrays[_OPS[op]] = window
        self.edit_area, self.steps, self.recon_nll, self.hooks = edit_area, steps, recon_nll, tuple(hooks)
        self.logits = logits
        self.kind, self.config = kind, config

    def __getitem__(self, name: str):
        if name == Q.CANVAS:
            return self.canvas
        if name not in self.arrays:
            raise KeyError(f"this {self.mode} trace holds {', '.join(self.names)}; not {name!r}")
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return (name == Q.CANVAS and self.canvas is not None) or name in self.arrays

    @property
    def names(self) -> list[str]:
        """The quantities recorded, in step order."""
        return [name for name in Q.QUANTITIES if name in self]

    @property
    def windows(self) -> dict:
        return {op: self.arrays[name] for op, name in _OPS.items() if name in self.arrays}

    x_hat = _quantity(Q.X_HAT, "x̂_t = x − σ(c_{t−1}), (T, batch, C, H, W)")
    glimpse = _quantity(Q.GLIMPSE, "the read [x, x̂] glimpse, (T, batch, 2, C, N, N)")
    write_patch = _quantity(Q.WRITE_PATCH, "w_t, (T, batch, C, N, N)")
    kl = _quantity(Q.KL, "(T, batch) nats; None for generation")
    z, mu, sigma_z = _quantity(Q.Z), _quantity(Q.MU), _quantity(Q.SIGMA_Z)
    h_enc, h_dec = _quantity(Q.H_ENC), _quantity(Q.H_DEC)

    def need(self, what: str, *names: str) -> None:
        """Refuse, in one line (drawviz.kinds.lacks), ``what`` (a figure, a measure) made of quantities that the
        recorded model's kind never computes (a convvae's error images, a model without attention's windows);
        what a pass of the other mode leaves out is the caller's to say."""
        if self.kind is None or self.config is None:
            return
        from . import kinds

        said = kinds.lacks_in(kinds.get(self.kind), self.config, what, names)
        if said:
            raise ValueError(said)

    def replace(self, **changes) -> "Trace":
        """A copy (its own dict of arrays, the arrays shared) with attributes changed, e.g. x_hat=..."""
        new = copy.copy(self)
        new.arrays = dict(self.arrays)
        for name, value in changes.items():
            if not hasattr(new, name):
                raise AttributeError(f"a Trace has no {name!r}")
            setattr(new, name, value)
        return new

    @property
    def T(self) -> int:
        return self._timed.shape[0]

    @property
    def batch(self) -> int:
        return self._timed.shape[1]

    @property
    def _timed(self) -> np.ndarray:
        """An array of (T, batch, ...): the canvas, or for a kind that draws nothing its first quantity."""
        if self.canvas is not None:
            return self.canvas
        first = self.arrays[self.names[0]]
        return first.g_x if isinstance(first, Window) else first

    def __repr__(self) -> str:
        return f"Trace({self.mode}, T = {self.T}, batch = {self.batch}: {', '.join(self.names)})"


def _frame(mode: str, windows: dict[str, Window]) -> pd.DataFrame:
    parts = []
    for op, w in windows.items():  # each field (T, batch)
        T, batch = w.g_x.shape
        step, sample = np.meshgrid(np.arange(1, T + 1), np.arange(batch), indexing="ij")
        part = {"mode": mode, "sample": sample.ravel(), "step": step.ravel(), "op": op}
        part.update({name: value.ravel() for name, value in w._asdict().items()})
        parts.append(pd.DataFrame(part))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in FRAME_COLUMNS})
    frame = pd.concat(parts, ignore_index=True)
    frame["sigma"] = np.sqrt(frame.pop("sigma2"))
    frame["op"] = pd.Categorical(frame["op"], categories=list(_OPS))
    frame = frame[FRAME_COLUMNS].sort_values(["sample", "step", "op"], kind="stable")
    return frame.reset_index(drop=True)


def _steps(mode: str, kl: Optional[np.ndarray], edit: Optional[np.ndarray], T: int, batch: int) -> pd.DataFrame:
    step, sample = np.meshgrid(np.arange(1, T + 1), np.arange(batch), indexing="ij")
    kl = np.full((T, batch), np.nan) if kl is None else kl
    edit = np.full((T, batch), np.nan) if edit is None else edit  # a kind with no canvas edits nothing
    frame = pd.DataFrame(
        {
            "mode": mode,
            "sample": sample.ravel(),
            "step": step.ravel(),
            "kl": kl.ravel(),
            "kl_bits": kl.ravel() / np.log(2),
            "edit_area": edit.ravel(),
        }
    )
    return frame.sort_values(["sample", "step"], kind="stable").reset_index(drop=True)


def _windows(arrays: dict) -> dict[str, Window]:
    return {op: arrays[name] for op, name in _OPS.items() if name in arrays}


def _edit_area(model, logits: np.ndarray) -> np.ndarray:
    """(T, batch) edit areas from the canvas logits c_1..c_T (T, batch, C, H, W) and the model's c_0."""
    previous = getattr(model, "model", model).c0.detach().float().cpu().numpy()[None]  # c_0, learned
    areas = []
    for c_t in logits:  # one step at a time: a whole trace of float64 differences would be large
        areas.append(edit_area(c_t - previous))
        previous = c_t
    return np.stack(areas)


def trace_of(
    model,
    mode: str,
    arrays: dict,
    *,
    x: Optional[torch.Tensor] = None,
    loss=None,
    canvas: Optional[np.ndarray] = None,
    recon_nll: Optional[np.ndarray] = None,
    hooks: tuple = (),
    logits: Optional[np.ndarray] = None,
) -> Trace:
    """A Trace from a recorder's arrays (Recorder.arrays) of one pass of ``mode``."""
    arrays = dict(arrays)
    c_t = arrays.pop(Q.CANVAS, None)  # canvas logits (T, batch, C, H, W); None: a kind that draws nothing
    windows, kl = _windows(arrays), arrays.get(Q.KL)
    edit = _edit_area(model, c_t) if c_t is not None else None
    if canvas is None and c_t is not None:  # σ(c_t) in place: the recorder's own (T, batch, ...) array, no second copy
        canvas = torch.sigmoid_(torch.from_numpy(c_t)).numpy()
    first = next(iter(arrays.values())) if canvas is None else canvas
    T, batch = (first.g_x if isinstance(first, Window) else first).shape[:2]
    steps = _steps(mode, kl, edit, T, batch)
    if recon_nll is not None:
        steps["recon_nll"] = recon_nll.T.ravel()  # steps is sorted by (sample, step)
    return Trace(
        mode,
        _frame(mode, windows),
        canvas,
        None if x is None else x.detach().float().cpu().numpy(),
        arrays=arrays,
        loss=loss,
        edit_area=edit,
        steps=steps,
        recon_nll=recon_nll,
        hooks=hooks,
        logits=logits,
        kind=_kind_name(model),
        config=model.config,
    )


def need(trace, what: str, *names: str) -> None:
    """``trace.need(what, *names)`` for anything that holds a pass like a Trace (a stand-in without it: nothing said)."""
    method = getattr(trace, "need", None)
    if method is not None:
        method(what, *names)


def _kind_name(model) -> Optional[str]:
    """The name of the model's kind (of the fast path's wrapped model); None for a class no kind registers."""
    try:
        return _kinds.of(getattr(model, "model", model)).name
    except ValueError:
        return None


def trace_bytes(config, batch: int, mode: str = Q.RECONSTRUCTION) -> int:
    """About how much memory a recorded Trace of ``batch`` images holds (every declared quantity, time first,
    float32, plus the edit-area and frame tables)."""
    floats = 0
    for name in Q.available(config, mode):
        shape = Q.expected_shape(name, config, 1)
        floats += (5 if Q.is_window(name) else 1) * int(np.prod(shape))
    frames = 2 * 9 * 8 if config.attention else 0  # the long-form frame: one row of 9 columns per op
    return config.T * batch * (4 * floats + 8 + frames)


# what a recording holds at its peak against trace_bytes, measured (/tmp probes of mnist.pt, 400-3,000 images):
# 2.35x for a pass recorded whole (the recorder's tensors, their stacked copy, the numpy arrays), 1.4x for a
# plain record in chunks (the arrays are filled chunk by chunk); with a margin
PEAK = {"whole": 2.6, "chunked": 1.6}


def _meminfo(key: str) -> Optional[int]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _cgroup_room() -> Optional[int]:
    """What the cgroup (a container's memory limit) lets this process still use, v2 or v1."""
    for limit, used in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            cap = Path(limit).read_text().strip()
            if cap != "max" and int(cap) < 2**60:
                return int(cap) - int(Path(used).read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def _address_space_room() -> Optional[int]:
    """What ``ulimit -v`` (RLIMIT_AS) leaves of this process's address space."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return soft - int(line.split()[1]) * 1024
    except (ImportError, OSError, ValueError):
        pass
    return None


def _available_memory() -> Optional[int]:
    """The least of: the machine's available memory, the cgroup's room, ulimit -v's room."""
    rooms = [r for r in (_meminfo("MemAvailable"), _cgroup_room(), _address_space_room()) if r is not None]
    return min(rooms) if rooms else None


def check_memory(config, batch: int, mode: str = Q.RECONSTRUCTION, *, chunked: bool = False) -> None:
    """Refuse a recording that would not fit in the memory this process may still use (the machine's free
    memory, a container's limit, ulimit -v), saying how much it needs; chunked: a plain record made in chunks."""
    needed = trace_bytes(config, batch, mode) * PEAK["chunked" if chunked else "whole"]
    free = _available_memory()
    if free is not None and needed > 0.8 * free:
        fits = max(1, int(0.8 * free / max(needed / batch, 1)))
        raise MemoryError(
            f"recording {batch:,} images of T = {config.T} steps would need about {needed / 2**30:.1f} GiB "
            f"at its peak, and this process may use {max(free, 0) / 2**30:.1f} GiB more (free memory, container "
            f"and ulimit -v limits): record at most about {fits:,} images at once (a figure needs far fewer; "
            f"diagnostics are stable from a few hundred)"
        )
