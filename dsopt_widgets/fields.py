"""Whole-number fields: a text box read in Python exactly as the person typed it.

ipywidgets' ``IntText``/``BoundedIntText`` filter keystrokes in the browser: the '.' of "2.5" and the
'e' of "1e3" are dropped, so "2.5" reached the kernel as 25 and "1e3" as 13, and a bounded field could
show one number while the kernel held another. A :func:`whole_field` is a plain ``Text``: nothing is
dropped or clamped in the page, and :func:`read_whole` turns the text into an int with the panels' range
message, or refuses it (``ParameterError``: "workers must be an integer in [1, 64]; got 2.5"). A number
written another way ("1e3", "40.0") is that number; anything else is refused, never coerced.
"""
from __future__ import annotations

import ipywidgets as W

from dsopt.util.validation import check_number


def whole_field(value: int, description: str, **kw) -> W.Text:
    """A text box holding the whole number ``value``; it sends its text on Enter or when it loses focus
    (like ``IntText``), so a Start/Restart click reads what the box shows."""
    kw.setdefault("continuous_update", False)
    return W.Text(value=str(int(value)), description=description, **kw)


def typed_number(text):
    """What ``text`` reads as: an int ("12"), else a float ("2.5", "1e3"), else ``text`` itself ("abc"),
    for a check that names the range and what was typed (a non-string is returned as it is)."""
    if not isinstance(text, str):
        return text
    s = text.strip()
    for kind in (int, float):
        try:
            return kind(s)
        except ValueError:
            pass
    return text


def parse_whole(name: str, text, *, low: int | None = None, high: int | None = None) -> int:
    """``text`` as an int in ``[low, high]``; ``ParameterError`` naming ``name``, the range and what was typed."""
    return check_number(name, typed_number(text), low=low, high=high, integer=True)


def read_whole(field: W.Widget, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """The whole number ``field`` shows, checked (see :func:`parse_whole`)."""
    return parse_whole(name, field.value, low=low, high=high)
