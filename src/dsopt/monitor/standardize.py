"""Standardise a monitored statistic on a reference period, so every chart sees z ~ N(0, 1) in control.

Two textbook estimators (Montgomery, ch. 6):

* **individuals** (one value per window, e.g. the drift score): centre = mean of the reference
  values, sigma = average moving range / d2 (d2 = 1.128 for ranges of two), which is robust to a
  slow trend inside the reference period;
* **X-bar** (a window is a subgroup of item values, e.g. each prediction's confidence or 0/1 error):
  centre = grand mean, sigma = pooled within-window standard deviation, and a window of n items
  gets z = (mean - centre) / (sigma / sqrt(n)), so windows of different sizes are comparable.

The estimates carry Phase-I error: with few reference windows the real in-control ARL differs from
the nominal one. The chapter measures false alarms on real data instead of trusting the nominal value.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dsopt.util.validation import ParameterError, check_choice

D2_TWO = 1.128  # E[range of two N(0, 1)] = 2 / sqrt(pi)
KINDS = ("individuals", "xbar")


@dataclass(frozen=True)
class Reference:
    """Centre and sigma of one statistic, estimated on a reference period.

    ``kind="xbar"``: ``sigma`` is the sd of one item; :meth:`z` divides by sigma / sqrt(n).
    """

    kind: str
    centre: float
    sigma: float
    n_windows: int

    def __post_init__(self):
        check_choice("kind", self.kind, KINDS)
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ParameterError("sigma", f"the reference period shows no variation (sigma={self.sigma!r}): "
                                          "use more reference windows or another statistic")

    @classmethod
    def individuals(cls, values: Sequence[float]) -> Reference:
        """Fit on one value per reference window (moving-range sigma)."""
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size < 3:
            raise ParameterError("values", f"need at least 3 reference windows; got {v.size}")
        return cls("individuals", float(v.mean()), float(np.abs(np.diff(v)).mean() / D2_TWO), int(v.size))

    @classmethod
    def xbar(cls, windows: Sequence[Sequence[float]]) -> Reference:
        """Fit on the item values of each reference window (pooled within-window sigma)."""
        groups = [np.asarray(w, dtype=float) for w in windows]
        groups = [g[np.isfinite(g)] for g in groups]
        groups = [g for g in groups if g.size >= 2]
        if len(groups) < 3:
            raise ParameterError("windows", f"need at least 3 reference windows of >= 2 items; got {len(groups)}")
        allv = np.concatenate(groups)
        dof = sum(g.size - 1 for g in groups)
        pooled = math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof)
        return cls("xbar", float(allv.mean()), pooled, len(groups))

    def z(self, value: float, n: int | None = None) -> float:
        """Standardised value of a window statistic (``n`` = items in the window, for X-bar)."""
        if self.kind == "xbar":
            if not n:
                raise ParameterError("n", "an X-bar reference needs the window's item count n >= 1")
            return (float(value) - self.centre) / (self.sigma / math.sqrt(n))
        return (float(value) - self.centre) / self.sigma

    def to_dict(self) -> dict:
        return {"kind": self.kind, "centre": self.centre, "sigma": self.sigma, "n_windows": self.n_windows}
