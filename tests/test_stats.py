"""dsopt.stats: paired comparisons, intervals, Holm, and a claim status that cannot overclaim.

The cases the verdicts issue (#10) found by running the old verdicts are here as constructed data:
one seed, a noisy speed difference, a zero baseline, a range claim overshot above its upper end,
several settings against one baseline.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from dsopt.stats import (
    CONTRADICTED,
    INCONCLUSIVE,
    STATUSES,
    SUPPORTED,
    Claim,
    assess,
    assess_all,
    holm,
    mean_sd,
    paired,
    sample,
    seeds_needed,
    summarize_seeds,
    verdicts_markdown,
)
from dsopt.stats.claims import MAX_SEEDS, _smallest_n
from dsopt.stats.estimates import t_quantile
from dsopt.util.validation import ParameterError

POINTS = dict(scale=100, unit=" points", digits=1)
PLUS_2_TO_5 = Claim.between(0.02, 0.05, text="+2 to +5 points", **POINTS)
FASTER_30 = Claim.at_most(-0.30, on="relative", text="30 % faster convergence")


# ----------------------------------------------------------------------------- mean / sd
def test_mean_sd_one_value_has_unknown_noise_not_zero():
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    m, sd = mean_sd([5.0])
    assert m == 5.0 and math.isnan(sd)
    with pytest.raises(ParameterError, match="values"):
        mean_sd([])
    with pytest.raises(ParameterError, match="finite"):
        mean_sd([1.0, math.nan])


def test_summarize_seeds_skips_non_numbers_and_counts_seeds():
    s = summarize_seeds([{"auc": 0.9, "ok": True, "t": None, "x": 1}, {"auc": 0.8, "ok": False, "t": 0.5}])
    assert s["auc"] == (pytest.approx(0.85), pytest.approx(math.sqrt(0.005)), 2)
    assert "ok" not in s and s["t"][2] == 1 and math.isnan(s["t"][1]) and s["x"][0] == 1.0
    with pytest.raises(ParameterError, match="results"):
        summarize_seeds([])


# ----------------------------------------------------------------------------- paired comparison
def test_paired_difference_se_and_interval_match_scipy():
    t = np.array([0.84, 0.86, 0.85, 0.88, 0.83])
    b = np.array([0.82, 0.83, 0.83, 0.84, 0.82])
    c = paired(t, b)
    d = t - b
    assert c.diff == pytest.approx(d.mean())
    assert c.sd == pytest.approx(d.std(ddof=1))
    assert c.se == pytest.approx(d.std(ddof=1) / math.sqrt(5))  # the mean's error, not one run's spread
    ref = sps.ttest_rel(t, b)
    ci = ref.confidence_interval(0.95)
    iv = c.interval()
    assert (iv.low, iv.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert iv.method == "paired t" and iv.level == 0.95 and iv.n == 5
    assert c.p_value == pytest.approx(ref.pvalue)


def test_pairing_uses_shared_noise():
    """Arms that move together seed by seed differ precisely even when each arm is noisy."""
    base = np.array([0.70, 0.80, 0.90])
    c = paired(base + 0.03, base)
    assert c.sd == 0 and c.interval().low == pytest.approx(0.03)
    v = assess(c, PLUS_2_TO_5)
    assert v.status == SUPPORTED  # the old hypot(sd_a, sd_b) rule saw +-14 points of "noise" here


def test_paired_arms_must_share_seeds():
    with pytest.raises(ParameterError, match="share seeds") as e:
        paired({0: 1.0, 1: 2.0}, {0: 1.0, 2: 2.0})
    assert e.value.name == "baseline"
    with pytest.raises(ParameterError, match="3 treatment values vs 2"):
        paired([1, 2, 3], [1, 2])
    c = paired({1: 1.0, 0: 3.0}, {0: 1.0, 1: 0.5})  # mappings pair by seed, not by position
    assert list(c.differences) == [0.5, 2.0]


def test_fieller_ratio_interval_is_the_set_of_ratios_the_contrast_test_keeps():
    rng = np.random.default_rng(0)
    b = rng.normal(10, 1, 6)
    t = 0.7 * b + rng.normal(0, 0.5, 6)
    c = paired(t, b)
    iv = c.interval("ratio")
    q = t_quantile(0.95, 5)
    for r in np.linspace(0.3, 1.1, 161):
        x = t - r * b
        inside = abs(x.mean()) / (x.std(ddof=1) / math.sqrt(6)) <= q
        assert inside == (iv.low <= r <= iv.high), r
    rel = c.interval("relative")
    assert rel.low == pytest.approx(iv.low - 1) and rel.high == pytest.approx(iv.high - 1)
    assert c.point("relative") == pytest.approx(t.mean() / b.mean() - 1)


# ----------------------------------------------------------------------------- the cases
def test_one_seed_is_never_supported_even_inside_the_range():
    """Chapter 01 with n_seeds=1 printed "'+2 to +5 points': holds" with "seed noise +- 0.0"."""
    v = assess(paired([0.861], [0.840]), PLUS_2_TO_5)
    assert v.status == INCONCLUSIVE and v.label == "inconclusive at this budget"
    assert v.point == pytest.approx(0.021) and not v.interval.defined
    assert "never decisive" in v.reason and v.seeds_needed is None
    line = v.line()
    assert line.startswith("**inconclusive at this budget**") and "no interval from 1 seed" in line
    assert "+- 0.0" not in line and "run at least 3" in line


def test_two_seeds_are_never_decisive_even_without_noise():
    for t, b in (([0.86, 0.87], [0.83, 0.84]), ([0.99, 0.99], [0.80, 0.80])):
        v = assess(paired(t, b), PLUS_2_TO_5)
        assert v.status == INCONCLUSIVE and v.seeds_needed == 3


def test_noisy_speed_difference_is_inconclusive():
    """Restarts 4.67 +- 3.79 epochs vs constant 6.67 +- 0.58 printed "'30 % faster': holds"."""
    restarts, constant = [2.0, 3.0, 9.0], [7.0, 6.0, 7.0]
    assert mean_sd(restarts) == (pytest.approx(4.667, abs=1e-3), pytest.approx(3.786, abs=1e-3))
    assert mean_sd(constant) == (pytest.approx(6.667, abs=1e-3), pytest.approx(0.577, abs=1e-3))
    v = assess(paired(restarts, constant), FASTER_30)
    assert v.status == INCONCLUSIVE and v.budget_limited
    assert v.interval.low < -0.30 < v.interval.high and v.interval.method == "Fieller, paired t"
    # the same claim on a consistent speed-up is supported; a consistent slow-down contradicts it
    assert assess(paired([4.0, 4.0, 5.0, 4.0], [7.0, 7.0, 8.0, 7.0]), FASTER_30).status == SUPPORTED
    assert assess(paired([7.0, 8.0, 7.0, 8.0], [7.0, 7.0, 7.0, 7.0]), FASTER_30).status == CONTRADICTED


def test_zero_baseline_reports_the_absolute_change_and_no_relative_one():
    """Chapter 04: a 0 -> 0.42 recall gain read as "not reproduced"."""
    claim = Claim.at_least(0.27, on="relative", text="minority recall +27 %")
    c = paired([0.40, 0.42, 0.44], [0.0, 0.0, 0.0])
    assert math.isnan(c.point("relative")) and "zero" in c.undefined("relative")
    v = assess(c, claim)
    assert v.status == INCONCLUSIVE and not v.budget_limited and v.label == "inconclusive"
    assert v.absolute_point == pytest.approx(0.42) and v.absolute.low > 0.3
    line = v.line()
    assert "relative change is undefined" in line and "absolute change +0.420" in line
    assert "seeds would decide" not in line  # more seeds cannot define a relative change from 0
    d = v.as_dict()
    assert d["point"] is None and d["absolute"]["point"] == pytest.approx(0.42)
    # the absolute change itself can still be judged
    assert assess(c, Claim.at_least(0.0, text="recall rises")).status == SUPPORTED


def test_baseline_indistinguishable_from_zero_makes_the_ratio_unbounded():
    c = paired([0.40, 0.42, 0.44], [0.0, 0.0, 0.01])
    assert "not distinguishable from zero" in c.undefined("relative")
    assert c.interval("relative").defined and not c.interval("relative").bounded
    v = assess(c, Claim.at_least(0.27, on="relative"))
    assert v.status == INCONCLUSIVE and "unbounded" in v.line()


def test_range_claim_overshot_above_its_upper_end_is_contradicted():
    over = paired([0.90, 0.91, 0.92, 0.905], [0.82, 0.83, 0.83, 0.825])  # +8.25 points
    v = assess(over, PLUS_2_TO_5)
    assert v.status == CONTRADICTED and "above the claim's upper end +5.0 points" in v.reason
    assert v.interval.low > 0.05
    inside = paired([0.853, 0.856, 0.851, 0.854], [0.82, 0.83, 0.823, 0.825])
    assert assess(inside, PLUS_2_TO_5).status == SUPPORTED
    below = paired([0.83, 0.84, 0.83, 0.835], [0.82, 0.83, 0.823, 0.825])
    v = assess(below, PLUS_2_TO_5)
    assert v.status == CONTRADICTED and "below the claim's lower end" in v.reason
    # a one-sided claim ("at least +2") is supported by the same overshoot: only the ends given are checked
    assert assess(over, Claim.at_least(0.02, **POINTS)).status == SUPPORTED


def test_straddling_interval_is_inconclusive_with_the_seeds_that_would_decide():
    """Changed with the power rule: N is now the number of seeds that gives an 80 % chance of a decision
    counting the uncertainty of the 4-seed estimate (the old plug-in n assumed the observed mean and sd true)."""
    from dsopt.stats import decision_probability

    rng = np.random.default_rng(3)
    b = rng.normal(0.80, 0.01, 4)
    t = b + 0.035 + np.array([0.02, -0.02, 0.015, -0.015])
    c = paired(t, b)
    v = assess(c, PLUS_2_TO_5)
    assert v.status == INCONCLUSIVE and v.seeds_needed is not None and v.seeds_needed > 4
    n = v.seeds_needed
    assert v.decision_probability >= 0.8 and decision_probability(c, PLUS_2_TO_5, n) == v.decision_probability
    assert decision_probability(c, PLUS_2_TO_5, n - 1) < 0.8
    # the plug-in n (observed mean and sd taken as the truth) is far smaller than the honest one
    plug_in = max(_smallest_n(abs(c.diff - e) / c.sd, 0.05) for e in (0.02, 0.05))
    assert plug_in < n
    assert f"about {n} seeds give an 80 % chance of a decision" in v.line()


def test_seeds_needed_edges():
    assert _smallest_n(10.0, 0.05) == 3
    assert _smallest_n(1e-6, 0.05) is None  # more than MAX_SEEDS
    assert MAX_SEEDS >= 1000
    on_end = paired([1.0, 2.0, 3.0], [0.98, 1.98, 2.98])  # difference exactly +0.02 with no spread
    assert seeds_needed(on_end, Claim.at_least(0.02)) is None or seeds_needed(on_end, Claim.at_least(0.02)) == 3
    assert seeds_needed(paired([1.0], [0.0]), PLUS_2_TO_5) is None


# ----------------------------------------------------------------------------- several settings
def test_holm_adjusted_p_values():
    assert holm([0.01, 0.04, 0.03]) == [pytest.approx(0.03), pytest.approx(0.06), pytest.approx(0.06)]
    adj = holm([0.2, math.nan, 0.01])
    assert math.isnan(adj[1]) and adj[2] == pytest.approx(0.03) and adj[0] == pytest.approx(0.4)


def test_several_settings_are_holm_corrected_and_say_so():
    base = np.array([0.50, 0.52, 0.48, 0.51])
    noise = np.array([0.010, -0.012, 0.008, -0.006])
    claim = Claim.at_least(0.0, text="the rule helps")
    weak = paired(base + 0.012 + 0.6 * noise, base)  # alone: supported at 95 % (p = 0.033)
    alone = assess(weak, claim)
    assert alone.status == SUPPORTED and alone.correction is None
    strong = paired(base + 0.05 + noise / 4, base)
    null = [paired(base + noise, base), paired(base - noise, base)]
    verdicts = assess_all([(weak, claim), (strong, claim), *[(c, claim) for c in null]])
    assert [v.status for v in verdicts] == [INCONCLUSIVE, SUPPORTED, INCONCLUSIVE, INCONCLUSIVE]
    assert all("Holm over 4 comparisons" in v.correction for v in verdicts)
    assert verdicts[1].interval.level == pytest.approx(1 - 0.05 / 4)  # strongest evidence judged first, at alpha/4
    assert verdicts[0].interval.level > 0.95 and "Holm over 4" in verdicts[0].line()
    text = verdicts_markdown([(f"setting {i}", v) for i, v in enumerate(verdicts)])
    assert text.count("\n- ") == 3 and text.startswith("- **inconclusive at this budget** (setting 0)")


def test_one_seed_settings_do_not_take_a_place_in_the_step_down():
    claim = Claim.at_least(0.0)
    strong = paired([0.6, 0.62, 0.61, 0.63], [0.5, 0.51, 0.5, 0.52])
    vs = assess_all([(paired([0.9], [0.1]), claim), (strong, claim)])
    assert vs[0].status == INCONCLUSIVE and vs[1].status == SUPPORTED


# ----------------------------------------------------------------------------- claims and levels
def test_level_claim_for_one_arm():
    auc = Claim.at_least(0.94, on="level", text="AUC 0.94")
    assert assess(sample([0.95, 0.96, 0.955]), auc).status == SUPPORTED
    assert assess(sample([0.90, 0.91, 0.905]), auc).status == CONTRADICTED
    assert assess(sample([0.92, 0.96, 0.94]), auc).status == INCONCLUSIVE
    with pytest.raises(ParameterError, match="level"):
        assess(sample([0.9, 0.91, 0.92]), Claim.at_least(0.0))


def test_ratio_claim_for_a_speed_up():
    """Chapter 05 style: "2.3x faster" = fp32 time / amp time at least 2.3, paired by repetition."""
    fp32 = [10.0, 10.4, 9.8, 10.1]
    amp = [4.1, 4.2, 4.0, 4.2]
    claim = Claim.at_least(2.3, on="ratio", text="2.3x faster")
    v = assess(paired(fp32, amp), claim)
    assert v.status == SUPPORTED and v.interval.low > 2.3 and "2.44 [2.39, 2.49]x" in v.line()
    assert assess(paired([6.0, 6.2, 5.9, 6.1], amp), claim).status == CONTRADICTED


def test_claim_validation_names_the_parameter():
    with pytest.raises(ParameterError, match="at least one end") as e:
        Claim()
    assert e.value.name == "low"
    with pytest.raises(ParameterError, match="high must be >= low"):
        Claim.between(0.05, 0.02)
    with pytest.raises(ParameterError, match="on must be one of"):
        Claim.at_least(1.0, on="speed")
    with pytest.raises(ParameterError, match="on must be one of"):
        assess(paired([1, 2, 3], [1, 2, 3]), Claim.at_least(0.5, on="level"))
    with pytest.raises(ParameterError, match="alpha"):
        assess(paired([1, 2, 3], [1, 2, 3]), Claim.at_least(0.5), alpha=0.9)
    assert Claim.between(0.02, 0.05, **POINTS).describe() == "change at least +2.0 points and at most +5.0 points"
    assert FASTER_30.describe() == "relative change at most -30 %"


def test_status_is_three_valued_and_json_safe():
    cases = [
        assess(paired([0.861], [0.840]), PLUS_2_TO_5),
        assess(paired([0.40, 0.42, 0.44], [0.0, 0.0, 0.01]), Claim.at_least(0.27, on="relative")),
        assess(paired([0.90, 0.91, 0.92, 0.905], [0.82, 0.83, 0.83, 0.825]), PLUS_2_TO_5),
        assess(sample([0.95, 0.96, 0.955]), Claim.at_least(0.94, on="level")),
    ]
    for v in cases:
        assert v.status in STATUSES
        d = v.as_dict()
        assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_interval_renders_on_one_line():
    c = paired([0.853, 0.856, 0.851, 0.854], [0.82, 0.83, 0.823, 0.825])
    text = c.interval().render(point=c.diff, scale=100, digits=1, unit=" points", signed=True)
    assert text == "+2.9 [+2.4, +3.4] points (95 % paired t, 4 seeds)"
    assert "\n" not in text
