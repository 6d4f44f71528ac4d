"""Argument validation with messages that name the parameter and its allowed range.

Every public constructor and every Controls knob goes through these helpers so that a user who
types a wrong value sees *which* parameter is wrong, *what* it accepts and *what* they gave.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Iterable


class ParameterError(ValueError):
    """A parameter value outside its allowed range or set. ``.name`` is the parameter's name."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name

    def __reduce__(self):  # picklable: spawned workers send it back intact
        return (type(self), (self.name, str(self)))


def _interval(low, high, low_inclusive, high_inclusive) -> str:
    lo = "-inf" if low is None else repr(low)
    hi = "inf" if high is None else repr(high)
    return f"{'[' if low_inclusive and low is not None else '('}{lo}, {hi}{']' if high_inclusive and high is not None else ')'}"


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    integer: bool = False,
) -> float | int:
    """Return ``value`` if it is a finite number (an int when ``integer``) inside the interval.

    Raises :class:`ParameterError` naming ``name``, the allowed interval and the value given.
    Booleans are refused: ``True`` is not a learning rate.
    """
    kind = "an integer" if integer else "a number"
    where = _interval(low, high, low_inclusive, high_inclusive)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ParameterError(name, f"{name} must be {kind} in {where}; got {value!r}")
    if integer:
        if isinstance(value, Integral):
            value = int(value)
        elif float(value).is_integer():
            value = int(value)
        else:
            raise ParameterError(name, f"{name} must be {kind} in {where}; got {value!r}")
    elif not math.isfinite(float(value)):
        raise ParameterError(name, f"{name} must be a finite number in {where}; got {value!r}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        raise ParameterError(name, f"{name} must be {kind} in {where}; got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``; else raise naming the allowed values."""
    choices = list(choices)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ParameterError(name, f"{name} must be one of {allowed}; got {value!r}")
    return value
