"""Record what DRAW does at every step, without touching the model.

``record`` (reconstruction) and ``record_generation`` (sampling from the prior) run the
model with a recorder attached and return a :class:`Trace`: a tidy pandas DataFrame,
one row per (sample, step, op) with the pixel-space attention parameters, plus
numpy arrays whose first axis is time.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Callable, Mapping, Sequence, Union
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch

from . import quantities as Q
from .attention import Window
from .fast import INTERVENTION_REFUSED, FastDRAW
from .geometry import edit_area
from .model import check_images

__all__ = [
    "Trace",
    "Recorder",
    "run",
    "record",
    "record_generation",
    "InterventionError",
    "trace_bytes",
    "check_memory",
    "FRAME_COLUMNS",
    "STEP_COLUMNS",
]

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

    def __getitem__(self, name: str):
        if name == Q.CANVAS:
            return self.canvas
        if name not in self.arrays:
            raise KeyError(f"this {self.mode} trace holds {', '.join(self.names)}; not {name!r}")
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name == Q.CANVAS or name in self.arrays

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
        return self.canvas.shape[0]

    @property
    def batch(self) -> int:
        return self.canvas.shape[1]

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


def _steps(mode: str, kl: Optional[np.ndarray], edit: np.ndarray) -> pd.DataFrame:
    T, batch = edit.shape
    step, sample = np.meshgrid(np.arange(1, T + 1), np.arange(batch), indexing="ij")
    kl = np.full((T, batch), np.nan) if kl is None else kl
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
) -> Trace:
    """A Trace from a recorder's arrays (Recorder.arrays) of one pass of ``mode``."""
    arrays = dict(arrays)
    logits = arrays.pop(Q.CANVAS)
    windows, kl = _windows(arrays), arrays.get(Q.KL)
    edit = _edit_area(model, logits)
    if canvas is None:  # σ(c_t) in place: the recorder's own (T, batch, ...) array, no second copy
        canvas = torch.sigmoid_(torch.from_numpy(logits)).numpy()
    steps = _steps(mode, kl, edit)
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
    )


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
        raise MemoryError(
            f"recording {batch:,} images of T = {config.T} steps would hold about {needed / 2**30:.1f} GiB "
            f"of arrays, and this machine has {free / 2**30:.1f} GiB free: record at most about "
            f"{fits:,} images at once (a figure needs far fewer; diagnostics are stable from a few hundred)"
        )


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


# ----------------------------------------------------------------------------- the one runner

Hook = Callable[[object, int], object]  # fn(value, t) -> replacement or None
Hooks = Union[Sequence[tuple[str, Hook]], Mapping[str, Hook]]


class InterventionError(ValueError):
    """A hook that names no declared quantity, or returns a value of the wrong kind or shape."""


class _Tap:
    """The hooks as one tap (drawviz.quantities): apply them in order, check, record the result."""

    intervenes = True  # the fast path refuses taps that say so (it cannot change a step)

    def __init__(self, hooks: list[tuple[str, Hook]], model, batch: int, extra: Optional[Callable] = None):
        self.hooks, self.config, self.batch, self.extra = hooks, model.config, batch, extra
        self.dtype, self.device = model.c0.dtype, model.c0.device
        self.recorder = Recorder()

    def __call__(self, name: str, t: int, value):
        for hooked, fn in self.hooks:
            if hooked == name:
                new = fn(value, t)
                if new is not None:
                    value = self._check(name, t, new, fn)
        if self.extra is not None:
            self.extra(name, t, value)
        return self.recorder(name, t, value)

    def _check(self, name: str, t: int, new, fn):
        expected = Q.expected_shape(name, self.config, self.batch)
        label = f"the hook {getattr(fn, '__name__', fn)!r} on {name!r} at step {t}"
        if Q.is_window(name):
            if not isinstance(new, Window):
                raise InterventionError(
                    f"{label} returned {type(new).__name__}; a window must stay a "
                    "drawviz.attention.Window (use window._replace(g_x=...))"
                )
            try:
                return new.map(lambda v: torch.as_tensor(v, dtype=self.dtype, device=self.device).expand(expected))
            except RuntimeError as err:
                raise InterventionError(f"{label} returned a window whose fields are not scalars or {expected}: {err}") from None
        if not isinstance(new, torch.Tensor):
            raise InterventionError(f"{label} returned {type(new).__name__}, not a tensor of shape {expected}")
        if tuple(new.shape) != expected:
            raise InterventionError(
                f"{label} returned shape {tuple(new.shape)}; {name} is {expected} ({Q.QUANTITIES[name].shape})"
            )
        return new.to(self.dtype)


def _hook_list(hooks: Optional[Hooks], config, mode: str) -> list[tuple[str, Hook]]:
    items = list(hooks.items()) if isinstance(hooks, Mapping) else list(hooks or [])
    available = Q.available(config, mode)
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and callable(item[1])):
            raise InterventionError(f"a hook is a (name, fn) pair with fn(value, t), got {item!r}")
        name = item[0]
        if name not in Q.QUANTITIES:
            raise InterventionError(
                f"no quantity is called {name!r}; the declared ones (drawviz.quantities): {', '.join(Q.QUANTITIES)}"
            )
        if name not in available:
            why = (
                "a model without attention has no windows or glimpses"
                if Q.QUANTITIES[name].attention_only and not config.attention
                else f"a {mode} pass does not compute it"
            )
            raise InterventionError(f"{name!r} cannot be hooked here: {why}; this pass computes {', '.join(available)}")
        beyond = sorted(t for t in (getattr(item[1], "steps", None) or ()) if t > config.T)
        if beyond:  # it would never act: the run would look like an intervention with no effect
            raise InterventionError(
                f"the hook on {name!r} acts at step {', '.join(map(str, beyond))}, but this model "
                f"draws in T = {config.T} steps (t = 1..{config.T})"
            )
    return items


