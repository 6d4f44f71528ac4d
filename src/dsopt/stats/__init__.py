"""Statistics for verdicts: paired comparisons over seeds, intervals, Holm, three-valued claim status.

Every chapter's verdict goes through this package so that none can overclaim:

>>> from dsopt.stats import Claim, paired, sample, assess, assess_all
>>> cmp = paired(treatment=[0.84, 0.86, 0.85], baseline=[0.82, 0.83, 0.83])   # same seeds, same order
>>> v = assess(cmp, Claim.between(0.02, 0.05, text="+2 to +5 points", scale=100, unit=" points", digits=1))
>>> v.status in ("supported", "contradicted", "inconclusive")
True

- :func:`paired` / :func:`sample`: estimates over seeds (paired difference, relative change, ratio; a level),
  Student-t intervals (Fieller for ratios), zero or indistinguishable-from-zero baselines made explicit.
- :class:`Claim`: a claimed range (``at_least``, ``at_most``, ``between``) on one quantity.
- :func:`assess` (one claim) / :func:`assess_all` (a family, Holm-corrected) -> :class:`Verdict` with a
  status "supported" / "contradicted" / "inconclusive" (at this budget, with the seeds that would decide).
- :func:`mean_sd`: the one mean/sd helper (sd of one value is nan, never 0).
- Rendering: ``Interval.render``, ``Verdict.line``, :func:`verdicts_markdown`.

This package imports only ``dsopt.util`` (and numpy/scipy): techniques, studies and chapters may use it.
"""
from dsopt.stats.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    MIN_SEEDS,
    STATUSES,
    SUPPORTED,
    Claim,
    Verdict,
    assess,
    assess_all,
    holm,
    seeds_needed,
)
from dsopt.stats.estimates import QUANTITIES, Interval, PairedComparison, Sample, paired, sample
from dsopt.stats.render import format_interval, format_mean_sd, format_number, verdict_line, verdicts_markdown
from dsopt.stats.summary import mean_sd, summarize_seeds

__all__ = [
    "CONTRADICTED", "INCONCLUSIVE", "MIN_SEEDS", "QUANTITIES", "STATUSES", "SUPPORTED",
    "Claim", "Interval", "PairedComparison", "Sample", "Verdict",
    "assess", "assess_all", "format_interval", "format_mean_sd", "format_number", "holm", "mean_sd", "paired", "sample",
    "seeds_needed", "summarize_seeds", "verdict_line", "verdicts_markdown",
]
