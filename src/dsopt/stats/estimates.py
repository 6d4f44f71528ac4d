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
statuses and for the power of a larger experiment (:mod:`dsopt.stats.power`).

Resolution (``resolution=``, in the values' units: 1 for whole epochs, 1/n for an accuracy on n
examples, a timer's tick). Values that are rounded to a grid are not known better than that grid:

- **Quantisation noise.** Each measured value carries a rounding error we model as uniform on one
  grid step, variance ``resolution**2 / 12`` (Sheppard), independent of the seed noise. It is *added*
  to the observed variance of every per-unit contrast used for intervals and tests (a difference of
  two rounded values gets ``2 r**2 / 12``; the ratio contrast ``t - R b`` gets ``(1 + R**2) r**2 / 12``;
  the same terms enter Fieller's variances). Adding it never narrows an interval, and a zero observed
  spread then gives an interval of width ``2 t sqrt(q / n)``, never zero. Degrees of freedom stay n - 1.
- **Float tolerance.** Whatever the resolution, values closer than ``FLOAT_RTOL`` x their magnitude
  + ``FLOAT_ATOL`` are equal (float rounding, ~1e-16, is not a difference). It enters only the
  "equal within resolution" flag and the degenerate-interval check, never the variance.
- **Equal within resolution** (:meth:`PairedComparison.equal_within_resolution`): every unit's paired
  difference is below one grid step (strictly, by more than the float tolerance), or within the
  float tolerance of 0 (one unit that differs by a whole step is a measured difference). Such an
  estimate never supports a claim whose range excludes "no change" (see :mod:`dsopt.stats.claims`).
- A baseline mean below one resolution step (|mean| < resolution) counts as a zero baseline (its relative change is
  undefined): one whole step, e.g. a decay period of 1 window, is a measured baseline.

Units (``unit=``): what one value counts, one of :data:`UNITS`; every printed count uses it
("5 repeats", never "5 seeds" for repeats), see :func:`count`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats as sps

from dsopt.stats.summary import as_values
from dsopt.util.validation import ParameterError, check_choice, check_number

__all__ = ["FLOAT_ATOL", "FLOAT_RTOL", "QUANTITIES", "UNITS", "Interval", "Sample", "PairedComparison", "count",
           "sample", "paired", "t_quantile"]

#: What one per-unit value counts (``Interval.unit``, ``paired(..., unit=)``).
UNITS = ("seed", "repeat", "batch", "block", "stream order")
#: Float tolerance, always applied: values within FLOAT_RTOL x magnitude + FLOAT_ATOL are equal.
FLOAT_RTOL, FLOAT_ATOL = 1e-9, 1e-12


def check_unit(unit: str) -> str:
    """``unit`` if it is one of :data:`UNITS` (ParameterError naming "unit" otherwise)."""
    return check_choice("unit", unit, UNITS)


def count(n: int, unit: str) -> str:
    """``"5 repeats"``, ``"1 seed"``, ``"4 batches"``: a count in its unit (the one plural rule every text uses)."""
    if n == 1:
        return f"{n} {unit}"
    return f"{n} {unit}{'es' if unit.endswith(('ch', 'sh', 's', 'x')) else 's'}"


def float_tolerance(*arrays) -> float:
    """The float tolerance for values like ``arrays``: FLOAT_RTOL x their largest magnitude + FLOAT_ATOL."""
    mag = max((float(np.max(np.abs(a))) for a in arrays if np.size(a)), default=0.0)
    return FLOAT_RTOL * mag + FLOAT_ATOL


def _check_resolution(resolution) -> float:
    return float(check_number("resolution", resolution, low=0.0))

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
    #: What ``n`` counts, one of :data:`UNITS`: "seed" for runs over seeds, "repeat" for timing repeats, ...
    unit: str = "seed"

    def __post_init__(self):
        check_unit(self.unit)

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

    @classmethod
    def from_dict(cls, d: dict) -> "Interval":
        """The interval :meth:`as_dict` wrote ("-inf"/"inf" and None ends included)."""
        def end(x):
            return math.nan if x is None else float(x)
        return cls(end(d.get("low")), end(d.get("high")), float(d["level"]), d.get("method", ""), int(d["n"]),
                   d.get("unit", "seed"))

    def as_dict(self) -> dict:
        """JSON-safe: unbounded ends are the strings "-inf"/"inf", a missing interval is None."""
        def end(x):
            return None if math.isnan(x) else x if math.isfinite(x) else ("inf" if x > 0 else "-inf")
        return {"low": end(self.low), "high": end(self.high), "level": self.level, "method": self.method, "n": self.n,
                "unit": self.unit}


def _t_interval(x: np.ndarray, level: float, method: str, unit: str, q: float = 0.0) -> Interval:
    """t interval of mean(x); ``q`` is the quantisation variance per unit added to the sample variance."""
    n = x.size
    if n < 2:
        return Interval(math.nan, math.nan, level, method, n, unit)
    m, se = float(x.mean()), math.sqrt((float(x.var(ddof=1)) + q) / n)
    h = t_quantile(level, n - 1) * se
    return Interval(m - h, m + h, level, method, n, unit)


def _check_level(level: float) -> float:
    return float(check_number("level", level, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False))


class Sample:
    """One arm's values over seeds: its mean (``level``) with a t interval."""

    kind = "sample"
    quantities = ("level",)

    def __init__(self, values: Iterable[float] | Mapping, *, name: str = "", unit: str = "seed",
                 resolution: float = 0.0):
        self.unit = check_unit(unit)
        self.resolution = _check_resolution(resolution)
        if isinstance(values, Mapping):
            self.seeds = list(values)
            values = [values[s] for s in self.seeds]
        else:
            values = list(values)
            self.seeds = list(range(len(values)))
        self.values = as_values(values, "values")
        self.name = name
        self.tol = float_tolerance(self.values)

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
        return _t_interval(self.values, _check_level(level), "t", self.unit, self.quantisation_var())

    def contrast(self, on: str, c: float) -> np.ndarray:
        """Per-seed values whose mean is > 0 exactly when the mean is > ``c``."""
        self._check_on(on)
        return self.values - c

    def quantisation_var(self, on: str = "level", c: float = 0.0) -> float:
        """Quantisation variance of one unit's contrast: resolution**2 / 12."""
        return self.resolution ** 2 / 12

    def equal_within_resolution(self, on: str = "level") -> bool:
        """Always False: one arm's level has no "no change" to be equal to."""
        return False

    @property
    def null(self) -> dict:
        """No "no change" value: a level claim is about the level itself."""
        return {}

    def method(self, on: str = "level") -> str:
        return "t"

    def _check_on(self, on: str) -> None:
        if on not in self.quantities:
            raise ParameterError("on", f"a one-arm sample has only a level; on must be 'level', got {on!r} "
                                       "(use paired(treatment, baseline) for differences and ratios)")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "n": self.n, "unit": self.unit, "mean": self.mean,
                "sd": None if self.n < 2 else self.sd, "resolution": self.resolution}


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
                 seeds: Sequence | None = None, name: str = "", tiny: float = 1e-12, unit: str = "seed",
                 resolution: float = 0.0):
        check_unit(unit)
        resolution = _check_resolution(resolution)
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
        self.unit = unit
        self.tiny = float(check_number("tiny", tiny, low=0.0))
        self.resolution = resolution
        self.tol = float_tolerance(self.treatment, self.baseline)

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
        """Two-sided paired t-test of "no difference" (nan below 2 seeds), quantisation variance included;
        without any spread (and no resolution): 1 when the arms are equal within float tolerance, else 0."""
        if self.n < 2:
            return math.nan
        d = self.differences
        q = self.quantisation_var()
        if q == 0 and np.all(d == d[0]):
            return 1.0 if abs(d[0]) <= self.tol else 0.0
        if q == 0:
            return float(sps.ttest_rel(self.treatment, self.baseline).pvalue)
        t = float(d.mean()) / math.sqrt((float(d.var(ddof=1)) + q) / self.n)
        return float(2 * sps.t.sf(abs(t), self.n - 1))

    def equal_within_resolution(self, on: str = "difference") -> bool:
        """The arms are equal within resolution in every unit: each per-unit difference is below one grid step
        (by more than the float tolerance), or within the float tolerance of 0 when no resolution is declared
        (e.g. whole epochs [12, 12, 12] vs [12, 12, 12]; differences of ~1e-16).

        The same for every quantity (difference, relative, ratio): the arms' difference is what is below the
        grid. Such an estimate never supports a claim that excludes "no change". One unit that differs by a
        whole step is a measured difference (the mean of noisy quantised values resolves below the grid), so
        [12, 12, 12] vs [12, 13, 12] is not "equal within resolution": its interval decides.
        """
        m = np.abs(self.differences)
        return bool(np.all(m <= self.tol) or (self.resolution > 0 and np.all(m < self.resolution - self.tol)))

    def quantisation_var(self, on: str = "difference", c: float = 0.0) -> float:
        """Quantisation variance of one unit's contrast for ``on`` at ``c`` (see the module doc)."""
        one = self.resolution ** 2 / 12
        if on == "difference":
            return 2 * one
        r = c + 1.0 if on == "relative" else c
        return (1 + r * r) * one

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
            zero = "zero" if abs(b) <= self.tiny else f"zero within the resolution {self.resolution:.3g}"
            return f"the baseline mean is {b:.3g} ({zero}), so a {on} change is undefined"
        if self.n >= 2 and not self._fieller(level)[2]:
            return (f"the baseline mean {b:.3g} is not distinguishable from zero at this noise "
                    f"({100 * level:g} % level, {count(self.n, self.unit)}), so the {on} change is unbounded")
        return None

    def interval(self, on: str = "difference", level: float = 0.95) -> Interval:
        """Paired-t interval of the difference; Fieller interval of the ratio / relative change."""
        self._check_on(on)
        level = _check_level(level)
        if on == "difference":
            return _t_interval(self.differences, level, "paired t", self.unit, self.quantisation_var())
        method = "Fieller, paired t"
        if self.n < 2 or self._zero_baseline():
            return Interval(math.nan, math.nan, level, method, self.n, self.unit)
        lo, hi, bounded = self._fieller(level)
        if not bounded:
            return Interval(-math.inf, math.inf, level, method, self.n, self.unit)
        shift = 1.0 if on == "relative" else 0.0
        return Interval(lo - shift, hi - shift, level, method, self.n, self.unit)

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

    @property
    def null(self) -> dict:
        """The "no change" value of each quantity."""
        return {"difference": 0.0, "relative": 0.0, "ratio": 1.0}

    def _zero_baseline(self) -> bool:
        b = abs(self.baseline_mean)
        return b <= self.tiny or (self.resolution > 0 and b < self.resolution - self.tol)

    def _fieller(self, level: float) -> tuple[float, float, bool]:
        """Fieller's interval for mean(t) / mean(b) with paired (correlated) seeds: (low, high, bounded)."""
        n = self.n
        q2 = t_quantile(level, n - 1) ** 2
        a, b = self.treatment_mean, self.baseline_mean
        cov = np.cov(self.treatment, self.baseline, ddof=1) / n  # variances and covariance of the two means
        q = self.resolution ** 2 / 12 / n  # each arm's quantisation variance of its mean (independent)
        s_tt, s_bb, s_tb = float(cov[0, 0]) + q, float(cov[1, 1]) + q, float(cov[0, 1])
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
                "p_value": None if self.n < 2 else self.p_value, "unit": self.unit, "resolution": self.resolution,
                "equal_within_resolution": self.equal_within_resolution()}


def sample(values: Iterable[float] | Mapping, *, name: str = "", unit: str = "seed",
           resolution: float = 0.0) -> Sample:
    """One arm's values over seeds (a list, or a mapping seed -> value). ``unit`` names what is counted
    (one of :data:`UNITS`); ``resolution`` is the values' grid (>= 0, see the module doc)."""
    return Sample(values, name=name, unit=unit, resolution=resolution)


def paired(treatment: Sequence[float] | Mapping, baseline: Sequence[float] | Mapping, *, seeds: Sequence | None = None,
           name: str = "", tiny: float = 1e-12, unit: str = "seed", resolution: float = 0.0) -> PairedComparison:
    """Compare ``treatment`` with ``baseline`` seed by seed (lists aligned by seed, or mappings seed -> value).

    ``unit`` names what pairs them when it is not a seed (e.g. "repeat" for interleaved timings; one of
    :data:`UNITS`). ``resolution`` (>= 0, in the values' units) is the grid the values are rounded to:
    1 for whole epochs, 1/n for an accuracy on n examples (see the module doc for how it is used).
    """
    return PairedComparison(treatment, baseline, seeds=seeds, name=name, tiny=tiny, unit=unit, resolution=resolution)
