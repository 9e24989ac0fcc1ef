"""Checks of plain values: the one style of every argument and saved field (no AnnData, no torch).

Each check returns the value in its canonical Python type and refuses a wrong one with a
``TypeError`` (wrong kind) or ``ValueError`` (out of range) that names the argument and the value.
Public functions (through :mod:`scsiameseclu._validation`), the module configs and the readers of
saved models all use these.
"""

from __future__ import annotations

import math
from numbers import Integral, Real


def check_number(
    name: str,
    value,
    *,
    lo: float = 0.0,
    hi: float = math.inf,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> int | float:
    """A finite number (an int with ``integer=True``; never a bool) in the interval from ``lo`` to ``hi``."""
    if isinstance(value, bool) or not isinstance(value, Integral if integer else Real):
        msg = f"`{name}` must be {'an int' if integer else 'a number'}, got {value!r}."
        raise TypeError(msg)
    if not math.isfinite(value) or value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi):
        lo_text = f"{'(' if lo_open else '['}{lo:g}"
        hi_text = f"{hi:g}{')' if hi_open else ']'}" if math.isfinite(hi) else "inf)"
        msg = f"`{name}` must be in {lo_text}, {hi_text}, got {value!r}."
        raise ValueError(msg)
    return int(value) if integer else float(value)


def check_int(name: str, value, minimum: int) -> int:
    """An int (not a bool) >= ``minimum``."""
    return check_number(name, value, lo=minimum, integer=True)


def check_fraction(name: str, value, *, upper_open: bool = True) -> float:
    """A number in ``[0, 1)`` (or ``[0, 1]``)."""
    return check_number(name, value, hi=1.0, hi_open=upper_open)


def check_non_negative(name: str, value) -> float:
    """A finite number >= 0."""
    return check_number(name, value)


def check_bool(name: str, value) -> bool:
    """``True`` or ``False`` (not a truthy stand-in such as ``"yes"`` or ``1``)."""
    if not isinstance(value, bool):
        msg = f"`{name}` must be a bool, got {value!r}."
        raise TypeError(msg)
    return value


def check_choice(name: str, value, choices: tuple):
    """One of ``choices``."""
    if isinstance(value, list | dict | set) or value not in choices:
        msg = f"`{name}` must be one of {list(choices)}, got {value!r}."
        raise ValueError(msg)
    return value


#: Seeds must be accepted by numpy, torch and scikit-learn alike; scikit-learn takes < 2**32.
MAX_SEED = 2**32 - 1


def check_seed(name: str, value) -> int:
    """An int seed in ``[0, 2**32 - 1]``."""
    value = check_int(name, value, 0)
    if value > MAX_SEED:
        msg = f"`{name}` must be at most 2**32 - 1 (what numpy, torch and scikit-learn all accept), got {value!r}."
        raise ValueError(msg)
    return value


def check_saved_number(name: str, value, **bounds) -> int | float:
    """:func:`check_number` for a field read back from a saved file: a ``ValueError`` either way.

    A wrong type there is a malformed file, not a caller's mistake, so it is one kind of error.
    """
    try:
        return check_number(name, value, **bounds)
    except TypeError as err:
        raise ValueError(str(err)) from None
