"""Run DRAW with hooks that read and may replace any declared per-step quantity.

In the spirit of TransformerLens's ``run_with_hooks``: ``run_with_hooks(model, x, hooks=[(name,
fn), ...])`` reconstructs x (or, without x, draws ``n`` samples from the prior) with the reference
model, calling ``fn(value, t)`` for the quantity ``name`` (drawviz.quantities) at every step t = 1..T.
A hook returns a replacement, or None to leave the value as it is; the rest of the pass uses what it
returns. The noise ε is the same as ``probes.record(model, x, seed=seed)`` draws unless ``eps`` is
given, so a hooked run differs from the plain one only by the intervention.

Hooks live only for the call: they are passed in, never registered on the model, so nothing can
outlive the call, also when a hook raises.

The helpers build common hooks: ``set_window`` (place the read or write window at step t in
pixels), ``scale_gamma``, ``freeze_window`` (attention off from step t: the window of step t is
kept), ``set_z`` (fix z_t), ``zero_write``.
"""
from __future__ import annotations

import numbers
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from . import quantities as Q
from .attention import Window
from .fast import FastDRAW, INTERVENTION_REFUSED
from .model import check_images
from .probes import Recorder, Trace, _generator, trace_of

__all__ = ["run_with_hooks", "InterventionError", "Hook", "set_window", "scale_gamma", "freeze_window", "set_z",
           "zero_write", "at_steps"]

Hook = Callable[[object, int], object]  # fn(value, t) -> replacement or None
Hooks = Union[Sequence[tuple[str, Hook]], Mapping[str, Hook]]


class InterventionError(ValueError):
    """A hook that names no declared quantity, or returns a value of the wrong kind or shape."""


def _is_step(t) -> bool:
    return isinstance(t, numbers.Integral) and not isinstance(t, bool) and t >= 1


def _steps(steps) -> Optional[frozenset]:
    """The steps a hook acts at, as plain ints (a Python or numpy integer, or several); None for every step."""
    if steps is None:
        return None
    if isinstance(steps, (np.ndarray, torch.Tensor)):
        steps = steps.tolist()
    steps = [steps] if not isinstance(steps, (list, tuple, set, frozenset, range)) else list(steps)
    if not steps or not all(_is_step(t) for t in steps):
        raise InterventionError(f"steps are t = 1..T, integers (the paper's numbering), got {steps!r}")
    return frozenset(int(t) for t in steps)


def _acting_at(hook: Hook, steps: Optional[frozenset]) -> Hook:
    """Mark a hook with the steps it acts at, so that a run can refuse steps its model does not have."""
    hook.steps = steps
    return hook


def at_steps(steps, fn: Hook) -> Hook:
    """fn at the given steps (an int or several, t = 1..T) only; the value unchanged elsewhere."""
    chosen = _steps(steps)
    return _acting_at(lambda value, t: fn(value, t) if t in chosen else None, chosen)


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
                raise InterventionError(f"{label} returned {type(new).__name__}; a window must stay a "
                                        "drawviz.attention.Window (use window._replace(g_x=...))")
            try:
                return new.map(lambda v: torch.as_tensor(v, dtype=self.dtype, device=self.device).expand(expected))
            except RuntimeError as err:
                raise InterventionError(f"{label} returned a window whose fields are not scalars or {expected}: "
                                        f"{err}") from None
        if not isinstance(new, torch.Tensor):
            raise InterventionError(f"{label} returned {type(new).__name__}, not a tensor of shape {expected}")
        if tuple(new.shape) != expected:
            raise InterventionError(f"{label} returned shape {tuple(new.shape)}; {name} is {expected} "
                                    f"({Q.QUANTITIES[name].shape})")
        return new.to(self.dtype)


