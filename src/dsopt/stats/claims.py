"""Claims and their three-valued status: supported, contradicted, or inconclusive at this budget.

A :class:`Claim` is a range for one quantity (``low`` <= quantity <= ``high``; either end may be open),
e.g. "at least +2 and at most +5 points" is ``Claim.between(0.02, 0.05, on="difference")``. The status
compares the claim with the estimate's confidence interval:

- **supported**: the interval lies inside the claimed range (both ends checked);
- **contradicted**: the interval lies entirely outside it (below ``low`` or above ``high``);
- **inconclusive at this budget**: neither. The verdict then says how many seeds would decide it if the
  observed mean and per-seed noise stayed as they are (or why no number of seeds would).

Fewer than :data:`MIN_SEEDS` seeds are never supported or contradicted, whatever their numbers say. A
relative or ratio claim against a zero (or statistically indistinguishable from zero) baseline is
inconclusive with that reason; the absolute change is still reported.

Several comparisons judged together (several settings or arms against one baseline) are corrected
with Holm's step-down procedure over the family (:func:`assess_all`); each verdict says so and shows
its interval at the level Holm used for it. Each decision is the t-test that matches the interval:
the interval at level 1 - a excludes ``c`` exactly when the contrast test of "quantity = c" has a
two-sided p-value below a, so an interval and a status can never disagree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import stats as sps

from dsopt.stats.estimates import QUANTITIES, Interval, t_quantile
from dsopt.util.validation import ParameterError, check_choice, check_number

__all__ = ["MIN_SEEDS", "SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "STATUSES", "Claim", "Verdict", "assess",
           "assess_all", "holm", "seeds_needed"]

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
STATUSES = (SUPPORTED, CONTRADICTED, INCONCLUSIVE)
#: Below this many seeds a claim is never supported or contradicted.
MIN_SEEDS = 3
#: seeds_needed gives up above this many seeds ("more than MAX_SEEDS").
MAX_SEEDS = 10_000

_DISPLAY = {  # on -> (scale, unit, digits, signed): how numbers of that quantity print by default
    "difference": (1.0, "", 3, True),
    "relative": (100.0, " %", 0, True),
    "ratio": (1.0, "x", 2, False),
    "level": (1.0, "", 3, False),
}


@dataclass(frozen=True)
class Claim:
    """A claimed range for one quantity: ``low <= quantity <= high`` (None = open end).

    ``on``: ``"difference"`` (treatment - baseline), ``"relative"`` (difference / baseline mean),
    ``"ratio"`` (treatment mean / baseline mean) or ``"level"`` (one arm's mean). ``text``: the claim
    as a reader knows it (e.g. the article's words). ``scale``/``unit``/``digits`` say how numbers print
    (e.g. ``scale=100, unit=" points", digits=1`` for accuracy fractions); defaults depend on ``on``.
    """

    low: float | None = None
    high: float | None = None
    on: str = "difference"
    text: str = ""
    scale: float | None = None
    unit: str | None = None
    digits: int | None = None

    def __post_init__(self):
        check_choice("on", self.on, QUANTITIES)
        if self.low is None and self.high is None:
            raise ParameterError("low", "a claim needs at least one end: low (at least) and/or high (at most)")
        for name in ("low", "high"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, float(check_number(name, v)))
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ParameterError("high", f"high must be >= low; got low={self.low!r}, high={self.high!r}")
        scale, unit, digits, _ = _DISPLAY[self.on]
        if self.scale is None:
            object.__setattr__(self, "scale", scale)
        if self.unit is None:
            object.__setattr__(self, "unit", unit)
        if self.digits is None:
            object.__setattr__(self, "digits", digits)
        if not self.text:
            object.__setattr__(self, "text", self.describe())

    @classmethod
    def at_least(cls, low: float, *, on: str = "difference", text: str = "", **display) -> "Claim":
        """quantity >= ``low``."""
        return cls(low=low, on=on, text=text, **display)

    @classmethod
    def at_most(cls, high: float, *, on: str = "difference", text: str = "", **display) -> "Claim":
        """quantity <= ``high``."""
        return cls(high=high, on=on, text=text, **display)

    @classmethod
    def between(cls, low: float, high: float, *, on: str = "difference", text: str = "", **display) -> "Claim":
        """``low`` <= quantity <= ``high`` (both ends are checked)."""
        return cls(low=low, high=high, on=on, text=text, **display)

    @property
    def signed(self) -> bool:
        return _DISPLAY[self.on][3]

    def fmt(self, x: float) -> str:
        """A number of this claim's quantity in its display units (``+2.0 points``)."""
        from dsopt.stats.render import format_number

        return format_number(x, scale=self.scale, digits=self.digits, unit=self.unit, signed=self.signed)

    def describe(self) -> str:
        """The range in words: "at least +2.0 points and at most +5.0 points" (from the numbers)."""
        what = {"difference": "change", "relative": "relative change", "ratio": "ratio", "level": "level"}[self.on]
        parts = []
        if self.low is not None:
            parts.append(f"at least {self.fmt(self.low)}")
        if self.high is not None:
            parts.append(f"at most {self.fmt(self.high)}")
        return f"{what} {' and '.join(parts)}"

    def as_dict(self) -> dict:
        return {"text": self.text, "on": self.on, "low": self.low, "high": self.high, "range": self.describe()}


@dataclass
class Verdict:
    """The status of one claim with the numbers it rests on (see :func:`assess`)."""

    claim: Claim
    status: str
    point: float
    interval: Interval
    n: int
    reason: str = ""
    seeds_needed: int | None = None
    correction: str | None = None
    p_decisive: float = math.nan
    estimate: dict = field(default_factory=dict)
    #: For a relative/ratio claim whose relative change is undefined: the absolute change and its interval.
    absolute: Interval | None = None
    absolute_point: float | None = None

    @property
    def label(self) -> str:
        """The status as printed: "supported", "contradicted", "inconclusive at this budget", or
        "inconclusive (...)" when more seeds would not help (an undefined relative change)."""
        if self.status != INCONCLUSIVE:
            return self.status
        return "inconclusive at this budget" if self.budget_limited else "inconclusive"

    @property
    def budget_limited(self) -> bool:
        return self.status == INCONCLUSIVE and not self.reason.startswith("undefined:")

    def line(self, name: str = "", *, claim: bool = True) -> str:
        """One Markdown line: status first, then the claim (unless ``claim=False``), the estimate and its interval."""
        from dsopt.stats.render import verdict_line

        return verdict_line(self, name=name, claim=claim)

    def as_dict(self) -> dict:
        """JSON-safe numbers and status (what a chapter's ``compute`` stores)."""
        return {
            "status": self.status, "label": self.label, "line": self.line(), "line_without_claim": self.line(claim=False), "claim": self.claim.as_dict(),
            "point": None if math.isnan(self.point) else self.point, "interval": self.interval.as_dict(),
            "n": self.n, "reason": self.reason, "seeds_needed": self.seeds_needed, "correction": self.correction,
            "p_decisive": None if math.isnan(self.p_decisive) else self.p_decisive, "estimate": self.estimate,
            "absolute": None if self.absolute is None else {"point": self.absolute_point, "interval": self.absolute.as_dict()},
        }


def _t_stat(x: np.ndarray) -> float:
    """t statistic of mean(x) vs 0; +-inf without spread (0 when the mean is exactly 0)."""
    m = float(x.mean())
    sd = float(x.std(ddof=1))
    if sd == 0 or not math.isfinite(sd):
        return 0.0 if m == 0 else math.copysign(math.inf, m)
    return m / (sd / math.sqrt(x.size))


def _p_side(t: float, df: int, above: bool) -> float:
    """Two-sided-equivalent p-value for "the quantity is above (below) c": 2 x the one-sided tail, capped at 1."""
    tail = sps.t.sf(t, df) if above else sps.t.cdf(t, df)
    return float(min(1.0, 2 * tail))


def _evidence(est, claim: Claim) -> tuple[float, float]:
    """(p for "inside the claim", p for "outside the claim"), each decisive at level a when <= a."""
    df = est.n - 1
    ends = []
    if claim.low is not None:
        ends.append(("low", _t_stat(est.contrast(claim.on, claim.low))))
    if claim.high is not None:
        ends.append(("high", _t_stat(est.contrast(claim.on, claim.high))))
    p_in = max(_p_side(t, df, above=(end == "low")) for end, t in ends)
    p_out = min(_p_side(t, df, above=(end == "high")) for end, t in ends)
    return p_in, p_out


def seeds_needed(est, claim: Claim, alpha: float = 0.05) -> int | None:
    """Seeds at which the claim would be decided if the observed mean and per-seed sd stayed as they are.

    Inside the claimed range: the seeds that put the interval inside it (both ends); outside: the seeds
    that put it beyond the violated end. None when the noise is unknown (one seed), the mean sits exactly
    on an end, or more than :data:`MAX_SEEDS` would be needed.
    """
    if est.n < 2:
        return None
    point = est.point(claim.on)
    if not math.isfinite(point):
        return None
    below = claim.low is not None and point < claim.low
    above = claim.high is not None and point > claim.high
    if below or above:
        ends = [claim.low if below else claim.high]
    else:
        ends = [c for c in (claim.low, claim.high) if c is not None]
    need = MIN_SEEDS
    for c in ends:
        x = est.contrast(claim.on, c)
        m, sd = abs(float(x.mean())), float(x.std(ddof=1))
        if m == 0:
            return None
        if sd == 0:
            continue
        n = _smallest_n(m / sd, alpha)
        if n is None:
            return None
        need = max(need, n)
    return need


def _smallest_n(effect: float, alpha: float) -> int | None:
    """Smallest n >= MIN_SEEDS with effect * sqrt(n) > t_{1-alpha/2, n-1} (doubling, then bisection)."""
    def ok(n):
        return effect * math.sqrt(n) > t_quantile(1 - alpha, n - 1)
    hi = MIN_SEEDS
    while not ok(hi):
        hi *= 2
        if hi > MAX_SEEDS * 2:
            return None
    lo = max(MIN_SEEDS, hi // 2)
    if ok(lo):
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi if hi <= MAX_SEEDS else None


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, family-wise error control); nan stays nan and counts in the family."""
    p = [float(x) for x in p_values]
    m = len(p)
    order = sorted(range(m), key=lambda i: (math.isnan(p[i]), p[i]))
    out = [math.nan] * m
    running = 0.0
    for rank, i in enumerate(order):
        if math.isnan(p[i]):
            continue
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def assess(est, claim: Claim, *, alpha: float = 0.05) -> Verdict:
    """The status of one ``claim`` about ``est`` (a :class:`~dsopt.stats.estimates.Sample` or
    :class:`~dsopt.stats.estimates.PairedComparison`), interval at level 1 - ``alpha``."""
    return assess_all([(est, claim)], alpha=alpha)[0]


def assess_all(items: Sequence[tuple[Any, Claim]], *, alpha: float = 0.05) -> list[Verdict]:
    """Statuses for a family of (estimate, claim) pairs judged together, Holm-corrected over the family.

    Use it whenever several settings, arms or sizes are compared against one baseline for the same
    claim: with m comparisons, the one with the strongest evidence is judged at level alpha/m, the next
    at alpha/(m-1), ... (Holm's step-down); once one is not decided, none after it is. Each verdict's
    interval is shown at the level used for it and its ``correction`` names the family size.
    """
    alpha = float(check_number("alpha", alpha, low=0.0, high=0.5, low_inclusive=False))
    items = list(items)
    if not items:
        raise ParameterError("items", "assess_all needs at least one (estimate, claim) pair")
    m = len(items)
    strict = 1 - alpha / m  # undefinedness (a baseline not distinguishable from 0) is judged at the strictest level
    undefined, decisive, evidence = [], [], []
    for est, claim in items:
        if not isinstance(claim, Claim):
            raise ParameterError("claim", f"expected a dsopt.stats.Claim; got {type(claim).__name__}")
        est._check_on(claim.on)
        why = est.undefined(claim.on, strict)
        undefined.append(why)
        ev = _evidence(est, claim) if est.n >= 2 and not why else (math.nan, math.nan)
        evidence.append(ev)
        # Comparisons that can never be decided (undefined, < MIN_SEEDS) count in m but take no place in the step-down.
        decisive.append(min(ev) if est.n >= MIN_SEEDS and not why else math.nan)
    order = sorted(range(m), key=lambda i: (math.isnan(decisive[i]), decisive[i]))
    adjusted = holm(decisive)
    verdicts: list[Verdict | None] = [None] * m
    stopped = False
    for rank, i in enumerate(order):
        est, claim = items[i]
        a_i = alpha / (m - rank)
        level = 1 - a_i
        base = dict(claim=claim, point=est.point(claim.on), interval=est.interval(claim.on, level), n=est.n,
                    correction=f"Holm over {m} comparisons: judged at level {100 * level:.4g} %" if m > 1 else None,
                    p_decisive=adjusted[i], estimate=est.as_dict())
        p_in, p_out = evidence[i]
        if undefined[i]:
            verdicts[i] = Verdict(status=INCONCLUSIVE, reason=f"undefined: {undefined[i]}", absolute_point=est.diff,
                                  absolute=est.interval("difference", level), **base)
        elif est.n < MIN_SEEDS:
            noise = "the noise is unknown from one seed" if est.n < 2 else f"only {est.n} seeds"
            verdicts[i] = Verdict(status=INCONCLUSIVE, seeds_needed=seeds_needed(est, claim, a_i),
                                  reason=f"fewer than {MIN_SEEDS} seeds are never decisive ({noise})", **base)
        elif not stopped and p_in <= a_i:
            verdicts[i] = Verdict(status=SUPPORTED, reason="the interval lies inside the claimed range", **base)
        elif not stopped and p_out <= a_i:
            verdicts[i] = Verdict(status=CONTRADICTED, reason=_outside(claim, base["interval"]), **base)
        else:
            reason = ("Holm's step-down stopped at a comparison with stronger evidence" if stopped
                      else "the interval overlaps an end of the claimed range")
            stopped = True  # Holm: every comparison with weaker evidence stays undecided too
            verdicts[i] = Verdict(status=INCONCLUSIVE, reason=reason, seeds_needed=seeds_needed(est, claim, a_i), **base)
    return verdicts  # type: ignore[return-value]


def _outside(claim: Claim, interval: Interval) -> str:
    if claim.high is not None and interval.low > claim.high:
        return f"the whole interval lies above the claim's upper end {claim.fmt(claim.high)}"
    return f"the whole interval lies below the claim's lower end {claim.fmt(claim.low)}"
