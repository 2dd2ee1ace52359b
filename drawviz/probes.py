"""Record what DRAW does at every step, without touching the model.

``record`` (reconstruction) and ``record_generation`` (sampling from the prior) run the
model with a recorder attached and return a :class:`Trace`: a tidy pandas DataFrame,
one row per (sample, step, op) with the pixel-space attention parameters, plus
numpy arrays whose first axis is time.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
import torch

__all__ = ["Trace", "Recorder", "record", "record_generation", "FRAME_COLUMNS"]

# Columns of Trace.frame. sigma is the filter standard deviation √σ² (pixels).
FRAME_COLUMNS = ["mode", "sample", "step", "op", "g_x", "g_y", "delta", "sigma", "gamma", "kl"]
_WINDOW = ("g_x", "g_y", "delta", "sigma2", "gamma")  # order of the stacked window tensors


class Recorder:
    """Collects (name, tensor) pairs emitted once per step; stacks them with time first."""

    def __init__(self):
        self._steps: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._stacked: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, value: torch.Tensor) -> None:
        # detach + keep on device: copying to the host happens once, after the pass.
        self._steps[name].append(value.detach())

    def record_steps(self, name: str, values: torch.Tensor) -> None:
        """All steps at once, time first (T, batch, ...): the fast path's own buffers, not copied."""
        self._stacked[name] = values.detach()

    def arrays(self) -> dict[str, np.ndarray]:
        out = {name: torch.stack(vs).float().cpu().numpy() for name, vs in self._steps.items()}
        out.update({name: v.float().cpu().numpy() for name, v in self._stacked.items()})
        return out


@dataclass
class Trace:
    """A recorded pass. Arrays have time as the first axis: (T, batch, ...).

    frame: long-form DataFrame with FRAME_COLUMNS (empty without attention).
    canvas: σ(c_t), t = 1..T, (T, batch, C, H, W) probabilities.
    x_hat: error images x̂_t = x − σ(c_{t−1}), (T, batch, C, H, W); None for generation.
    glimpse: read output per step, (T, batch, 2, C, N, N) for [x, x̂]; None without reading.
    write_patch: w_t, (T, batch, C, N, N).
    kl: (T, batch) nats; None for generation.
    edit_area: (T, batch) the share of pixels that receives 90 % of the step's canvas change
      |c_t − c_{t−1}| before the sigmoid (drawviz.diagnostics.edit_area).
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
    loss: Optional[float] = None
    windows: dict = field(default_factory=dict)  # op -> (T, batch, 5) in _WINDOW order
    edit_area: Optional[np.ndarray] = None

    @property
    def T(self) -> int:
        return self.canvas.shape[0]

    @property
    def batch(self) -> int:
        return self.canvas.shape[1]


def _frame(mode: str, windows: dict[str, np.ndarray], kl: Optional[np.ndarray]) -> pd.DataFrame:
    parts = []
    for op, w in windows.items():  # w: (T, batch, 5)
        T, batch, _ = w.shape
        step, sample = np.meshgrid(np.arange(1, T + 1), np.arange(batch), indexing="ij")
        part = {"mode": mode, "sample": sample.ravel(), "step": step.ravel(), "op": op}
        for k, name in enumerate(_WINDOW):
            part[name] = w[:, :, k].ravel()
        part["kl"] = kl.ravel() if kl is not None else np.nan
        parts.append(pd.DataFrame(part))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in FRAME_COLUMNS})
    frame = pd.concat(parts, ignore_index=True)
    frame["sigma"] = np.sqrt(frame.pop("sigma2"))
    frame["op"] = pd.Categorical(frame["op"], categories=["read", "write"])
    frame = frame[FRAME_COLUMNS].sort_values(["sample", "step", "op"], kind="stable")
    return frame.reset_index(drop=True)


def _windows(arrays: dict) -> dict[str, np.ndarray]:
    return {op: arrays[f"{op}_window"] for op in ("read", "write") if f"{op}_window" in arrays}


def _edit_area(model, logits: np.ndarray) -> np.ndarray:
    """(T, batch) edit areas from the canvas logits c_1..c_T (T, batch, C, H, W) and the model's c_0."""
    from .diagnostics import edit_area
    previous = getattr(model, "model", model).c0.detach().float().cpu().numpy()[None]  # c_0, learned
    areas = []
    for c_t in logits:  # one step at a time: a whole trace of float64 differences would be large
        areas.append(edit_area(c_t - previous))
        previous = c_t
    return np.stack(areas)


@torch.no_grad()
def record(model, x: torch.Tensor, *, seed: Optional[int] = 0,
           generator: Optional[torch.Generator] = None) -> Trace:
    """Reconstruct x with a recorder attached. The loss equals an unrecorded pass with the same seed."""
    device = next(model.parameters()).device
    if generator is None and seed is not None:
        generator = torch.Generator(device).manual_seed(seed)
    rec = Recorder()
    out = model(x.to(device), generator=generator, record=rec)
    a = rec.arrays()
    kl, windows = a["kl"], _windows(a)
    edit = _edit_area(model, a["canvas"])
    return Trace(
        mode="reconstruction", frame=_frame("reconstruction", windows, kl),
        # σ(c_t) in place: the recorder's own (T, batch, ...) array, no second copy
        canvas=torch.sigmoid_(torch.from_numpy(a["canvas"])).numpy(),
        x=x.detach().float().cpu().numpy(), x_hat=a["x_hat"],
        glimpse=a.get("glimpse"), write_patch=a.get("write_patch"), kl=kl, z=a["z"], mu=a["mu"],
        sigma_z=a["sigma_z"], loss=float(out.loss), windows=windows, edit_area=edit)


@torch.no_grad()
def record_generation(model, n: int, *, seed: Optional[int] = 0,
                      generator: Optional[torch.Generator] = None) -> Trace:
    """Sample n images from the prior with a recorder attached (write ops only)."""
    device = next(model.parameters()).device
    if generator is None and seed is not None:
        generator = torch.Generator(device).manual_seed(seed)
    rec = Recorder()
    canvases = model.generate(n, generator=generator, record=rec)
    a = rec.arrays()
    windows = _windows(a)
    return Trace(mode="generation", frame=_frame("generation", windows, None),
                 canvas=canvases.float().cpu().numpy(), write_patch=a.get("write_patch"),
                 z=a["z"], windows=windows, edit_area=_edit_area(model, a["canvas"]))
