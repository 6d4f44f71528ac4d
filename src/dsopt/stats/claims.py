"""Claims and their status: supported, contradicted, inconclusive at this budget, not testable here,
or not decidable by this design.

A :class:`Claim` is a range for one quantity (``low`` <= quantity <= ``high``; either end may be open),
e.g. "at least +2 and at most +5 points" is ``Claim.between(0.02, 0.05, on="difference")``. The status
compares the claim with the estimate's confidence interval:

- **supported**: the interval lies inside the claimed range (both ends checked);
- **contradicted**: the interval lies entirely outside it (below ``low`` or above ``high``);
- **inconclusive at this budget**: neither. The verdict then says how many units give an 80 % chance
  of a decision, counting the uncertainty of the current estimate (:mod:`dsopt.stats.power`);
- **not testable here**: the claim is about another setting than the one measured (a
  :class:`~dsopt.stats.setting.Setting` on the claim differs from the ``measured`` one): the local
  estimate and interval are still reported, as a fact about the local setting;
- **not decidable by this design**: the claimed range lies entirely beyond what the design can show
  (``reachable``), or every unit sits exactly on the claim's end (no spread), so no number of units
  decides it. (With spread, a mean on an end is "inconclusive at this budget": the true mean is uncertain.)

Resolution (see :mod:`dsopt.stats.estimates`): an estimate whose arms are *equal within resolution*
never supports a claim whose range excludes "no change" (0 for a difference or relative change, 1 for a
ratio), and a zero-width interval never supports an equivalence claim (a range around "no change").

Small samples: from 6 units on, a sign-flip permutation test of the decisive contrast is reported
beside the t decision (:mod:`dsopt.stats.permutation`); with 3 to 5 units the verdict says the decision
assumes normally distributed per-unit differences.

Fewer than :data:`MIN_SEEDS` seeds are never supported or contradicted, whatever their numbers say. A
relative or ratio claim against a zero (or statistically indistinguishable from zero) baseline is
inconclusive with that reason; the absolute change is still reported. With fewer than MIN_SEEDS
units no relative number or ratio is reported at all (``point`` is nan, the absolute change instead).

Several comparisons judged together (several settings or arms against one baseline) are corrected
with Holm's step-down procedure over the family (:func:`assess_all`); each verdict says so and shows
its interval at the level Holm used for it. Claims that are not testable here or not decidable by the
design (``reachable``) are not in the family: m counts only the others (comparisons with fewer than
MIN_SEEDS units or an undefined relative change count in m but take no place in the step-down).
Each decision is the t-test that matches the interval (quantisation variance included): the interval
at level 1 - a excludes ``c`` exactly when the contrast test of "quantity = c" has a two-sided p-value
below a, so an interval and a status never disagree, except that the resolution rules above may
refuse a support that the interval alone would give (the verdict then says why).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
from scipy import stats as sps

from dsopt.stats import permutation, power
from dsopt.stats.estimates import FLOAT_ATOL, FLOAT_RTOL, QUANTITIES, Interval, count, t_quantile
from dsopt.stats.setting import Setting
from dsopt.util.validation import ParameterError, check_choice, check_number

__all__ = ["MIN_SEEDS", "SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "NOT_TESTABLE", "NOT_DECIDABLE", "STATUSES",
           "Claim", "Verdict", "assess", "assess_all", "holm", "seeds_needed"]

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
#: The claim is about another setting than the one measured (the estimate is still reported).
NOT_TESTABLE = "not testable here"
#: No number of units can decide it with this design (claimed range beyond the reachable one, or a mean on an end).
NOT_DECIDABLE = "not decidable by this design"
STATUSES = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, NOT_DECIDABLE)
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
    ``setting``: what the claim is about (a :class:`~dsopt.stats.setting.Setting`; None = any).
    ``reachable``: ``(low, high)`` (None = open) the range of the quantity this *design* can show at all,
    e.g. ``(None, 5.0)`` when a stream design can show a decay ratio of at most x5.0.
    """

    low: float | None = None
    high: float | None = None
    on: str = "difference"
    text: str = ""
    scale: float | None = None
    unit: str | None = None
    digits: int | None = None
    setting: Setting | None = None
    reachable: tuple[float | None, float | None] | None = None

    def __post_init__(self):
        check_choice("on", self.on, QUANTITIES)
        if self.setting is not None and not isinstance(self.setting, Setting):
            raise ParameterError("setting", f"setting must be a dsopt.stats.Setting or None; got {self.setting!r}")
        if self.reachable is not None:
            object.__setattr__(self, "reachable", _check_reachable(self.reachable))
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

    def beyond_reach(self) -> str | None:
        """Why the claimed range lies entirely beyond ``reachable`` (None when some of it is reachable)."""
        if self.reachable is None:
            return None
        rlo, rhi = self.reachable
        if self.low is not None and rhi is not None and self.low > rhi:
            return (f"the claim needs at least {self.fmt(self.low)} but this design can show at most {self.fmt(rhi)}: "
                    "no number of units can decide it")
        if self.high is not None and rlo is not None and self.high < rlo:
            return (f"the claim needs at most {self.fmt(self.high)} but this design can show no less than "
                    f"{self.fmt(rlo)}: no number of units can decide it")
        return None

    def as_dict(self) -> dict:
        return {"text": self.text, "on": self.on, "low": self.low, "high": self.high, "range": self.describe(),
                "setting": None if self.setting is None else self.setting.as_dict(),
                "reachable": None if self.reachable is None else list(self.reachable),
                "scale": self.scale, "unit": self.unit, "digits": self.digits}

    @classmethod
    def from_dict(cls, d: dict) -> "Claim":
        """The claim :meth:`as_dict` described (display fields default by ``on`` when absent: older files)."""
        setting = d.get("setting")
        return cls(low=d.get("low"), high=d.get("high"), on=d.get("on", "difference"), text=d.get("text", ""),
                   scale=d.get("scale"), unit=d.get("unit"), digits=d.get("digits"),
                   setting=None if setting is None else Setting.from_dict(setting),
                   reachable=None if d.get("reachable") is None else tuple(d["reachable"]))