def _as_images(x, name: str):
    """Images given as a numpy array are taken as they are meant (float32, like the model)."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if x is not None and not isinstance(x, torch.Tensor):
        raise InterventionError(f"{name} must be images, a (batch, C, H, W) tensor or numpy array; got {type(x).__name__}")
    return x


@torch.no_grad()
def run(
    model,
    x: Optional[torch.Tensor] = None,
    *,
    n: Optional[int] = None,
    hooks: Optional[Hooks] = None,
    eps: Optional[torch.Tensor] = None,
    seed: Optional[int] = 0,
    generator: Optional[torch.Generator] = None,
    target: Optional[torch.Tensor] = None,
    measure: Optional[bool] = None,
    chunk: int = 500,
) -> Trace:
    """Run the model once, reconstructing x or drawing n samples from the prior, and return the Trace of every
    declared quantity; recording is running without hooks.

    hooks: [(name, fn), ...] or {name: fn}; fn(value, t) returns a replacement or None (drawviz.interventions
      has helpers). Several hooks on one name apply in order. Windows are Windows in pixels (fields may be
      scalars: they are broadcast over the batch). The fast path records, but refuses hooks.
    eps: (T, batch, z_size); by default drawn from ``seed`` as the model would (the same ε for the same seed,
      hooked or not).
    target: images to measure the canvas against (default x): ``recon_nll`` (T, batch) and the steps column of
      that name hold −log D(target | c_t), the error left if the drawing stopped at step t; measured when
      ``measure`` (default: when hooks or a target are given).
    chunk: a reconstruction without hooks or target runs this many images at a time (with one pass's ε), and
      one that would not fit in free memory is refused before it starts.
    """
    if (x is None) == (n is None):
        raise InterventionError("give either images x (a reconstruction) or n (samples from the prior)")
    mode = Q.RECONSTRUCTION if x is not None else Q.GENERATION
    config = model.config
    items = _hook_list(hooks, config, mode)
    if items and isinstance(model, FastDRAW):
        raise TypeError(INTERVENTION_REFUSED)
    x, target = _as_images(x, "x"), _as_images(target, "target")
    if x is not None:  # the images first: a wrong x must not be reported as a wrong target
        check_images(x, config)
    batch = x.shape[0] if x is not None else n
    check_memory(config, batch, mode)
    device = next(model.parameters()).device
    generator = _generator(model, seed, generator)
    if x is not None:
        x = x.to(device)
        if eps is None:  # as model.forward draws it
            eps = model.sample_eps(batch, generator)
    measure = bool(items or target is not None) if measure is None else measure
    target = x if target is None else target.to(device)
    if target is not None and tuple(target.shape) != (batch, *config.image_shape):
        raise InterventionError(
            f"target must have the shape of the images drawn, {(batch, *config.image_shape)}; got {tuple(target.shape)}"
        )
    if x is not None and not items and not measure and batch > chunk:  # large and plain: in chunks, the same numbers
        arrays, loss = {}, 0.0
        for i in range(0, batch, chunk):
            rows = slice(i, min(i + chunk, batch))
            rec = Recorder()
            out = model(x[rows], eps[:, rows], tap=rec)
            _fill(arrays, rec.arrays(), rows, batch)
            loss += float(out.loss) * (rows.stop - rows.start)
        return trace_of(model, mode, arrays, x=x, loss=loss / batch)
    errors = []

    def error(name, t, value):  # −log D(target | c_t): what the drawing so far leaves unexplained
        if name == Q.CANVAS:
            errors.append(model.nll(value, target))

    extra = error if measure and target is not None else None
    tap = _Tap(items, model, batch, extra=extra) if items or extra else Recorder()
    recorder = tap.recorder if isinstance(tap, _Tap) else tap
    if x is not None:
        out = model(x, eps, tap=tap)
        trace_args = dict(x=x, loss=float(out.loss))
    else:
        canvases = model.generate(n, generator=generator, eps=eps, tap=tap)
        trace_args = dict(canvas=canvases.float().cpu().numpy())
    recon = torch.stack(errors).float().cpu().numpy() if errors else None  # (T, batch)
    return trace_of(model, mode, recorder.arrays(), recon_nll=recon, hooks=tuple(name for name, _ in items), **trace_args)


def record(
    model, x: torch.Tensor, *, seed: Optional[int] = 0, generator: Optional[torch.Generator] = None, chunk: int = 500
) -> Trace:
    """Reconstruct x with a recorder attached (``run`` without hooks). The loss equals an unrecorded pass
    with the same seed."""
    return run(model, x, seed=seed, generator=generator, chunk=chunk)


def record_generation(model, n: int, *, seed: Optional[int] = 0, generator: Optional[torch.Generator] = None) -> Trace:
    """Sample n images from the prior with a recorder attached (``run`` without hooks; write ops only)."""
    return run(model, n=n, seed=seed, generator=generator)