def _hook_list(hooks: Optional[Hooks], config, mode: str) -> list[tuple[str, Hook]]:
    items = list(hooks.items()) if isinstance(hooks, Mapping) else list(hooks or [])
    available = Q.available(config, mode)
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and callable(item[1])):
            raise InterventionError(f"a hook is a (name, fn) pair with fn(value, t), got {item!r}")
        name = item[0]
        if name not in Q.QUANTITIES:
            raise InterventionError(f"no quantity is called {name!r}; the declared ones (drawviz.quantities): "
                                    f"{', '.join(Q.QUANTITIES)}")
        if name not in available:
            why = ("a model without attention has no windows or glimpses" if Q.QUANTITIES[name].attention_only
                   and not config.attention else f"a {mode} pass does not compute it")
            raise InterventionError(f"{name!r} cannot be hooked here: {why}; this pass computes "
                                    f"{', '.join(available)}")
        beyond = sorted(t for t in (getattr(item[1], "steps", None) or ()) if t > config.T)
        if beyond:  # it would never act: the run would look like an intervention with no effect
            raise InterventionError(f"the hook on {name!r} acts at step {', '.join(map(str, beyond))}, but this model "
                                    f"draws in T = {config.T} steps (t = 1..{config.T})")
    return items


@torch.no_grad()
def run_with_hooks(model, x: Optional[torch.Tensor] = None, *, n: Optional[int] = None,
                   hooks: Optional[Hooks] = None, eps: Optional[torch.Tensor] = None, seed: Optional[int] = 0,
                   generator: Optional[torch.Generator] = None, target: Optional[torch.Tensor] = None) -> Trace:
    """Reconstruct x (or draw n prior samples) with ``hooks``; return the Trace of what happened.

    hooks: [(name, fn), ...] or {name: fn}; fn(value, t) returns a replacement or None. Several hooks on
      one name apply in order. Windows are drawviz.attention.Window in pixels (fields may be given as
      scalars: they are broadcast over the batch).
    eps: (T, batch, z_size); by default the ε that ``probes.record`` (``record_generation``) draws with
      the same seed, so the unhooked run is the plain one.
    target: images to measure the canvas against (default x): the trace's ``recon_nll`` (T, batch) and
      its ``steps`` column of that name hold −log D(target | c_t), the error the canvas would leave if
      the drawing stopped at step t. Without x and target (plain sampling) there is none.
    """
    if isinstance(model, FastDRAW):
        raise TypeError(INTERVENTION_REFUSED)
    if (x is None) == (n is None):
        raise InterventionError("give either images x (a reconstruction) or n (samples from the prior)")
    mode = Q.RECONSTRUCTION if x is not None else Q.GENERATION
    config = model.config
    items = _hook_list(hooks, config, mode)
    device = next(model.parameters()).device
    generator = _generator(model, seed, generator)  # as probes.record draws it
    x, target = (_as_images(v, name) for v, name in ((x, "x"), (target, "target")))
    if x is not None:  # the images first: a wrong x must not be reported as a wrong target
        check_images(x, config)
    batch = x.shape[0] if x is not None else n
    if x is not None:
        x = x.to(device)
    target = x if target is None else target.to(device)
    if target is not None and tuple(target.shape) != (batch, *config.image_shape):
        raise InterventionError(f"target must have the shape of the images drawn, {(batch, *config.image_shape)}; "
                                f"got {tuple(target.shape)}")
    errors = []

    def error(name, t, value):  # −log D(target | c_t): what the drawing so far leaves unexplained
        if name == Q.CANVAS:
            errors.append(model.nll(value, target))

    tap = _Tap(items, model, batch, extra=error if target is not None else None)
    if x is not None:
        if eps is None:  # as model.forward draws it
            eps = model.sample_eps(batch, generator)
        out = model(x, eps, tap=tap)
        trace = trace_of(model, mode, tap.recorder.arrays(), x=x, loss=float(out.loss))
    else:
        canvases = model.generate(n, generator=generator, eps=eps, tap=tap)
        trace = trace_of(model, mode, tap.recorder.arrays(), canvas=canvases.float().cpu().numpy())
    if errors:
        trace.recon_nll = torch.stack(errors).float().cpu().numpy()  # (T, batch)
        trace.steps["recon_nll"] = trace.recon_nll.T.ravel()  # steps is sorted by (sample, step)
    trace.hooks = tuple(name for name, _ in items)
    return trace


