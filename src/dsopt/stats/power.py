"""How many units would decide a claim, as a probability: "about N seeds give an 80 % chance of a decision".

The old rule plugged the observed mean and sd in as the truth and solved for the n at which the
interval would clear the claim's end; with 3 seeds that n decided the claim only 53-69 % of the time.
Here the answer is a probability that counts the uncertainty of the current estimate:

1. From the current ``n`` units, for each of the claim's ends ``c`` the per-unit contrast (mean > 0
   exactly when the quantity > c, see :meth:`~dsopt.stats.PairedComparison.contrast`) has mean ``m``
   and sd ``s``. Its noise variance is drawn from the scaled-inverse-chi^2 posterior
   ``sigma^2 = (n - 1) s^2 / chi^2_{n-1}``, its mean from ``N(m, sigma^2 / n)`` (the usual
   noninformative-prior posterior of a normal mean and variance).
2. A new experiment of ``N`` units is then drawn from that truth: its mean ``N(mu, sigma^2 / N)``
   and its sample variance ``sigma^2 chi^2_{N-1} / (N - 1)`` (exact for normal units, so no per-unit
   arrays are needed), and judged with the same t rule at the same level (the quantisation variance
   of the estimate's resolution is added as :func:`~dsopt.stats.assess` adds it).
3. A decision is "supported" (every end decided on the inside) or "contradicted" (some end decided on
   the outside). :func:`decision_probability` is the share of :data:`SIMS` simulated experiments
   that decide; :func:`units_for_power` is the smallest N >= MIN_SEEDS whose probability reaches
   ``power`` (0.8), by doubling and bisection over N with the same random numbers at every N.

All ends share one set of random numbers. For a difference or a level the contrasts at two ends
differ only by a constant, so that is exact; for a ratio or relative claim with two ends the two
contrasts ``t - c b`` are treated as perfectly correlated, an approximation. The rng is seeded
(:data:`SEED`), so the same data always give the same N. One call costs a few milliseconds.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

__all__ = ["POWER", "SEED", "SIMS", "decision_probability", "units_for_power"]

#: The chance of a decision that "about N units" promises.
POWER = 0.8
#: Simulated experiments per probability.
SIMS = 4000
#: The fixed seed of every simulation (same data -> same answer).
SEED = 20240607
#: Give up above this many units.
MAX_UNITS = 10_000


def _ends(est, claim):
    """[(c, low_end, mean, sd, q)] for each end of the claim."""
    out = []
    for c, low_end in ((claim.low, True), (claim.high, False)):
        if c is None:
            continue
        x = est.contrast(claim.on, c)
        out.append((c, low_end, float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else math.nan,
                    float(est.quantisation_var(claim.on, c))))
    return out


class _Simulator:
    def __init__(self, est, claim, alpha: float, sims: int, seed: int):
        self.ends = _ends(est, claim)
        self.n, self.alpha, self.sims, self.seed = est.n, alpha, sims, seed
        rng = np.random.default_rng(seed)
        df = self.n - 1
        self.u = rng.chisquare(df, sims) if df > 0 else None
        self.z = rng.standard_normal(sims)
        self.w = rng.standard_normal(sims)

    def probability(self, N: int) -> float:
        """P(decision) with N units (N >= 2)."""
        n, df_new = self.n, N - 1
        v = np.random.default_rng(self.seed + 1).chisquare(df_new, self.sims)  # same stream at every N
        crit = float(sps.t.ppf(1 - self.alpha / 2, df_new))
        inside_all = np.ones(self.sims, dtype=bool)
        outside_any = np.zeros(self.sims, dtype=bool)
        for _, low_end, m, s, q in self.ends:
            sigma = np.sqrt((n - 1) * s * s / self.u)  # posterior draw of the noise sd
            mu = m + self.z * sigma / math.sqrt(n)     # posterior draw of the mean, given sigma
            xbar = mu + self.w * sigma / math.sqrt(N)
            s2 = sigma * sigma * v / df_new
            se = np.sqrt((s2 + q) / N)
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(se > 0, xbar / np.where(se > 0, se, 1.0), np.sign(xbar) * np.inf)
            up, down = t > crit, t < -crit
            inside_all &= up if low_end else down
            outside_any |= down if low_end else up
        return float(np.mean(inside_all | outside_any))


def decision_probability(est, claim, n_units: int, *, alpha: float = 0.05, sims: int = SIMS, seed: int = SEED) -> float:
    """The probability that a new experiment of ``n_units`` units decides ``claim`` (supported or
    contradicted by the t rule at level 1 - ``alpha``), given the current estimate ``est`` with its
    uncertainty (see the module doc). nan when the noise is unknown (fewer than 2 units)."""
    if est.n < 2 or n_units < 2:
        return math.nan
    return _Simulator(est, claim, alpha, sims, seed).probability(int(n_units))


def units_for_power(est, claim, *, alpha: float = 0.05, power: float = POWER, min_units: int = 3,
                    sims: int = SIMS, seed: int = SEED) -> tuple[int | None, float]:
    """(smallest N >= ``min_units`` with P(decision) >= ``power``, that probability); (None, nan) when the
    noise is unknown (one unit) or more than :data:`MAX_UNITS` would be needed."""
    if est.n < 2:
        return None, math.nan
    sim = _Simulator(est, claim, alpha, sims, seed)
    cache: dict[int, float] = {}

    def p(N):
        if N not in cache:
            cache[N] = sim.probability(N)
        return cache[N]

    hi = max(min_units, 2)
    while p(hi) < power:
        if hi >= MAX_UNITS:
            return None, math.nan
        hi = min(hi * 2, MAX_UNITS)
    lo = max(min_units, hi // 2)
    if p(lo) >= power:
        return lo, p(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if p(mid) >= power else (mid, hi)
    return hi, p(hi)
