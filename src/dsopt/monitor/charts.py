"""SPC charts as small frozen parameter objects with an explicit state: Shewhart (+ Western Electric
rules), EWMA and CUSUM, on a standardised statistic z (in control: mean 0, sd 1).

A chart never hides a counter: ``state = chart.init(n)`` creates the state of ``n`` independent
charts (arrays with a leading axis of length ``n``) and ``state, point = chart.step(state, z)``
advances all of them by one observation ``z`` (shape ``(n,)``). The same ``step`` serves a live
service (``n = 1``) and the vectorised ARL simulation (``n`` = thousands of runs), so the run lengths
we publish are those of the code that raises the alarms. Every chart plots one statistic between a
lower and an upper limit (CUSUM: the larger side, signed), so dashboards treat them alike.

Conventions follow Montgomery, *Introduction to Statistical Quality Control*: two-sided charts,
zero-state start (EWMA at 0, CUSUM sums at 0, no history for the runs rules), EWMA with its
asymptotic limits +-L sigma sqrt(lambda / (2 - lambda)), tabular CUSUM signalling when either
sum exceeds h.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dsopt.util.validation import ParameterError, check_number

WE_RULES = (1, 2, 3, 4)
#: What each Western Electric rule looks for (zone width c = L / 3, i.e. 1 sigma at L = 3).
WE_RULE_TEXT = {
    1: "1 point beyond 3c",
    2: "2 of 3 consecutive points beyond 2c on the same side",
    3: "4 of 5 consecutive points beyond c on the same side",
    4: "8 consecutive points on the same side of the centre line",
}


class Point(NamedTuple):
    """One step of ``n`` charts: plotted statistic, limits, alarm flag, and which rule fired (0 = none)."""

    statistic: np.ndarray
    lower: float
    upper: float
    alarm: np.ndarray
    rule: np.ndarray


def _as_z(z, n: int) -> np.ndarray:
    z = np.asarray(z, dtype=float).reshape(-1)
    if z.shape[0] != n:
        raise ValueError(f"z has {z.shape[0]} values for {n} charts")
    return z


def _rules(value) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [int(c) for c in value if c.strip()]
    try:
        rules = tuple(sorted({int(r) for r in value}))
    except (TypeError, ValueError):
        raise ParameterError("rules", f"rules must be a subset of {WE_RULES} (e.g. (1, 2, 3, 4) or '1234'); "
                                      f"got {value!r}") from None
    if not rules or not set(rules) <= set(WE_RULES) or 1 not in rules:
        raise ParameterError("rules", f"rules must be a subset of {WE_RULES} that contains rule 1 "
                                      f"(a point beyond the limits); got {value!r}")
    return rules


@dataclass(frozen=True)
class Shewhart:
    """Shewhart chart of z with limits +-L and optional Western Electric runs rules.

    ``rules``: which of the four Western Electric rules signal (rule 1 = a point beyond +-L). The
    zone width of rules 2-3 is ``c = L / 3``, so calibrating ``L`` scales all zones together (as
    Champ & Woodall's normalising constant does); at ``L = 3`` the zones are 1, 2 and 3 sigma.
    Individuals and X-bar charts differ only in how z is standardised
    (:class:`dsopt.monitor.standardize.Reference`).
    """

    L: float = 3.0
    rules: tuple = (1,)

    def __post_init__(self):
        object.__setattr__(self, "L", float(check_number("L", self.L, low=0.0, high=10.0, low_inclusive=False)))
        object.__setattr__(self, "rules", _rules(self.rules))

    @property
    def name(self) -> str:
        return "shewhart" if self.rules == (1,) else f"shewhart+WE{''.join(map(str, self.rules))}"

    @property
    def memory(self) -> int:
        """Past points the rules need besides the current one."""
        return 7 if 4 in self.rules else 4 if 3 in self.rules else 2 if 2 in self.rules else 0

    def limits(self) -> tuple[float, float]:
        return -self.L, self.L

    def init(self, n: int = 1) -> dict:
        return {"hist": np.full((n, self.memory), np.nan)}

    def step(self, state: dict, z) -> tuple[dict, Point]:
        hist = state["hist"]
        z = _as_z(z, hist.shape[0])
        c = self.L / 3.0
        rule = np.zeros(z.shape[0], dtype=np.int8)
        w = np.concatenate([hist, z[:, None]], axis=1)  # oldest ... newest; NaN = no point yet
        checks = {
            4: lambda: np.all(w[:, -8:] > 0, axis=1) | np.all(w[:, -8:] < 0, axis=1),
            3: lambda: (np.sum(w[:, -5:] > c, axis=1) >= 4) | (np.sum(w[:, -5:] < -c, axis=1) >= 4),
            2: lambda: (np.sum(w[:, -3:] > 2 * c, axis=1) >= 2) | (np.sum(w[:, -3:] < -2 * c, axis=1) >= 2),
            1: lambda: np.abs(z) > self.L,
        }
        for r in sorted(self.rules, reverse=True):  # rule 1 wins when several fire
            rule[checks[r]()] = r
        if self.memory:
            hist = w[:, 1:]
        return {"hist": hist}, Point(z, -self.L, self.L, rule > 0, rule)


@dataclass(frozen=True)
class EWMA:
    """EWMA chart: e_t = lambda z_t + (1 - lambda) e_{t-1}, e_0 = 0; alarm when |e_t| > L sigma_e.

    sigma_e = sqrt(lambda / (2 - lambda)) is the asymptotic standard deviation (the limits of the
    published ARL tables, e.g. Lucas & Saccucci 1990). ``lam = 1`` is a Shewhart chart.
    """

    lam: float = 0.1
    L: float = 2.7

    def __post_init__(self):
        object.__setattr__(self, "lam", float(check_number("lambda", self.lam, low=0.0, high=1.0, low_inclusive=False)))
        object.__setattr__(self, "L", float(check_number("L", self.L, low=0.0, high=10.0, low_inclusive=False)))

    @property
    def name(self) -> str:
        return "ewma"

    @property
    def sigma(self) -> float:
        return math.sqrt(self.lam / (2.0 - self.lam))

    def limits(self) -> tuple[float, float]:
        return -self.L * self.sigma, self.L * self.sigma

    def init(self, n: int = 1) -> dict:
        return {"e": np.zeros(n)}

    def step(self, state: dict, z) -> tuple[dict, Point]:
        e = state["e"]
        e = self.lam * _as_z(z, e.shape[0]) + (1.0 - self.lam) * e
        lim = self.L * self.sigma
        alarm = np.abs(e) > lim
        return {"e": e}, Point(e, -lim, lim, alarm, alarm.astype(np.int8))


@dataclass(frozen=True)
class CUSUM:
    """Tabular CUSUM: C+ = max(0, C+ + z - k), C- = max(0, C- - z - k); alarm when either exceeds h.

    ``k`` is the reference value (half the shift to detect, in sigma), ``h`` the decision interval.
    The plotted statistic is the larger sum, signed (+C+ or -C-), between -h and h.
    """

    k: float = 0.5
    h: float = 5.0

    def __post_init__(self):
        object.__setattr__(self, "k", float(check_number("k", self.k, low=0.0, high=5.0)))
        object.__setattr__(self, "h", float(check_number("h", self.h, low=0.0, high=50.0, low_inclusive=False)))

    @property
    def name(self) -> str:
        return "cusum"

    def limits(self) -> tuple[float, float]:
        return -self.h, self.h

    def init(self, n: int = 1) -> dict:
        return {"hi": np.zeros(n), "lo": np.zeros(n)}

    def step(self, state: dict, z) -> tuple[dict, Point]:
        z = _as_z(z, state["hi"].shape[0])
        hi = np.maximum(0.0, state["hi"] + z - self.k)
        lo = np.maximum(0.0, state["lo"] - z - self.k)
        alarm = (hi > self.h) | (lo > self.h)
        stat = np.where(hi >= lo, hi, -lo)
        return {"hi": hi, "lo": lo}, Point(stat, -self.h, self.h, alarm, alarm.astype(np.int8))


Chart = Shewhart | EWMA | CUSUM
CHART_KINDS = ("shewhart", "shewhart_we", "ewma", "cusum")


def make_chart(kind: str, **params) -> Chart:
    """``make_chart("ewma", lam=0.1, L=2.7)``; kinds: shewhart, shewhart_we (all four rules), ewma, cusum."""
    if kind == "shewhart":
        return Shewhart(params.get("L", 3.0), rules=params.get("rules", (1,)))
    if kind == "shewhart_we":
        return Shewhart(params.get("L", 3.0), rules=params.get("rules", WE_RULES))
    if kind == "ewma":
        return EWMA(params.get("lam", 0.1), params.get("L", 2.7))
    if kind == "cusum":
        return CUSUM(params.get("k", 0.5), params.get("h", 5.0))
    raise ParameterError("kind", f"kind must be one of {', '.join(CHART_KINDS)}; got {kind!r}")


def describe_chart(chart: Chart) -> str:
    """``EWMA(lambda=0.1, L=2.148)``: a chart's design in a few significant digits."""
    if isinstance(chart, Shewhart):
        rules = "" if chart.rules == (1,) else f", rules {''.join(map(str, chart.rules))}"
        return f"Shewhart(L={chart.L:.4g}{rules})"
    if isinstance(chart, EWMA):
        return f"EWMA(lambda={chart.lam:.4g}, L={chart.L:.4g})"
    return f"CUSUM(k={chart.k:.4g}, h={chart.h:.4g})"


def run_chart(chart: Chart, z) -> dict[str, np.ndarray]:
    """Run one chart over the sequence ``z``; return statistic, alarm and rule per point, and the limits.

    Alarms do not reset the chart (the caller decides what an alarm triggers)."""
    z = np.asarray(z, dtype=float).reshape(-1)
    state = chart.init(1)
    stat, alarm, rule = np.empty(z.size), np.zeros(z.size, bool), np.zeros(z.size, np.int8)
    for i, v in enumerate(z):
        state, p = chart.step(state, [v])
        stat[i], alarm[i], rule[i] = p.statistic[0], p.alarm[0], p.rule[0]
    lower, upper = chart.limits()
    return {"statistic": stat, "alarm": alarm, "rule": rule, "lower": lower, "upper": upper}