# ----------------------------------------------------------------------------- common hooks

def set_window(op: str, steps, **fields) -> tuple[str, Hook]:
    """Place the read or write window at the given steps: any of g_x, g_y, delta, sigma2, gamma in pixels
    (scalars or (batch,) tensors); the fields not given keep the model's values."""
    unknown = set(fields) - set(Window._fields)
    if unknown:
        raise InterventionError(f"a window has the fields {', '.join(Window._fields)}; got {sorted(unknown)}")
    name = _window_name(op)
    _steps(steps)
    for key, value in fields.items():
        values = torch.as_tensor(np.asarray(value, dtype=np.float64))
        if (not torch.isfinite(values).all() or (key in ("sigma2", "gamma") and (values <= 0).any())
                or (key == "delta" and (values < 0).any())):
            raise InterventionError(f"set_window: {key} = {value!r} is no window the model could write: g_x, g_y "
                                    f"are finite pixel positions, delta ≥ 0, sigma2 and gamma finite and > 0")

    def place(window: Window, t: int) -> Window:
        return window._replace(**{k: torch.as_tensor(v, dtype=window.g_x.dtype, device=window.g_x.device)
                                  .expand_as(window.g_x) for k, v in fields.items()})

    place.__name__ = f"set_{op}_window"
    return name, at_steps(steps, place)


def scale_gamma(op: str, factor: float, steps=None) -> tuple[str, Hook]:
    """Multiply the window's intensity γ by ``factor`` (at the given steps, or every step)."""
    chosen = _steps(steps)
    return _window_name(op), _acting_at(lambda w, t: w._replace(gamma=w.gamma * factor)
                                        if chosen is None or t in chosen else None, chosen)


def freeze_window(op: str, from_step: int) -> tuple[str, Hook]:
    """Attention off from step ``from_step`` on: every later step reuses the window of that step."""
    if not _is_step(from_step):
        raise InterventionError(f"freeze_window takes the one step t = 1..T from which the window is kept, "
                                f"got {from_step!r}")
    start = int(from_step)
    kept = {}

    def freeze(window: Window, t: int):
        if t == start:
            kept["window"] = window
        return kept.get("window") if t > start else None

    freeze.__name__ = f"freeze_{op}_window"
    return _window_name(op), _acting_at(freeze, frozenset([start]))


def set_z(values: Mapping[int, torch.Tensor]) -> tuple[str, Hook]:
    """Fix z_t: {t: (batch, z_size) tensor}."""
    chosen = _steps(list(values))
    values = {int(t): torch.as_tensor(v) for t, v in values.items()}  # numpy arrays too
    return Q.Z, _acting_at(lambda z, t: values[t].to(z) if t in values else None, chosen)


def zero_write(steps) -> tuple[str, Hook]:
    """The given steps write nothing (their patch is zero, so is their canvas update)."""
    return Q.WRITE_PATCH, at_steps(steps, lambda w, t: torch.zeros_like(w))


def _as_images(x, name: str):
    """Images given as a numpy array are taken as they are meant (float32, like the model)."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if x is not None and not isinstance(x, torch.Tensor):
        raise InterventionError(f"{name} must be images, a (batch, C, H, W) tensor or numpy array; got {type(x).__name__}")
    return x


def _window_name(op: str) -> str:
    names = {"read": Q.READ_WINDOW, "write": Q.WRITE_WINDOW}
    if op not in names:
        raise InterventionError(f"op is 'read' or 'write', got {op!r}")
    return names[op]


def final_error(trace: Trace) -> float:
    """Mean −log D(x | c_T) over the images of a hooked reconstruction, in nats."""
    return float(np.mean(trace.recon_nll[-1]))
