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
kept), ``set_z`` (fix z_t), ``zero_write``; for a conditional model (drawviz.conditional) ``swap_condition``
(another label or caption from step t on) and ``attend_word`` (the caption alignment on one word).
"""

from __future__ import annotations

import numbers
from typing import Mapping, Optional

import numpy as np
import torch

from . import quantities as Q
from .attention import Window
from .probes import Hook, InterventionError, run
from .trace import Trace

__all__ = [
    "run_with_hooks",
    "InterventionError",
    "Hook",
    "set_window",
    "scale_gamma",
    "freeze_window",
    "set_z",
    "zero_write",
    "swap_condition",
    "attend_word",
    "at_steps",
]


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


def run_with_hooks(model, x=None, *, n=None, hooks=None, eps=None, seed=0, generator=None, target=None, labels=None) -> Trace:
    """The one runner (drawviz.probes.run) with ``hooks``, measuring −log D(target | c_t) at every step
    (``recon_nll``; target defaults to x): what the comparisons of an intervention read. labels: a conditional
    model's condition."""
    return run(model, x, n=n, hooks=hooks, eps=eps, seed=seed, generator=generator, target=target, measure=True, labels=labels)


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
        if (
            not torch.isfinite(values).all()
            or (key in ("sigma2", "gamma") and (values <= 0).any())
            or (key == "delta" and (values < 0).any())
        ):
            raise InterventionError(
                f"set_window: {key} = {value!r} is no window the model could write: g_x, g_y "
                f"are finite pixel positions, delta ≥ 0, sigma2 and gamma finite and > 0"
            )

    def place(window: Window, t: int) -> Window:
        return window._replace(
            **{
                k: torch.as_tensor(v, dtype=window.g_x.dtype, device=window.g_x.device).expand_as(window.g_x)
                for k, v in fields.items()
            }
        )

    place.__name__ = f"set_{op}_window"
    return name, at_steps(steps, place)


def scale_gamma(op: str, factor: float, steps=None) -> tuple[str, Hook]:
    """Multiply the window's intensity γ by ``factor`` (at the given steps, or every step)."""
    chosen = _steps(steps)
    return _window_name(op), _acting_at(
        lambda w, t: w._replace(gamma=w.gamma * factor) if chosen is None or t in chosen else None, chosen
    )


def freeze_window(op: str, from_step: int) -> tuple[str, Hook]:
    """Attention off from step ``from_step`` on: every later step reuses the window of that step."""
    if not _is_step(from_step):
        raise InterventionError(f"freeze_window takes the one step t = 1..T from which the window is kept, got {from_step!r}")
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


def swap_condition(model, labels, from_step: int) -> tuple[str, Hook]:
    """From step ``from_step`` on, the model draws as if asked for ``labels`` (class ids, or caption token ids
    (batch, words)): the steps before see the condition the pass was given, and are unchanged."""
    if not getattr(model.config, "conditioned", False):
        raise InterventionError(f"a {type(model).__name__} takes no condition to swap (drawviz.conditional)")
    start = int(from_step)
    encoded = {}

    def swap(condition, t: int):
        if "new" not in encoded:  # encoded once, with the model, on the pass's device
            with torch.no_grad():
                encoded["new"] = model.given(torch.as_tensor(labels), condition.shape[0])
        return encoded["new"]

    swap.__name__ = f"swap_condition_from_{start}"
    return Q.CONDITION, at_steps(range(start, max(start, model.config.T) + 1), swap)


def attend_word(word: int, steps=None) -> tuple[str, Hook]:
    """The caption alignment α_t put wholly on word ``word`` (its position in the caption, 0-based) at ``steps``
    (default all): what the model draws when made to follow that word."""
    word = int(word)

    def attend(alpha, t: int):
        if not 0 <= word < alpha.shape[1]:
            raise InterventionError(f"word {word} is outside the caption's {alpha.shape[1]} words (0-based)")
        return torch.nn.functional.one_hot(torch.full(alpha.shape[:1], word), alpha.shape[1]).to(alpha)

    attend.__name__ = f"attend_word_{word}"
    return Q.ALIGNMENT, at_steps(steps, attend) if steps is not None else _acting_at(attend, None)


def _window_name(op: str) -> str:
    names = {"read": Q.READ_WINDOW, "write": Q.WRITE_WINDOW}
    if op not in names:
        raise InterventionError(f"op is 'read' or 'write', got {op!r}")
    return names[op]


def final_error(trace: Trace) -> float:
    """Mean −log D(x | c_T) over the images of a hooked reconstruction, in nats."""
    return float(np.mean(trace.recon_nll[-1]))
