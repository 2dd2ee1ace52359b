"""Checks of what a caller passes, with errors that say what was expected: one home, so every count and
every step number is checked alike (plain and numpy integers accepted, bools and floats refused)."""

from __future__ import annotations

import numbers

__all__ = ["positive_int", "count"]


def count(value, name: str, *, minimum: int = 1, what: str = "") -> int:
    """``value`` as a plain int if it is an integer (Python or numpy, not a bool) ≥ ``minimum``; else a
    ValueError naming ``name``, what was expected (``what``: e.g. "a number of images") and what came."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = (
            "a positive integer" if minimum == 1 else ("a non-negative integer" if minimum == 0 else f"an integer >= {minimum}")
        )
        raise ValueError(f"{name} must be {kind}{f' ({what})' if what else ''}, got {value!r}")
    return int(value)


def positive_int(value, name: str, what: str = "") -> int:
    """count(value, name) with minimum 1."""
    return count(value, name, minimum=1, what=what)
