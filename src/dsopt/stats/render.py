"""Text for numbers, intervals and verdicts: one line each, status first.

Rendering only formats what :mod:`dsopt.stats.claims` decided; it never decides anything itself, so
a chapter's ``compute`` result (numbers + status) and its Markdown cannot disagree.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from dsopt.stats.claims import Verdict
    from dsopt.stats.estimates import Interval

__all__ = ["format_interval", "format_mean_sd", "format_number", "verdict_line", "verdicts_markdown"]


def format_number(x: float, *, scale: float = 1.0, digits: int = 3, unit: str = "", signed: bool = False) -> str:
    """``x * scale`` with ``digits`` decimals, a + when ``signed`` and positive, then ``unit``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return ("+inf" if x > 0 else "-inf") + unit
    v = x * scale
    if round(v, digits) == 0:
        v = 0.0  # no "-0.0"
    return f"{v:+.{digits}f}{unit}" if signed else f"{v:.{digits}f}{unit}"


def format_mean_sd(mean: float, sd: float | None, *, scale: float = 1.0, digits: int = 3, unit: str = "") -> str:
    """``"93.0 +- 0.4"`` (mean +- sd over seeds); one seed (sd nan/None) reads ``"93.0 (1 seed, sd unknown)"``."""
    m = format_number(mean, scale=scale, digits=digits)
    if sd is None or (isinstance(sd, float) and math.isnan(sd)):
        return f"{m}{unit} (1 seed, sd unknown)"
    return f"{m} +- {format_number(sd, scale=scale, digits=digits)}{unit}"


def _level(level: float) -> str:
    return f"{100 * level:.3g} %"


def format_interval(interval: "Interval", *, point: float | None = None, scale: float = 1.0, digits: int = 3,
                    unit: str = "", signed: bool = False) -> str:
    """One line, e.g. ``"+3.1 points [+1.2, +5.0] (95 % paired t, 5 seeds)"``.

    An interval that cannot exist (one seed) reads "no interval from 1 seed"; an unbounded one
    (a ratio against a baseline not distinguishable from 0) reads "unbounded".
    """
    def num(x):
        return format_number(x, scale=scale, digits=digits, signed=signed)
    head = f"{num(point)} " if point is not None else ""
    seeds = f"{interval.n} seed{'s' if interval.n != 1 else ''}"
    if not interval.defined:
        return f"{head}{unit.strip()} (no interval from {seeds})".strip()
    if not interval.bounded:
        return f"{head}{unit.strip()} (interval unbounded: {_level(interval.level)} {interval.method}, {seeds})"
    return f"{head}[{num(interval.low)}, {num(interval.high)}]{unit} ({_level(interval.level)} {interval.method}, {seeds})"


def _budget(v: "Verdict") -> str:
    from dsopt.stats.claims import MAX_SEEDS, MIN_SEEDS

    if not v.budget_limited:
        return ""
    if v.n < 2:
        return f"one seed shows no noise: run at least {MIN_SEEDS}"
    if v.seeds_needed is not None:
        return f"about {v.seeds_needed} seeds would decide it at the observed noise"
    point = v.point
    on_edge = any(c is not None and point == c for c in (v.claim.low, v.claim.high))
    return ("no number of seeds decides it: the mean sits on the claim's end" if on_edge
            else f"more than {MAX_SEEDS} seeds would be needed at the observed noise")


def verdict_line(v: "Verdict", name: str = "", *, claim: bool = True) -> str:
    """``**status** (name): 'claim' (range): measured estimate [interval] (...). Reason; seeds needed; correction.``

    ``claim=False`` leaves the claim out (for lists under a heading that already states it).
    """
    c = v.claim
    what = f" ({name})" if name else ""
    claim_text = f"'{c.text}'" + (f" ({c.describe()})" if c.text != c.describe() else "")
    reason = v.reason[len("undefined: "):] if v.reason.startswith("undefined:") else v.reason
    notes = [n for n in (reason, _budget(v), v.correction) if n]
    if v.absolute is not None:  # a relative claim without a defined relative change: the absolute change instead
        measured = "absolute change " + format_interval(v.absolute, point=v.absolute_point, signed=True)
    else:
        measured = format_interval(v.interval, point=v.point, scale=c.scale, digits=c.digits, unit=c.unit, signed=c.signed)
    text = "; ".join(notes)
    claim_part = f" {claim_text}:" if claim else ""
    return f"**{v.label}**{what}:{claim_part} measured {measured}. " + (text[:1].upper() + text[1:] + "." if text else "")


def verdicts_markdown(lines: Iterable[tuple[str, "Verdict"]]) -> str:
    """A Markdown bullet list of ``(name, verdict)`` lines, status first on each."""
    return "\n".join(f"- {verdict_line(v, name)}" for name, v in lines)
