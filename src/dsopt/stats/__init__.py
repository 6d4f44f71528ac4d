"""Statistics for verdicts: paired comparisons over seeds, intervals, Holm, three-valued claim status.

Every chapter's verdict goes through this package so that none can overclaim:

>>> from dsopt.stats import Claim, paired, sample, assess, assess_all
>>> cmp = paired(treatment=[0.84, 0.86, 0.85], baseline=[0.82, 0.83, 0.83])   # same seeds, same order
>>> v = assess(cmp, Claim.between(0.02, 0.05, text="+2 to +5 points", scale=100, unit=" points", digits=1))
>>> v.status in ("supported", "contradicted", "inconclusive", "not testable here", "not decidable by this design")
True

- :func:`paired` / :func:`sample`: estimates over seeds (paired difference, relative change, ratio; a level),
  Student-t intervals (Fieller for ratios), zero or indistinguishable-from-zero baselines made explicit.
- :class:`Claim`: a claimed range (``at_least``, ``at_most``, ``between``) on one quantity.
- :func:`assess` (one claim) / :func:`assess_all` (a family, Holm-corrected) -> :class:`Verdict` with a
  status "supported" / "contradicted" / "inconclusive" (at this budget, with the seeds that would decide).
- :class:`Setting`: what a claim is about / what was measured; a claim about another setting is
  "not testable here" (the local estimate is still reported). ``Claim(reachable=...)``: the range a
  design can show at all; a claim beyond it is "not decidable by this design".
- ``resolution=`` on :func:`paired` / :func:`sample`: quantisation-aware intervals and an "equal within
  resolution" flag (float tolerance always applied).
- Power as a probability (:mod:`dsopt.stats.power`): "about N seeds give an 80 % chance of a decision".
- A sign-flip permutation check from 6 units on (:mod:`dsopt.stats.permutation`).
- :func:`mean_sd`: the one mean/sd helper (sd of one value is nan, never 0).
- Rendering: :func:`render_verdicts` (Markdown / HTML / terminal text), ``Verdict.line``,
  :func:`verdict_line`, :func:`verdicts_markdown`.

This package imports only ``dsopt.util`` (and numpy/scipy): techniques, studies and chapters may use it.
"""
from dsopt.stats.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    MIN_SEEDS,
    NOT_DECIDABLE,
    NOT_TESTABLE,
    STATUSES,
    SUPPORTED,
    Claim,
    Verdict,
    assess,
    assess_all,
    holm,
    seeds_needed,
)
from dsopt.stats.estimates import QUANTITIES, UNITS, Interval, PairedComparison, Sample, count, paired, sample
from dsopt.stats.permutation import sign_flip_p
from dsopt.stats.power import decision_probability, units_for_power
from dsopt.stats.render import (
    format_interval,
    format_mean_sd,
    format_number,
    render_verdicts,
    verdict_details,
    verdict_line,
    verdicts_markdown,
)
from dsopt.stats.setting import Setting
from dsopt.stats.summary import mean_sd, summarize_seeds

__all__ = [
    "CONTRADICTED", "INCONCLUSIVE", "MIN_SEEDS", "NOT_DECIDABLE", "NOT_TESTABLE", "QUANTITIES", "STATUSES", "SUPPORTED",
    "UNITS", "Claim", "Interval", "PairedComparison", "Sample", "Setting", "Verdict",
    "assess", "assess_all", "count", "decision_probability", "format_interval", "format_mean_sd", "format_number",
    "holm", "mean_sd", "paired", "render_verdicts", "sample", "seeds_needed", "sign_flip_p", "summarize_seeds",
    "units_for_power", "verdict_details", "verdict_line", "verdicts_markdown",
]
