"""Record what DRAW does at every step, without touching the model.

``record`` (reconstruction) and ``record_generation`` (sampling from the prior) run the
model with a recorder attached and return a :class:`Trace`: a tidy pandas DataFrame,
one row per (sample, step, op) with the pixel-space attention parameters, plus
numpy arrays whose first axis is time.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch

from . import quantities as Q
from .attention import Window
from .geometry import edit_area

__all__ = ["Trace", "Recorder", "record", "record_generation", "trace_bytes", "check_memory", "FRAME_COLUMNS",
           "STEP_COLUMNS"]

# Columns of Trace.frame: one row per (sample, step, op). sigma is the filter standard deviation √σ² (pixels).
FRAME_COLUMNS = ["mode", "sample", "step", "op", "g_x", "g_y", "delta", "sigma", "gamma"]
# Columns of Trace.steps: one row per (sample, step); the KL lives here once, not on each op's row.
STEP_COLUMNS = ["mode", "sample", "step", "kl", "kl_bits", "edit_area"]
_OPS = {"read": Q.READ_WINDOW, "write": Q.WRITE_WINDOW}


class Recorder:
    """A tap (drawviz.quantities) that keeps every value and returns it unchanged; stacks time first."""

    def __init__(self):
        self._steps: dict[str, list] = defaultdict(list)
        self._stacked: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, step: int, value):
        # detach + keep on device: copying to the host happens once, after the pass.
        self._steps[name].append(value.map(torch.Tensor.detach) if isinstance(value, Window) else value.detach())
        return value

    def record_steps(self, name: str, values: torch.Tensor) -> None:
        """All steps at once, time first (T, batch, ...): the fast path's own buffers, not copied."""
        self._stacked[name] = values.detach()

    def arrays(self) -> dict:
        """name -> (T, batch, ...) numpy array; windows as a Window of (T, batch) arrays."""
        numpy = lambda v: v.float().cpu().numpy()
        out = {}
        for name, values in self._steps.items():
            if isinstance(values[0], Window):
                out[name] = Window(*(numpy(torch.stack(field)) for field in zip(*values)))
            else:
                out[name] = numpy(torch.stack(values))
        out.update({name: numpy(v) for name, v in self._stacked.items()})
        return out


@dataclass
class Trace:
    """A recorded pass. Arrays have time as the first axis: (T, batch, ...); names as in drawviz.quantities.

    frame: long-form DataFrame with FRAME_COLUMNS, one row per (sample, step, op) (empty without attention).
    steps: long-form DataFrame with STEP_COLUMNS, one row per (sample, step): KL (NaN when generating)
      and edit area. Sum KL from here (the frame has no KL, so a groupby cannot count it twice).
    windows: op ("read", "write") -> Window of (T, batch) arrays in pixels.
    canvas: σ(c_t), t = 1..T, (T, batch, C, H, W) probabilities.
    x_hat: error images x̂_t = x − σ(c_{t−1}), (T, batch, C, H, W); None for generation.
    glimpse: read output per step, (T, batch, 2, C, N, N) for [x, x̂]; None without reading.
    write_patch: w_t, (T, batch, C, N, N) (without attention: the whole update).
    kl: (T, batch) nats; None for generation.
    edit_area: (T, batch) the share of pixels that receives 90 % of the step's canvas change
      |c_t − c_{t−1}| before the sigmoid (drawviz.geometry.edit_area).
    """

    mode: str
    frame: pd.DataFrame
    canvas: np.ndarray
    x: Optional[np.ndarray] = None
    x_hat: Optional[np.ndarray] = None
    glimpse: Optional[np.ndarray] = None
    write_patch: Optional[np.ndarray] = None
    kl: Optional[np.ndarray] = None
    z: Optional[np.ndarray] = None
    mu: Optional[np.ndarray] = None
    sigma_z: Optional[np.ndarray] = None
    h_enc: Optional[np.ndarray] = None
    h_dec: Optional[np.ndarray] = None
    loss: Optional[float] = None
    windows: dict = field(default_factory=dict)  # op -> Window of (T, batch) arrays
    edit_area: Optional[np.ndarray] = None
    steps: Optional[pd.DataFrame] = None
    recon_nll: Optional[np.ndarray] = None  # (T, batch) −log D(x | c_t), from interventions.run_with_hooks
    hooks: tuple = ()  # the quantities hooked (interventions.run_with_hooks)

    @property
    def T(self) -> int:
        return self.canvas.shape[0]

    @property
    def batch(self) -> int:
        return self.canvas.shape[1]


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


def _steps(mode: str, kl: Optional[np.ndarray], edit: np.ndarray) -> pd.DataFrame:
    T, batch = edit.shape
    step, sample = np.meshgrid(np.arange(1, T + 1), np.arange(batch), indexing="ij")
    kl = np.full((T, batch), np.nan) if kl is None else kl
    frame = pd.DataFrame({"mode": mode, "sample": sample.ravel(), "step": step.ravel(), "kl": kl.ravel(),
                          "kl_bits": kl.ravel() / np.log(2), "edit_area": edit.ravel()})
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


