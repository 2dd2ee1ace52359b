"""Record what DRAW does at every step, without touching the model.

``run`` is the one pass: the reference model (or its fast path) with a recorder attached and optional
hooks that change a quantity as it is computed. ``record`` (reconstruction) and ``record_generation``
(sampling from the prior) are ``run`` without hooks. Each returns a :class:`drawviz.trace.Trace`: the
declared quantities time first, with tidy tables of the attention parameters per (sample, step, op).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from . import kinds as _kinds
from . import quantities as Q
from .attention import Window
from .fast import INTERVENTION_REFUSED, FastDRAW
from .model import check_images
from .trace import Trace, check_memory, trace_of

__all__ = ["Recorder", "run", "record", "record_generation", "InterventionError"]  # Trace and its tables: drawviz.trace


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


def _generator(model, seed, generator):
    if generator is None and seed is not None:
        generator = torch.Generator(next(model.parameters()).device).manual_seed(seed)
    return generator


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
        weight = next(model.parameters())
        self.dtype, self.device = weight.dtype, weight.device
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
            arm = Q.QUANTITIES[name].arm
            if Q.QUANTITIES[name].attention_only and not config.attention:
                why = "a model without attention has no windows or glimpses"
            elif arm is not None and getattr(config, arm[0], None) != arm[1]:
                why = f"only a model with {arm[0]}={arm[1]!r} computes it"
            else:
                why = f"a {mode} pass does not compute it"
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
    labels=None,
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
    labels: what a conditional model is asked to draw, one per image (drawviz.conditional: class ids, or caption
      token ids (batch, words)); a model that takes none refuses them.
    """
    if (x is None) == (n is None):
        raise InterventionError("give either images x (a reconstruction) or n (samples from the prior)")
    mode = Q.RECONSTRUCTION if x is not None else Q.GENERATION
    config = model.config
    if mode == Q.GENERATION and not isinstance(model, FastDRAW):
        missing = _kinds.lacks(model, "sampling from the prior")
        if missing:
            raise InterventionError(missing)
    items = _hook_list(hooks, config, mode)
    if items and isinstance(model, FastDRAW):
        raise TypeError(INTERVENTION_REFUSED)
    x, target = _as_images(x, "x"), _as_images(target, "target")
    if x is not None:  # the images first: a wrong x must not be reported as a wrong target
        check_images(x, config)
    batch = x.shape[0] if x is not None else n
    measure = bool(items or target is not None) if measure is None else measure
    check_memory(config, batch, mode, chunked=x is not None and not items and not measure and batch > chunk)
    device = next(model.parameters()).device
    generator = _generator(model, seed, generator)
    if x is not None:
        x = x.to(device)
        if eps is None:  # as model.forward draws it
            eps = model.sample_eps(batch, generator)
    target = x if target is None else target.to(device)
    if target is not None and tuple(target.shape) != (batch, *config.image_shape):
        raise InterventionError(
            f"target must have the shape of the images drawn, {(batch, *config.image_shape)}; got {tuple(target.shape)}"
        )
    if x is not None and not items and not measure and batch > chunk:  # large and plain: in chunks, the same numbers
        arrays, loss, logits = {}, 0.0, []
        for i in range(0, batch, chunk):
            rows = slice(i, min(i + chunk, batch))
            rec = Recorder()
            out = model(x[rows], eps[:, rows], tap=rec, **_given(labels, rows))
            _fill(arrays, rec.arrays(), rows, batch)
            loss += float(out.loss) * (rows.stop - rows.start)
            logits.append(_logits(out))
        logits = np.concatenate(logits) if logits[0] is not None else None
        return trace_of(model, mode, arrays, x=x, loss=loss / batch, logits=logits)
    errors, scale = [], []  # scale: s_t of a model that draws its likelihood's log-scale (tapped before c_t)

    def error(name, t, value):  # −log D(target | c_t): what the drawing so far leaves unexplained
        if name == Q.SCALE_CANVAS:
            scale[:] = [value]
        elif name == Q.CANVAS:
            errors.append(model.nll(value, target, *scale))

    extra = error if measure and target is not None else None
    tap = _Tap(items, model, batch, extra=extra) if items or extra else Recorder()
    recorder = tap.recorder if isinstance(tap, _Tap) else tap
    if x is not None:
        out = model(x, eps, tap=tap, **_given(labels))
        trace_args = dict(x=x, loss=float(out.loss), logits=_logits(out))
    else:
        canvases = model.generate(n, generator=generator, eps=eps, tap=tap, **_given(labels))
        trace_args = dict(canvas=canvases.float().cpu().numpy())
    recon = torch.stack(errors).float().cpu().numpy() if errors else None  # (T, batch)
    return trace_of(model, mode, recorder.arrays(), recon_nll=recon, hooks=tuple(name for name, _ in items), **trace_args)


def _given(labels, rows: slice = slice(None)) -> dict:
    """The ``labels=`` of a pass (of its rows), or nothing: a model that takes none is called as it always was."""
    return {} if labels is None else {"labels": labels[rows]}


def _logits(out) -> Optional[np.ndarray]:
    """A classifier's class scores (batch, classes) from its output; None for a generator's."""
    logits = getattr(out, "logits", None)
    return None if logits is None else logits.float().cpu().numpy()


def record(
    model, x: torch.Tensor, *, seed: Optional[int] = 0, generator: Optional[torch.Generator] = None, chunk: int = 500
) -> Trace:
    """Reconstruct x with a recorder attached (``run`` without hooks). The loss equals an unrecorded pass
    with the same seed."""
    return run(model, x, seed=seed, generator=generator, chunk=chunk)


def record_generation(model, n: int, *, seed: Optional[int] = 0, generator: Optional[torch.Generator] = None) -> Trace:
    """Sample n images from the prior with a recorder attached (``run`` without hooks; write ops only)."""
    return run(model, n=n, seed=seed, generator=generator)
