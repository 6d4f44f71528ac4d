"""Estimates over seeds with their intervals: one sample (a level) and a paired comparison (two arms).

Every chapter measures arms that share seeds by construction (same initial weights, same batch
order per seed), so two arms are compared *paired*: the per-seed differences carry the comparison,
and the noise that both arms share cancels. The standard error is that of the *mean* difference
(sd of the differences / sqrt(n)), not the spread of one run's difference.

Intervals are Student-t intervals (``scipy.stats.t``) at a stated level. Ratios and relative changes
(treatment mean / baseline mean, and that minus 1) use Fieller's interval for paired means, the
t interval's exact counterpart for a ratio: a ratio R is inside it when the per-seed contrast
``treatment - R * baseline`` has a mean compatible with 0. When the baseline's mean is zero, or not
distinguishable from zero at the observed noise, that set is unbounded and the relative change is
*undefined*: :meth:`PairedComparison.undefined` says why, and the absolute change is still reported.

Every quantity is tested against a value ``c`` the same way (:meth:`contrast`): a per-seed contrast
whose mean is > 0 exactly when the quantity is > c. :mod:`dsopt.stats.claims` uses that for claim
statuses and for "how many seeds would decide it".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats as sps

from dsopt.stats.summary import as_values
from dsopt.util.validation import ParameterError, check_choice, check_number

__all__ = ["QUANTITIES", "Interval", "Sample", "PairedComparison", "sample", "paired", "t_quantile"]

#: What a claim can be about: a paired comparison's ``difference`` (treatment - baseline),
#: ``relative`` change (difference / baseline mean), ``ratio`` (treatment mean / baseline mean),
#: or one arm's ``level`` (its mean, e.g. "AUC at least 0.94").
QUANTITIES = ("difference", "relative", "ratio", "level")


def t_quantile(level: float, df: int) -> float:
    """The two-sided Student-t quantile for a ``level`` interval with ``df`` degrees of freedom."""
    return float(sps.t.ppf(0.5 + level / 2, df))


@dataclass(frozen=True)
class Interval:
    """A confidence interval: ``[low, high]`` at ``level`` by ``method`` from ``n`` seeds.

    ``low``/``high`` are ``-inf``/``inf`` for an unbounded interval and ``nan`` when there is none
    (one seed). ``render`` gives the one-line form used in verdicts.
    """

    low: float
    high: float
    level: float
    method: str
    n: int

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    @property
    def bounded(self) -> bool:
        return self.defined and math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, x: float) -> bool:
        return self.defined and self.low <= x <= self.high

    def render(self, *, scale: float = 1.0, digits: int = 3, unit: str = "", signed: bool = False,
               point: float | None = None) -> str:
        """One line: ``"+3.1 points [+1.2, +5.0] (95 % paired-t interval, 5 seeds)"``.

        ``scale`` multiplies every number (100 for points or percent), ``unit`` follows the numbers,
        ``signed`` prints a + on positive numbers, ``point`` (the estimate) goes first when given.
        """
        from dsopt.stats.render import format_interval

        return format_interval(self, point=point, scale=scale, digits=digits, unit=unit, signed=signed)

    def as_dict(self) -> dict:
        """JSON-safe: unbounded ends are the strings "-inf"/"inf", a missing interval is None."""
        if not self.defined:
            return {"low": None, "high": None, "level": self.level, "method": self.method, "n": self.n}
        def end(x):
            return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")
        return {"low": end(self.low), "high": end(self.high), "level": self.level, "method": self.method, "n": self.n}


def _t_interval(x: np.ndarray, level: float, method: str) -> Interval:
    n = x.size
    if n < 2:
        return Interval(math.nan, math.nan, level, method, n)
    m, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(n))
    h = t_quantile(level, n - 1) * se
    return Interval(m - h, m + h, level, method, n)


def _check_level(level: float) -> float:
    return float(check_number("level", level, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False))


class Sample:
    """One arm's values over seeds: its mean (``level``) with a t interval."""

    kind = "sample"
    quantities = ("level",)

    def __init__(self, values: Iterable[float] | Mapping, *, name: str = ""):
        if isinstance(values, Mapping):
            self.seeds = list(values)
            values = [values[s] for s in self.seeds]
        else:
            values = list(values)
            self.seeds = list(range(len(values)))
        self.values = as_values(values, "values")
        self.name = name

    @property
    def n(self) -> int:
        return int(self.values.size)

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def sd(self) -> float:
        return float(self.values.std(ddof=1)) if self.n > 1 else math.nan

    @property
    def se(self) -> float:
        return self.sd / math.sqrt(self.n)

    def point(self, on: str = "level") -> float:
        self._check_on(on)
        return self.mean

    def undefined(self, on: str = "level", level: float = 0.95) -> str | None:
        """Always None: a sample mean is always defined (the signature matches the paired one's)."""
        self._check_on(on)
        return None

    def interval(self, on: str = "level", level: float = 0.95) -> Interval:
        self._check_on(on)
        return _t_interval(self.values, _check_level(level), "t")

    def contrast(self, on: str, c: float) -> np.ndarray:
        """Per-seed values whose mean is > 0 exactly when the mean is > ``c``."""
        self._check_on(on)
        return self.values - c

    def method(self, on: str = "level") -> str:
        return "t"

    def _check_on(self, on: str) -> None:
        if on not in self.quantities:
            raise ParameterError("on", f"a one-arm sample has only a level; on must be 'level', got {on!r} "
                                       "(use paired(treatment, baseline) for differences and ratios)")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "n": self.n, "mean": self.mean,
                "sd": None if self.n < 2 else self.sd}