def trace_of(model, mode: str, arrays: dict, *, x: Optional[torch.Tensor] = None, loss=None,
             canvas: Optional[np.ndarray] = None) -> Trace:
    """A Trace from a recorder's arrays (Recorder.arrays) of one pass of ``mode``."""
    windows, kl = _windows(arrays), arrays.get(Q.KL)
    edit = _edit_area(model, arrays[Q.CANVAS])
    if canvas is None:  # σ(c_t) in place: the recorder's own (T, batch, ...) array, no second copy
        canvas = torch.sigmoid_(torch.from_numpy(arrays[Q.CANVAS])).numpy()
    return Trace(mode=mode, frame=_frame(mode, windows), canvas=canvas,
                 x=None if x is None else x.detach().float().cpu().numpy(), x_hat=arrays.get(Q.X_HAT),
                 glimpse=arrays.get(Q.GLIMPSE), write_patch=arrays.get(Q.WRITE_PATCH), kl=kl, z=arrays.get(Q.Z),
                 mu=arrays.get(Q.MU), sigma_z=arrays.get(Q.SIGMA_Z), h_enc=arrays.get(Q.H_ENC),
                 h_dec=arrays.get(Q.H_DEC), loss=loss, windows=windows, edit_area=edit, steps=_steps(mode, kl, edit))


def _generator(model, seed, generator):
    if generator is None and seed is not None:
        generator = torch.Generator(next(model.parameters()).device).manual_seed(seed)
    return generator


def trace_bytes(config, batch: int, mode: str = Q.RECONSTRUCTION) -> int:
    """About how much memory a recorded Trace of ``batch`` images holds (every declared quantity, time first,
    float32, plus the edit-area and frame tables)."""
    floats = 0
    for name in Q.available(config, mode):
        shape = Q.expected_shape(name, config, 1)
        floats += (5 if Q.is_window(name) else 1) * int(np.prod(shape))
    frames = 2 * 9 * 8 if config.attention else 0  # the long-form frame: one row of 9 columns per op
    return config.T * batch * (4 * floats + 8 + frames)


def _available_memory() -> Optional[int]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def check_memory(config, batch: int, mode: str = Q.RECONSTRUCTION) -> None:
    """Refuse a recording that would not fit in the memory this machine has free, saying how much it needs."""
    needed, free = trace_bytes(config, batch, mode), _available_memory()
    if free is not None and needed > 0.8 * free:
        fits = max(1, int(0.8 * free / max(needed / batch, 1)))
        raise MemoryError(f"recording {batch:,} images of T = {config.T} steps would hold about {needed / 2**30:.1f} GiB "
                          f"of arrays, and this machine has {free / 2**30:.1f} GiB free: record at most about "
                          f"{fits:,} images at once (a figure needs far fewer; diagnostics are stable from a few hundred)")


def _fill(into: dict, part: dict, rows: slice, batch: int) -> dict:
    """Copy one chunk's (T, chunk, ...) arrays into the whole recording's (T, batch, ...) arrays."""
    for name, value in part.items():
        if isinstance(value, Window):
            if name not in into:
                into[name] = Window(*(np.empty((f.shape[0], batch, *f.shape[2:]), f.dtype) for f in value))
            for whole, piece in zip(into[name], value):
                whole[:, rows] = piece
        else:
            if name not in into:
                into[name] = np.empty((value.shape[0], batch, *value.shape[2:]), value.dtype)
            into[name][:, rows] = value
    return into


@torch.no_grad()
def record(model, x: torch.Tensor, *, seed: Optional[int] = 0,
           generator: Optional[torch.Generator] = None, chunk: int = 500) -> Trace:
    """Reconstruct x with a recorder attached. The loss equals an unrecorded pass with the same seed.

    Large x is run ``chunk`` images at a time (the same ε as one pass), and a recording that would not fit
    in free memory is refused before it starts."""
    if isinstance(x, np.ndarray):  # taken as meant: float32 images like the model's
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    batch = x.shape[0]
    check_memory(model.config, batch)
    device = next(model.parameters()).device
    generator = _generator(model, seed, generator)
    if batch <= chunk:
        rec = Recorder()
        out = model(x.to(device), generator=generator, tap=rec)
        return trace_of(model, Q.RECONSTRUCTION, rec.arrays(), x=x, loss=float(out.loss))
    eps = model.sample_eps(batch, generator)  # as one pass would draw it
    arrays, loss = {}, 0.0
    for i in range(0, batch, chunk):
        rows = slice(i, min(i + chunk, batch))
        rec = Recorder()
        out = model(x[rows].to(device), eps[:, rows], tap=rec)
        _fill(arrays, rec.arrays(), rows, batch)
        loss += float(out.loss) * (rows.stop - rows.start)
    return trace_of(model, Q.RECONSTRUCTION, arrays, x=x, loss=loss / batch)


@torch.no_grad()
def record_generation(model, n: int, *, seed: Optional[int] = 0,
                      generator: Optional[torch.Generator] = None) -> Trace:
    """Sample n images from the prior with a recorder attached (write ops only)."""
    check_memory(model.config, n, Q.GENERATION)
    rec = Recorder()
    canvases = model.generate(n, generator=_generator(model, seed, generator), tap=rec)
    return trace_of(model, Q.GENERATION, rec.arrays(), canvas=canvases.float().cpu().numpy())