def _check_reachable(r) -> tuple[float | None, float | None]:
    try:
        lo, hi = r
    except (TypeError, ValueError) as exc:
        raise ParameterError("reachable", f"reachable must be a pair (low, high), None for an open end; got {r!r}") from exc
    lo = None if lo is None else float(check_number("reachable", lo))
    hi = None if hi is None else float(check_number("reachable", hi))
    if lo is not None and hi is not None and lo > hi:
        raise ParameterError("reachable", f"reachable low must be <= high; got {r!r}")
    return lo, hi


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
    #: The setting measured (None = not stated); the claim's own is ``claim.setting``.
    measured: Setting | None = None
    #: The arms are equal within resolution (+ float tolerance): never supports a claim excluding "no change".
    equal_within_resolution: bool = False
    #: The estimate's resolution (0 = none declared; a float tolerance is always applied).
    resolution: float = 0.0
    #: The unit that ``n`` counts ("seed", "repeat", ...).
    unit: str = "seed"
    #: Sign-flip permutation test of the decisive contrast (6 units and more; nan otherwise).
    p_permutation: float = math.nan
    permutation_exact: bool | None = None
    #: Whether the permutation test reaches the same decision as the t test at the level used (None: not run).
    permutation_confirms: bool | None = None
    #: With 3-5 units: the t decision's normality assumption, in words.
    normality: str = ""
    #: The probability of a decision with ``seeds_needed`` units (nan when not computed).
    decision_probability: float = math.nan
    #: False when more units would not help (equal within resolution, undefined relative change, ...).
    more_units_help: bool = True
    #: The significance level this verdict was judged at (alpha, or Holm's alpha / (m - rank)).
    alpha_used: float = math.nan

    @property
    def label(self) -> str:
        """The status as printed: "supported", "contradicted", "inconclusive at this budget",
        "inconclusive" (more units would not help), "not testable here", "not decidable by this design"."""
        if self.status != INCONCLUSIVE:
            return self.status
        return "inconclusive at this budget" if self.budget_limited else "inconclusive"

    @property
    def budget_limited(self) -> bool:
        return self.status == INCONCLUSIVE and self.more_units_help and not self.reason.startswith("undefined:")

    def line(self, name: str = "", *, claim: bool = True, fmt: str = "markdown") -> str:
        """One line: status first, then the claim (unless ``claim=False``), the estimate and its interval
        (``fmt="text"``: no Markdown bold)."""
        from dsopt.stats.render import verdict_line

        return verdict_line(self, name=name, claim=claim, fmt=fmt)

    def details(self) -> list[str]:
        """The notes folded beneath a verdict: reason, setting, resolution, normality/permutation, power, Holm."""
        from dsopt.stats.render import verdict_details

        return verdict_details(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        """The verdict :meth:`as_dict` stored (a metrics JSON, a chapter's verdict dict): renders the same.

        Fields a file does not carry (written before they existed) take their defaults."""
        def num(x):
            return math.nan if x is None else float(x)

        absolute = d.get("absolute")
        measured = d.get("measured")
        return cls(
            claim=Claim.from_dict(d["claim"]), status=d["status"], point=num(d.get("point")),
            interval=Interval.from_dict(d["interval"]), n=int(d["n"]), reason=d.get("reason", ""),
            seeds_needed=d.get("seeds_needed"), correction=d.get("correction"), p_decisive=num(d.get("p_decisive")),
            estimate=dict(d.get("estimate") or {}),
            absolute=None if absolute is None else Interval.from_dict(absolute["interval"]),
            absolute_point=None if absolute is None else absolute.get("point"),
            measured=None if measured is None else Setting.from_dict(measured),
            equal_within_resolution=bool(d.get("equal_within_resolution", False)),
            resolution=float(d.get("resolution") or 0.0), unit=d.get("unit") or d["interval"].get("unit", "seed"),
            p_permutation=num(d.get("p_permutation")), permutation_exact=d.get("permutation_exact"),
            permutation_confirms=d.get("permutation_confirms"), normality=d.get("normality", ""),
            decision_probability=num(d.get("decision_probability")), more_units_help=d.get("more_units_help", True),
            alpha_used=num(d.get("alpha")))

    def as_dict(self) -> dict:
        """JSON-safe numbers and status (what a chapter's ``compute`` stores)."""
        return {
            "status": self.status, "label": self.label, "line": self.line(), "line_without_claim": self.line(claim=False),
            "line_text": self.line(fmt="text"), "claim": self.claim.as_dict(),
            "point": None if math.isnan(self.point) else self.point, "interval": self.interval.as_dict(),
            "n": self.n, "reason": self.reason, "seeds_needed": self.seeds_needed, "correction": self.correction,
            "p_decisive": None if math.isnan(self.p_decisive) else self.p_decisive, "estimate": self.estimate,
            "absolute": None if self.absolute is None else {"point": self.absolute_point, "interval": self.absolute.as_dict()},
            "measured": None if self.measured is None else self.measured.as_dict(),
            "equal_within_resolution": bool(self.equal_within_resolution), "resolution": self.resolution,
            "unit": self.unit, "p_permutation": _num(self.p_permutation), "permutation_exact": self.permutation_exact,
            "permutation_confirms": self.permutation_confirms, "normality": self.normality,
            "decision_probability": _num(self.decision_probability), "more_units_help": self.more_units_help,
            "alpha": _num(self.alpha_used), "details": self.details(),
        }


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _t_stat(x: np.ndarray, q: float = 0.0, tol: float = 0.0) -> float:
    """t statistic of mean(x) vs 0 with ``q`` (quantisation variance per unit) added to the sample
    variance; +-inf without any spread (0 when the mean is 0 within the float tolerance ``tol``: a
    difference of float rounding, with spread of float rounding, is no evidence either way)."""
    m = float(x.mean())
    if abs(m) <= tol and float(x.std(ddof=1)) <= tol:
        return 0.0
    var = float(x.var(ddof=1)) + q
    if var == 0 or not math.isfinite(var):
        return 0.0 if m == 0 else math.copysign(math.inf, m)
    return m / math.sqrt(var / x.size)


def _p_side(t: float, df: int, above: bool) -> float:
    """Two-sided-equivalent p-value for "the quantity is above (below) c": 2 x the one-sided tail, capped at 1."""
    tail = sps.t.sf(t, df) if above else sps.t.cdf(t, df)
    return float(min(1.0, 2 * tail))


def _evidence(est, claim: Claim) -> tuple[float, float]:
    """(p for "inside the claim", p for "outside the claim"), each decisive at level a when <= a."""
    df = est.n - 1
    ends = []
    for end, c in (("low", claim.low), ("high", claim.high)):
        if c is not None:
            ends.append((end, _t_stat(est.contrast(claim.on, c), est.quantisation_var(claim.on, c),
                                      _contrast_tol(est, claim, c))))
    p_in = max(_p_side(t, df, above=(end == "low")) for end, t in ends)
    p_out = min(_p_side(t, df, above=(end == "high")) for end, t in ends)
    return p_in, p_out


def _decisive(est, claim: Claim, inside: bool) -> tuple[np.ndarray, bool]:
    """The decisive per-unit contrast and its tested direction (above 0?): for "inside", the end whose
    inside-evidence is weakest; for "outside", the end whose outside-evidence is strongest."""
    df = est.n - 1
    best = None
    for end, c in (("low", claim.low), ("high", claim.high)):
        if c is None:
            continue
        x = est.contrast(claim.on, c)
        t = _t_stat(x, est.quantisation_var(claim.on, c), _contrast_tol(est, claim, c))
        above = (end == "low") if inside else (end == "high")
        p = _p_side(t, df, above=above)
        if best is None or (p > best[0] if inside else p < best[0]):
            best = (p, x, above)
    return best[1], best[2]


def seeds_needed(est, claim: Claim, alpha: float = 0.05) -> int | None:
    """Units that give an 80 % chance of deciding the claim at level 1 - ``alpha``, counting the
    uncertainty of the current estimate (:func:`dsopt.stats.power.units_for_power`).

    None when the noise is unknown (one unit), the mean sits exactly on an end without any spread
    between units (no number decides it), or more than :data:`MAX_SEEDS` would be needed.
    """
    if est.n < 2 or not math.isfinite(est.point(claim.on)) or _on_end(est, claim):
        return None
    n, _ = power.units_for_power(est, claim, alpha=alpha, min_units=MIN_SEEDS)
    return n


def _on_end(est, claim: Claim) -> bool:
    """The estimate sits exactly (within float tolerance) on one of the claim's ends *without any spread*
    between units: then every simulated experiment (:mod:`dsopt.stats.power`) reproduces the same mean on
    the end, and no number of units decides the claim. (With spread, the true mean is uncertain and more
    units can move the estimate off the end: that is "inconclusive at this budget".)"""
    for c in (claim.low, claim.high):
        if c is None:
            continue
        x = est.contrast(claim.on, c)
        tol = _contrast_tol(est, claim, c)
        if abs(float(x.mean())) <= tol and (x.size < 2 or float(x.std(ddof=1)) <= tol):
            return True
    return False


def _contrast_tol(est, claim: Claim, c: float) -> float:
    """Float tolerance of the per-unit contrast at ``c`` (``t - R b`` scales with 1 + |R|)."""
    if claim.on in ("ratio", "relative"):
        return est.tol * (1.0 + abs(c + 1.0 if claim.on == "relative" else c))
    return est.tol


def _smallest_n(effect: float, alpha: float) -> int | None:
    """Smallest n >= MIN_SEEDS with effect * sqrt(n) > t_{1-alpha/2, n-1} (the plug-in rule: the n at which
    the observed effect, taken as the truth, would just be decided; kept for reference)."""
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


def assess(est, claim: Claim, *, alpha: float = 0.05, measured: Setting | None = None,
           reachable: tuple[float | None, float | None] | None = None) -> Verdict:
    """The status of one ``claim`` about ``est`` (a :class:`~dsopt.stats.estimates.Sample` or
    :class:`~dsopt.stats.estimates.PairedComparison`), interval at level 1 - ``alpha``.

    ``measured``: the setting the estimate comes from (checked against ``claim.setting``);
    ``reachable``: the design's reachable range for the quantity, when the claim does not state one.
    """
    return assess_all([(est, claim)], alpha=alpha, measured=measured, reachable=reachable)[0]


def assess_all(items: Sequence[tuple], *, alpha: float = 0.05, measured: Setting | None = None,
               reachable: tuple[float | None, float | None] | None = None) -> list[Verdict]:
    """Statuses for a family of (estimate, claim) pairs judged together, Holm-corrected over the family.

    Use it whenever several settings, arms or sizes are compared against one baseline for the same
    claim: with m comparisons, the one with the strongest evidence is judged at level alpha/m, the next
    at alpha/(m-1), ... (Holm's step-down); once one is not decided, none after it is. Each verdict's
    interval is shown at the level used for it and its ``correction`` names the family size.

    An item may be a 3-tuple ``(estimate, claim, measured)``: its own measured
    :class:`~dsopt.stats.setting.Setting`, overriding the family's ``measured``. ``reachable`` applies to
    every claim that does not state its own.

    Holm's m counts the items that are decided by data: a claim *not testable here* (its setting differs
    from the measured one) or *not decidable by this design* (its range lies beyond ``reachable``) is
    left out of the family (its interval is shown at level 1 - alpha); items with fewer than MIN_SEEDS
    units or an undefined relative change count in m but take no place in the step-down.
    """
    alpha = float(check_number("alpha", alpha, low=0.0, high=0.5, low_inclusive=False))
    if measured is not None and not isinstance(measured, Setting):
        raise ParameterError("measured", f"measured must be a dsopt.stats.Setting or None; got {measured!r}")
    if reachable is not None:
        reachable = _check_reachable(reachable)
    items = list(items)
    if not items:
        raise ParameterError("items", "assess_all needs at least one (estimate, claim) pair")
    rows = []
    for item in items:
        try:
            item = tuple(item)
        except TypeError:
            item = ()
        if len(item) not in (2, 3):
            raise ParameterError("items", f"each item is (estimate, claim) or (estimate, claim, measured); got {item!r}")
        est, claim = item[0], item[1]
        meas = item[2] if len(item) == 3 else measured
        if not isinstance(claim, Claim):
            raise ParameterError("claim", f"expected a dsopt.stats.Claim; got {type(claim).__name__}")
        if meas is not None and not isinstance(meas, Setting):
            raise ParameterError("measured", f"measured must be a dsopt.stats.Setting or None; got {meas!r}")
        if reachable is not None and claim.reachable is None:
            claim = replace(claim, reachable=reachable)
        est._check_on(claim.on)
        rows.append((est, claim, meas))
    verdicts: list[Verdict | None] = [None] * len(rows)
    family = []
    for i, (est, claim, meas) in enumerate(rows):
        diffs = claim.setting.differences(meas) if claim.setting is not None else []
        beyond = claim.beyond_reach()
        if diffs:
            reason = (f"the claim is about another setting (claim: {claim.setting.describe()}; measured: "
                      f"{meas.describe()}; differs in {', '.join(d.split(':')[0] for d in diffs)}): the estimate is a fact about the "
                      "measured setting, not a test of the claim")
            verdicts[i] = _verdict(est, claim, meas, NOT_TESTABLE, reason, 1 - alpha, alpha, None)
            verdicts[i].more_units_help = False
        elif beyond:
            verdicts[i] = _verdict(est, claim, meas, NOT_DECIDABLE, f"design: {beyond}", 1 - alpha, alpha, None)
            verdicts[i].more_units_help = False
        else:
            family.append(i)
    m = len(family)
    if m:
        _judge_family([(i, *rows[i]) for i in family], alpha, verdicts)
    return verdicts  # type: ignore[return-value]


def _verdict(est, claim, meas, status, reason, level, a_i, correction, **kw) -> Verdict:
    n = est.n
    relative = claim.on in ("relative", "ratio")
    v = Verdict(claim=claim, status=status, reason=reason, point=est.point(claim.on),
                interval=est.interval(claim.on, level), n=n, correction=correction, estimate=est.as_dict(),
                measured=meas, equal_within_resolution=est.equal_within_resolution(claim.on),
                resolution=est.resolution, unit=est.unit, alpha_used=a_i, **kw)
    if relative and (n < MIN_SEEDS or est.undefined(claim.on, level)):
        # no relative number or ratio from fewer than MIN_SEEDS units or an undefined one: the absolute change
        v.absolute_point, v.absolute = est.diff, est.interval("difference", level)
        if n < MIN_SEEDS:
            v.point = math.nan
    if MIN_SEEDS <= n < permutation.MIN_UNITS and status in (SUPPORTED, CONTRADICTED, INCONCLUSIVE):
        what = "differences" if getattr(est, "kind", "") == "paired" else "values"
        v.normality = f"the decision assumes normally distributed per-{est.unit} {what}"
    return v


def _judge_family(rows, alpha: float, verdicts: list) -> None:
    m = len(rows)
    strict = 1 - alpha / m  # undefinedness (a baseline not distinguishable from 0) is judged at the strictest level
    undefined, decisive, evidence = [], [], []
    for _, est, claim, _ in rows:
        why = est.undefined(claim.on, strict)
        undefined.append(why)
        ev = _evidence(est, claim) if est.n >= 2 and not why else (math.nan, math.nan)
        evidence.append(ev)
        # Comparisons that can never be decided (undefined, < MIN_SEEDS) count in m but take no place in the step-down.
        decisive.append(min(ev) if est.n >= MIN_SEEDS and not why else math.nan)
    order = sorted(range(m), key=lambda k: (math.isnan(decisive[k]), decisive[k]))
    adjusted = holm(decisive)
    stopped = False
    for rank, k in enumerate(order):
        i, est, claim, meas = rows[k]
        a_i = alpha / (m - rank)
        level = 1 - a_i
        correction = f"Holm over {m} comparisons: judged at level {100 * level:.4g} %" if m > 1 else None

        def make(status, reason, **kw):
            return _verdict(est, claim, meas, status, reason, level, a_i, correction, p_decisive=adjusted[k], **kw)

        p_in, p_out = evidence[k]
        if undefined[k]:
            v = make(INCONCLUSIVE, f"undefined: {undefined[k]}")
            v.more_units_help = False
            v.absolute_point, v.absolute = est.diff, est.interval("difference", level)
        elif est.n < MIN_SEEDS:
            if est.n < 2:
                reason = f"fewer than {MIN_SEEDS} {est.unit}s are never decisive (the noise is unknown from one {est.unit})"
            else:
                reason = f"fewer than {MIN_SEEDS} {est.unit}s are never decisive (only {count(est.n, est.unit)})"
            if claim.on in ("relative", "ratio"):
                reason += f"; no {claim.on} number from fewer than {MIN_SEEDS} {est.unit}s, the absolute change instead"
            v = make(INCONCLUSIVE, reason)
            _add_power(v, est, claim, a_i)
        elif not stopped and p_in <= a_i:
            v = make(SUPPORTED, "the interval lies inside the claimed range")
            v = _guard_support(v, est, claim)
        elif not stopped and p_out <= a_i:
            v = make(CONTRADICTED, _outside(claim, est.interval(claim.on, level)))
        else:
            reason = ("Holm's step-down stopped at a comparison with stronger evidence" if stopped
                      else "the interval overlaps an end of the claimed range")
            stopped = True  # Holm: every comparison with weaker evidence stays undecided too
            if est.equal_within_resolution(claim.on) and _excludes_null(est, claim):
                v = make(INCONCLUSIVE, f"{reason}; " + _equal_reason(est))
                v.more_units_help = False
            elif _on_end(est, claim):
                v = make(NOT_DECIDABLE, f"{reason}; every {est.unit} sits exactly on the claim's end (no spread), "
                                        f"so no number of {est.unit}s decides it")
                v.more_units_help = False
            else:
                v = make(INCONCLUSIVE, reason)
                _add_power(v, est, claim, a_i)
        if est.n >= permutation.MIN_UNITS and not undefined[k]:
            _add_permutation(v, est, claim, a_i, p_in, p_out)
        verdicts[i] = v


def _excludes_null(est, claim: Claim) -> bool:
    null = est.null.get(claim.on)
    if null is None:
        return False
    return (claim.low is not None and claim.low > null) or (claim.high is not None and claim.high < null) or (
        claim.low is not None and claim.low == null and claim.high is None) or (
        claim.high is not None and claim.high == null and claim.low is None)


def _equal_reason(est) -> str:
    res = f"the resolution {est.resolution:.4g}" if est.resolution > 0 else "float rounding"
    return (f"the arms are equal within resolution (mean difference below {res}): this cannot support a claim "
            "that excludes no change, and more units would not show a difference below the resolution")


def _guard_support(v: Verdict, est, claim: Claim) -> Verdict:
    """Rules (b) and (c): equal-within-resolution estimates and zero-width intervals support nothing they can't."""
    if v.equal_within_resolution and _excludes_null(est, claim):
        v.status, v.more_units_help = INCONCLUSIVE, False
        v.reason = _equal_reason(est)
        return v
    null = est.null.get(claim.on)
    if (null is not None and claim.low is not None and claim.high is not None and claim.low < null < claim.high
            and v.interval.bounded and v.interval.width <= 2 * _tol(est, v.interval)):
        v.status, v.more_units_help = INCONCLUSIVE, False
        v.reason = ("the interval has zero width (no spread between units and no resolution declared): "
                    "a zero-width interval cannot show equivalence; declare the metric's resolution")
    return v


def _tol(est, interval: Interval) -> float:
    if est.kind == "paired" and interval.method != "paired t":  # a ratio or relative change: relative tolerance
        return FLOAT_RTOL * max(abs(interval.low), abs(interval.high), 1.0) + FLOAT_ATOL
    return est.tol


def _add_power(v: Verdict, est, claim: Claim, a_i: float) -> None:
    if est.n < 2 or not math.isfinite(est.point(claim.on)) or _on_end(est, claim):
        return
    n, p = power.units_for_power(est, claim, alpha=a_i, min_units=MIN_SEEDS)
    v.seeds_needed, v.decision_probability = n, p


def _add_permutation(v: Verdict, est, claim: Claim, a_i: float, p_in: float, p_out: float) -> None:
    decided = v.status in (SUPPORTED, CONTRADICTED)
    inside = v.status == SUPPORTED if decided else p_in <= p_out
    x, above = _decisive(est, claim, inside)
    p, exact = permutation.sign_flip_p(x, above=above)
    v.p_permutation, v.permutation_exact = p, exact
    v.permutation_confirms = (p <= a_i) if decided else None


def _outside(claim: Claim, interval: Interval) -> str:
    if claim.high is not None and interval.low > claim.high:
        return f"the whole interval lies above the claim's upper end {claim.fmt(claim.high)}"
    return f"the whole interval lies below the claim's lower end {claim.fmt(claim.low)}"