class PairedComparison:
    """Treatment vs baseline over the same seeds: paired difference, relative change and ratio.

    ``difference``: mean of per-seed (treatment - baseline), its sd and standard error, a paired-t
    interval and the paired t-test's p-value against 0 (``scipy.stats.ttest_rel``).
    ``ratio`` = mean(treatment) / mean(baseline) and ``relative`` = ratio - 1, with Fieller intervals;
    both are undefined when the baseline mean is within ``tiny`` of 0 or (at the interval's level) not
    distinguishable from 0.
    """

    kind = "paired"
    quantities = ("difference", "relative", "ratio")

    def __init__(self, treatment: Sequence[float] | Mapping, baseline: Sequence[float] | Mapping, *,
                 seeds: Sequence | None = None, name: str = "", tiny: float = 1e-12):
        if isinstance(treatment, Mapping) != isinstance(baseline, Mapping):
            raise ParameterError("baseline", "treatment and baseline must both be sequences (aligned by seed) "
                                             "or both be mappings seed -> value")
        if isinstance(treatment, Mapping):
            missing = sorted(set(treatment) ^ set(baseline), key=repr)
            if missing:
                raise ParameterError("baseline", f"arms must share seeds (paired comparison); seeds in only one arm: {missing}")
            self.seeds = list(treatment)
            treatment = [treatment[s] for s in self.seeds]
            baseline = [baseline[s] for s in self.seeds]
        else:
            treatment, baseline = list(treatment), list(baseline)
            if len(treatment) != len(baseline):
                raise ParameterError("baseline", f"arms must share seeds (paired comparison): {len(treatment)} "
                                                 f"treatment values vs {len(baseline)} baseline values")
            self.seeds = list(seeds) if seeds is not None else list(range(len(treatment)))
            if len(self.seeds) != len(treatment):
                raise ParameterError("seeds", f"one seed per value: {len(self.seeds)} seeds for {len(treatment)} values")
        self.treatment = as_values(treatment, "treatment")
        self.baseline = as_values(baseline, "baseline")
        self.name = name
        self.tiny = float(check_number("tiny", tiny, low=0.0))

    # -- the difference ---------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.treatment.size)

    @property
    def differences(self) -> np.ndarray:
        return self.treatment - self.baseline

    @property
    def diff(self) -> float:
        """Mean paired difference (treatment - baseline)."""
        return float(self.differences.mean())

    @property
    def sd(self) -> float:
        """Sample sd of the per-seed differences (nan for one seed)."""
        return float(self.differences.std(ddof=1)) if self.n > 1 else math.nan

    @property
    def se(self) -> float:
        """Standard error of the mean difference: sd / sqrt(n) (nan for one seed)."""
        return self.sd / math.sqrt(self.n)

    @property
    def p_value(self) -> float:
        """Two-sided paired t-test of "no difference" (nan below 2 seeds; 1 or 0 without any spread)."""
        if self.n < 2:
            return math.nan
        d = self.differences
        if np.all(d == d[0]):
            return 1.0 if d[0] == 0 else 0.0
        return float(sps.ttest_rel(self.treatment, self.baseline).pvalue)

    @property
    def treatment_mean(self) -> float:
        return float(self.treatment.mean())

    @property
    def baseline_mean(self) -> float:
        return float(self.baseline.mean())

    # -- every quantity -----------------------------------------------------------------------
    def point(self, on: str = "difference") -> float:
        """The estimate of ``on`` (nan for an undefined ratio)."""
        self._check_on(on)
        if on == "difference":
            return self.diff
        if self._zero_baseline():
            return math.nan
        ratio = self.treatment_mean / self.baseline_mean
        return ratio if on == "ratio" else ratio - 1.0

    def undefined(self, on: str = "difference", level: float = 0.95) -> str | None:
        """Why ``on`` has no usable estimate/interval here (None when it has one)."""
        self._check_on(on)
        if on == "difference":
            return None
        b = self.baseline_mean
        if self._zero_baseline():
            return f"the baseline mean is {b:.3g} (zero), so a {on} change is undefined"
        if self.n >= 2 and not self._fieller(level)[2]:
            return (f"the baseline mean {b:.3g} is not distinguishable from zero at this noise "
                    f"({100 * level:g} % level, {self.n} seeds), so the {on} change is unbounded")
        return None

    def interval(self, on: str = "difference", level: float = 0.95) -> Interval:
        """Paired-t interval of the difference; Fieller interval of the ratio / relative change."""
        self._check_on(on)
        level = _check_level(level)
        if on == "difference":
            return _t_interval(self.differences, level, "paired t")
        method = "Fieller, paired t"
        if self.n < 2 or self._zero_baseline():
            return Interval(math.nan, math.nan, level, method, self.n)
        lo, hi, bounded = self._fieller(level)
        if not bounded:
            return Interval(-math.inf, math.inf, level, method, self.n)
        shift = 1.0 if on == "relative" else 0.0
        return Interval(lo - shift, hi - shift, level, method, self.n)

    def contrast(self, on: str, c: float) -> np.ndarray:
        """Per-seed values whose mean is > 0 exactly when the quantity ``on`` is > ``c``.

        difference: (t - b) - c; ratio: sign(mean b) * (t - c * b); relative: the ratio at c + 1.
        """
        self._check_on(on)
        if on == "difference":
            return self.differences - c
        r = c + 1.0 if on == "relative" else c
        return math.copysign(1.0, self.baseline_mean) * (self.treatment - r * self.baseline)

    def method(self, on: str = "difference") -> str:
        return "paired t" if on == "difference" else "Fieller, paired t"

    def _check_on(self, on: str) -> None:
        check_choice("on", on, self.quantities)

    def _zero_baseline(self) -> bool:
        return abs(self.baseline_mean) <= self.tiny

    def _fieller(self, level: float) -> tuple[float, float, bool]:
        """Fieller's interval for mean(t) / mean(b) with paired (correlated) seeds: (low, high, bounded)."""
        n = self.n
        q2 = t_quantile(level, n - 1) ** 2
        a, b = self.treatment_mean, self.baseline_mean
        cov = np.cov(self.treatment, self.baseline, ddof=1) / n  # variances and covariance of the two means
        s_tt, s_bb, s_tb = float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1])
        A = b * b - q2 * s_bb
        if A <= 0:
            return -math.inf, math.inf, False
        B = a * b - q2 * s_tb
        C = a * a - q2 * s_tt
        disc = max(B * B - A * C, 0.0)
        root = math.sqrt(disc)
        return (B - root) / A, (B + root) / A, True

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "n": self.n, "treatment_mean": self.treatment_mean,
                "baseline_mean": self.baseline_mean, "difference": self.diff,
                "difference_sd": None if self.n < 2 else self.sd, "difference_se": None if self.n < 2 else self.se,
                "p_value": None if self.n < 2 else self.p_value}


def sample(values: Iterable[float] | Mapping, *, name: str = "") -> Sample:
    """One arm's values over seeds (a list, or a mapping seed -> value)."""
    return Sample(values, name=name)


def paired(treatment: Sequence[float] | Mapping, baseline: Sequence[float] | Mapping, *, seeds: Sequence | None = None,
           name: str = "", tiny: float = 1e-12) -> PairedComparison:
    """Compare ``treatment`` with ``baseline`` seed by seed (lists aligned by seed, or mappings seed -> value)."""
    return PairedComparison(treatment, baseline, seeds=seeds, name=name, tiny=tiny)
