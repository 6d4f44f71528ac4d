"""dsopt.stats, the verdicts audit: settings, resolution, units, small samples, power, relative numbers, rendering.

Every case is constructed per-seed data for one finding of the audit (issue: verdicts that overclaim):
a claim measured outside its setting, arms equal up to float rounding, discrete metrics (whole epochs,
accuracy on 270 examples), a near-zero baseline, repeats counted as seeds, a claim the design cannot
decide, "about N seeds" that decided only 53-69 % of the time, normality at 3 seeds, walls of Markdown.
"""
from __future__ import annotations

import itertools
import json
import math
import re
import time

import numpy as np
import pytest
from scipy import stats as sps

from dsopt.stats import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_DECIDABLE,
    NOT_TESTABLE,
    STATUSES,
    SUPPORTED,
    UNITS,
    Claim,
    Interval,
    Setting,
    assess,
    assess_all,
    count,
    decision_probability,
    format_mean_sd,
    paired,
    render_verdicts,
    sample,
    sign_flip_p,
    units_for_power,
    verdict_line,
    verdicts_markdown,
)
from dsopt.stats.claims import _smallest_n
from dsopt.util.validation import ParameterError

pytestmark = pytest.mark.unit

POINTS = dict(scale=100, unit=" points", digits=1)
BERT = Setting(device="cuda", hardware="8 x V100", model="BERT", text="BERT pre-training")
LOCAL = Setting(device="cpu", hardware="1 x Xeon (2 cores)", model="DistilBERT", dataset="SST-2")


def _json_round_trip(v):
    d = v.as_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    return d


# ----------------------------------------------------------------------------- status vocabulary
def test_statuses_are_five_and_keep_the_old_three():
    assert STATUSES[:3] == (SUPPORTED, CONTRADICTED, INCONCLUSIVE)
    assert NOT_TESTABLE == "not testable here" and NOT_DECIDABLE == "not decidable by this design"
    assert set(STATUSES) == {SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, NOT_DECIDABLE}


# ----------------------------------------------------------------------------- setting
def test_setting_differences_count_only_what_the_claim_states():
    assert BERT.differences(LOCAL) == ["device: cuda (claim) vs cpu (measured)",
                                       "model: BERT (claim) vs DistilBERT (measured)",
                                       "hardware: 8 x V100 (claim) vs 1 x Xeon (2 cores) (measured)"]
    assert Setting(device="CPU").differences(Setting(device="cpu", model="x")) == []  # case-insensitive
    assert Setting(dataset="SST-2").differences(Setting(device="cuda")) == []  # not stated = not a difference
    assert Setting(workers=8).differences(Setting(workers=1)) == ["workers: 8 (claim) vs 1 (measured)"]
    assert BERT.differences(None) == []
    assert BERT.describe() == "BERT pre-training on 8 x V100 (BERT, cuda)"
    assert Setting().describe() == "unspecified"
    with pytest.raises(ParameterError, match="workers"):
        Setting(workers=0)
    with pytest.raises(ParameterError, match="setting"):
        Claim.at_least(1.0, setting="cuda")


def test_out_of_setting_claim_is_not_testable_and_still_reports_the_estimate():
    """ "2.3x faster: contradicted" was measured on a CPU for a claim about BERT on 8 x V100."""
    fp32, amp = [10.0, 10.4, 9.8, 10.1], [9.1, 9.3, 9.0, 9.2]
    claim = Claim.at_least(2.3, on="ratio", text="2.3x faster", setting=BERT)
    v = assess(paired(fp32, amp, unit="repeat"), claim, measured=LOCAL)
    assert v.status == NOT_TESTABLE and v.label == "not testable here" and not v.budget_limited
    assert v.point == pytest.approx(np.mean(fp32) / np.mean(amp)) and v.interval.bounded  # the local fact
    assert "claim: BERT pre-training on 8 x V100 (BERT, cuda)" in v.reason and "(cpu" in v.reason
    assert "measured: DistilBERT / SST-2 on 1 x Xeon" in v.reason
    assert v.seeds_needed is None and "contradicted" not in v.line()
    d = _json_round_trip(v)
    assert d["measured"]["device"] == "cpu" and d["claim"]["setting"]["hardware"] == "8 x V100"
    # the same claim with the same data, measured in its own setting, is decided
    assert assess(paired(fp32, amp, unit="repeat"), claim, measured=BERT).status == CONTRADICTED
    assert assess(paired(fp32, amp, unit="repeat"), claim).status == CONTRADICTED  # nothing measured stated


def test_not_testable_claims_take_no_place_in_holm():
    base = np.array([0.50, 0.52, 0.48, 0.51])
    strong = paired(base + 0.05 + np.array([0.001, -0.001, 0.002, 0.0]), base)
    claim = Claim.at_least(0.0, text="helps")
    away = Claim.at_least(0.0, text="helps on GPUs", setting=Setting(device="cuda"))
    vs = assess_all([(strong, claim), (strong, away)], measured=Setting(device="cpu"))
    assert [v.status for v in vs] == [SUPPORTED, NOT_TESTABLE]
    assert vs[0].correction is None and vs[0].interval.level == 0.95  # m = 1: the untestable one is not counted
    # a per-item measured setting (3-tuple) overrides the family's
    vs = assess_all([(strong, claim), (strong, away, Setting(device="cuda"))], measured=Setting(device="cpu"))
    assert [v.status for v in vs] == [SUPPORTED, SUPPORTED] and "Holm over 2" in vs[0].correction
    with pytest.raises(ParameterError, match="measured"):
        assess(strong, claim, measured="cpu")


# ----------------------------------------------------------------------------- not decidable by this design
def test_claim_beyond_the_reachable_range_is_not_decidable_whatever_the_data():
    claim = Claim.at_least(6.4, on="ratio", text="x6.4 decay", reachable=(None, 5.0))
    for t in ([50.0, 51.0, 49.0, 50.5], [10.0, 10.2, 9.9, 10.1], [40.0, 60.0, 20.0, 80.0]):
        v = assess(paired(t, [10.0, 10.1, 9.9, 10.0], unit="stream order"), claim)
        assert v.status == NOT_DECIDABLE and v.label == "not decidable by this design"
        assert "at least 6.40x but this design can show at most 5.00x" in v.reason
        assert "no number of units can decide it" in v.reason and v.seeds_needed is None
        _json_round_trip(v)
    # stated on the assess call instead of the claim; and a claim within reach is judged as usual
    plain = Claim.at_least(6.4, on="ratio")
    assert assess(paired([50, 51, 49], [10, 10.1, 9.9]), plain, reachable=(None, 5.0)).status == NOT_DECIDABLE
    assert assess(paired([50, 51, 49], [10, 10.1, 9.9]), Claim.at_least(4.0, on="ratio"),
                  reachable=(None, 5.0)).status == SUPPORTED
    assert Claim.at_most(0.1, reachable=(0.5, None)).beyond_reach().startswith("the claim needs at most")
    with pytest.raises(ParameterError, match="reachable"):
        Claim.at_least(1.0, reachable=(5.0, 1.0))


def test_mean_exactly_on_the_end_without_spread_is_not_decidable():
    on_end = paired([1.0, 2.0, 3.0], [0.98, 1.98, 2.98])  # +0.02 on every seed, up to float rounding
    v = assess(on_end, Claim.at_least(0.02))
    assert v.status == NOT_DECIDABLE and "no number of seeds decides it" in v.reason and v.seeds_needed is None
    # with spread, the true mean is uncertain: more seeds can decide it (inconclusive at this budget)
    v = assess(sample([0.92, 0.96, 0.94]), Claim.at_least(0.94, on="level"))
    assert v.status == INCONCLUSIVE and v.budget_limited and v.seeds_needed is not None


# ----------------------------------------------------------------------------- resolution
def test_arms_equal_up_to_float_rounding_support_no_improvement_and_no_equivalence():
    b = np.array([0.71, 0.83, 0.92])
    t = np.nextafter(b, 1.0)  # one ulp above: per-seed differences ~1e-16, sd 0
    c = paired(t, b)
    assert np.all(np.abs(c.differences) < 1e-15) and c.equal_within_resolution()
    v = assess(c, Claim.at_least(0.0, text="the rule improves accuracy"))
    assert v.status == INCONCLUSIVE and v.equal_within_resolution and not v.budget_limited
    assert "equal within resolution" in v.reason and v.seeds_needed is None
    assert _json_round_trip(v)["equal_within_resolution"] is True
    v = assess(c, Claim.between(-0.01, 0.01, text="same final accuracy"))
    assert v.status == INCONCLUSIVE and "zero width" in v.reason and "resolution" in v.reason
    # exactly equal arms: the same
    same = paired(b, b.copy())
    assert assess(same, Claim.between(-0.01, 0.01)).status == INCONCLUSIVE
    assert assess(same, Claim.at_least(0.0)).status != SUPPORTED
    assert paired(b, b.copy()).p_value == 1.0 and paired(t, b).p_value == 1.0


def test_whole_epochs_with_repeated_values():
    """Epoch counts [12, 12, 12] vs [12, 13, 12]: resolution 1 epoch."""
    fast, slow = [12, 12, 12], [12, 13, 12]
    c = paired(fast, slow, resolution=1)
    # one seed differs by a whole epoch: a measured difference (not "equal within resolution"); its interval decides
    assert not c.equal_within_resolution() and c.diff == pytest.approx(-1 / 3)
    assert paired([12, 12, 12], [12, 12, 12], resolution=1).equal_within_resolution()
    iv = c.interval()
    q = 2 / 12  # two rounded values per difference
    half = sps.t.ppf(0.975, 2) * math.sqrt((np.var([0, -1, 0], ddof=1) + q) / 3)
    assert (iv.low, iv.high) == (pytest.approx(-1 / 3 - half), pytest.approx(-1 / 3 + half))
    v = assess(c, Claim.at_most(0.0, text="converges in fewer epochs"))
    assert v.status == INCONCLUSIVE and not v.equal_within_resolution and v.more_units_help
    # zero observed spread never gives a zero-width interval once the resolution is declared
    same = paired([12, 12, 12], [12, 12, 12], resolution=1)
    w = same.interval()
    assert w.width == pytest.approx(2 * sps.t.ppf(0.975, 2) * math.sqrt(q / 3)) and w.width > 1
    assert assess(same, Claim.between(-0.5, 0.5)).status == INCONCLUSIVE  # +-1 epoch cannot show +-0.5
    # without a resolution the same data have a zero-width interval, which cannot show equivalence either
    v = assess(paired([12, 12, 12], [12, 12, 12]), Claim.between(-0.5, 0.5))
    assert v.status == INCONCLUSIVE and "zero width" in v.reason
    # a real difference of several epochs is still found
    assert assess(paired([9, 8, 9, 9], [13, 13, 12, 13], resolution=1), Claim.at_most(0.0)).status == SUPPORTED
    with pytest.raises(ParameterError, match="resolution"):
        paired(fast, slow, resolution=-1)


def test_accuracy_on_270_examples():
    r = 1 / 270
    acc = np.array([243, 242, 244]) / 270
    same = paired(acc, acc.copy(), resolution=r)
    v = assess(same, Claim.between(-0.01, 0.01, text="same final accuracy", **POINTS))
    # three exactly-zero differences, but each value is only known to 1/270: the interval is +-0.37 points
    assert v.interval.width > 0.005 and v.status == SUPPORTED and "Resolution 0.0037" in " ".join(v.details())
    assert assess(same, Claim.between(-0.002, 0.002, **POINTS)).status == INCONCLUSIVE  # finer than the grid
    assert assess(same, Claim.at_least(0.0, **POINTS)).status == INCONCLUSIVE and same.equal_within_resolution()
    one_example = paired(acc + r, acc, resolution=r)  # one example better on every seed: one grid step, not below it
    assert not one_example.equal_within_resolution()


def test_near_zero_baseline_relative_claim_prints_no_relative_number():
    claim = Claim.at_least(0.5, on="relative", text="minority recall +50 %")
    # one seed: "+900 %" must not appear
    v = assess(paired([0.01], [0.001]), claim)
    assert v.status == INCONCLUSIVE and math.isnan(v.point)
    line = v.line()
    assert "900" not in line and "absolute change +0.009" in line and "x" not in line.split("measured")[1][:20]
    assert "no relative number from fewer than 3 seeds" in v.reason
    # two seeds: no ratio either
    v = assess(paired([0.10, 0.11], [0.01, 0.01]), Claim.at_least(2.0, on="ratio"))
    assert "10.00" not in v.line() and "11" not in v.line().split("measured")[1][:15] and v.absolute is not None
    # three seeds, baseline within the resolution of 0 (recall on 270 examples): undefined, absolute change
    v = assess(paired([0.010, 0.011, 0.012], [0.001, 0.0012, 0.0009], resolution=1 / 270), claim)
    assert v.status == INCONCLUSIVE and not v.budget_limited and "zero within the resolution" in v.reason
    assert not re.search(r"[+-][0-9.]+ %", v.line().split("measured")[1]) and "absolute change" in v.line()
    # relative numbers print in percent
    v = assess(paired([1.5, 1.6, 1.55, 1.52], [1.0, 1.02, 0.99, 1.0]), Claim.at_least(0.3, on="relative"))
    assert v.status == SUPPORTED and " %" in v.line().split("measured")[1]


# ----------------------------------------------------------------------------- units
def test_units_are_validated_and_every_count_uses_them():
    assert UNITS == ("seed", "repeat", "batch", "block", "stream order")
    assert count(1, "repeat") == "1 repeat" and count(5, "stream order") == "5 stream orders"
    assert count(4, "batch") == "4 batches" and count(1, "batch") == "1 batch"
    with pytest.raises(ParameterError, match="unit"):
        paired([1, 2, 3], [1, 2, 3], unit="streams")
    with pytest.raises(ParameterError, match="unit"):
        Interval(0.0, 1.0, 0.95, "t", 3, unit="run")
    with pytest.raises(ParameterError, match="unit"):
        sample([1, 2, 3], unit="seeds")
    t, b = [10.3, 9.8, 10.6, 9.9, 10.4], [10.0, 10.1, 10.2, 9.7, 10.0]
    v = assess(paired(t, b, unit="repeat"), Claim.at_least(0.0, text="faster"))
    line = v.line()
    assert v.status == INCONCLUSIVE and "5 repeats" in line and "seed" not in line
    assert f"about {v.seeds_needed} repeats give an 80 % chance of a decision" in line
    v = assess(paired(t, b, unit="block"), Claim.at_least(0.0))
    assert f"about {v.seeds_needed} blocks give" in v.line() and "seed" not in " ".join(v.details())
    assert format_mean_sd(5.0, None, per="repeat") == "5.000 (1 repeat, sd unknown)"
    assert assess_all([[paired(t, b, unit="repeat"), Claim.at_least(0.0)]])[0].n == 5  # a list item still works
    v = assess(paired([10.0], [9.0], unit="repeat"), Claim.at_least(0.0))
    assert "one repeat shows no noise (it is unknown): run at least 3 repeats" in v.line()
    assert "seed" not in v.line()


# ----------------------------------------------------------------------------- power
def test_one_seed_says_the_noise_is_unknown():
    v = assess(paired([0.861], [0.840]), Claim.between(0.02, 0.05))
    assert v.seeds_needed is None and math.isnan(v.decision_probability)
    assert "the noise is unknown" in v.reason and "run at least 3 seeds" in v.line()
    assert units_for_power(paired([0.861], [0.840]), Claim.at_least(0.0)) == (None, pytest.approx(math.nan, nan_ok=True))


def _brute_force(c, claim, N, alpha, sims, rng):
    """An independent simulation: posterior draws, then N per-seed differences judged by scipy's one-sample t."""
    d = c.differences
    n, m, s = d.size, d.mean(), d.std(ddof=1)
    sigma = np.sqrt((n - 1) * s * s / rng.chisquare(n - 1, sims))
    mu = rng.normal(m, sigma / math.sqrt(n))
    x = mu[:, None] + sigma[:, None] * rng.standard_normal((sims, N))
    crit = sps.t.ppf(1 - alpha / 2, N - 1)
    inside, outside = np.ones(sims, bool), np.zeros(sims, bool)
    for c_end, low in ((claim.low, True), (claim.high, False)):
        if c_end is None:
            continue
        t = sps.ttest_1samp(x - c_end, 0.0, axis=1).statistic
        inside &= (t > crit) if low else (t < -crit)
        outside |= (t < -crit) if low else (t > crit)
    return float(np.mean(inside | outside))


@pytest.mark.parametrize("claim", [Claim.at_least(0.0), Claim.between(0.02, 0.05)])
def test_power_probability_matches_an_independent_simulation(claim):
    rng = np.random.default_rng(11)
    b = rng.normal(0.80, 0.01, 3)
    c = paired(b + np.array([0.031, 0.052, 0.022]), b)
    t0 = time.perf_counter()
    v = assess(c, claim)
    assert time.perf_counter() - t0 < 0.5  # generous for a loaded CI machine; ~20 ms here
    assert v.status == INCONCLUSIVE and v.seeds_needed is not None
    N, P = v.seeds_needed, v.decision_probability
    assert P >= 0.8 and decision_probability(c, claim, N - 1) < 0.8
    sims = 20_000
    brute = _brute_force(c, claim, N, 0.05, sims, np.random.default_rng(5))
    # both are simulations: allow 3.5 binomial standard errors of each
    se = math.sqrt(P * (1 - P) / 4000) + math.sqrt(brute * (1 - brute) / sims)
    assert abs(brute - P) < 3.5 * se + 1e-3, (N, P, brute)
    # the plug-in rule (observed mean and sd taken as the truth) promises far less than 80 % at its n
    if claim.high is None:
        plug = _smallest_n(abs(c.diff) / c.sd, 0.05)
        assert plug < N and decision_probability(c, claim, plug) < 0.75


def test_power_is_deterministic_and_monotone_enough():
    c = paired([0.84, 0.86, 0.85, 0.88, 0.83], [0.82, 0.83, 0.83, 0.84, 0.82])
    claim = Claim.at_least(0.03)
    assert units_for_power(c, claim) == units_for_power(c, claim)
    ps = [decision_probability(c, claim, N) for N in (3, 10, 40, 160)]
    assert ps == sorted(ps)


# ----------------------------------------------------------------------------- small samples
def _exact_sign_flip(x, above):
    x = np.asarray(x, float)
    obs = x.mean()
    hits = sum((np.array(s) * x).mean() >= obs - 1e-12 if above else (np.array(s) * x).mean() <= obs + 1e-12
               for s in itertools.product((1, -1), repeat=x.size))
    return min(1.0, 2 * hits / 2 ** x.size)


def test_permutation_check_at_six_seeds_confirms_or_says_it_cannot():
    d = np.array([0.031, 0.028, 0.035, 0.030, 0.026, 0.033])
    base = np.linspace(0.80, 0.85, 6)
    c = paired(base + d, base)
    v = assess(c, Claim.at_least(0.0, text="helps"))
    assert v.status == SUPPORTED and v.permutation_exact and v.p_permutation == pytest.approx(2 / 64)
    assert v.p_permutation == pytest.approx(_exact_sign_flip(d, above=True)) and v.permutation_confirms
    assert "confirms the t decision" in " ".join(v.details()) and v.normality == ""
    # judged at Holm's stricter level (two comparisons), 6 seeds cannot reach it: the verdict says so
    vs = assess_all([(c, Claim.at_least(0.0)), (c, Claim.at_least(0.0, text="again"))])
    strict = [w for w in vs if w.alpha_used < 0.03][0]
    assert strict.status == SUPPORTED and strict.permutation_confirms is False
    text = " ".join(strict.details())
    assert "does NOT confirm the t decision" in text and "smallest p it can reach with 6 seeds is 0.0312" in text
    _json_round_trip(strict)


def test_permutation_check_at_eight_seeds_on_skewed_differences():
    d = np.array([2.5, 0.05, 0.1, 0.08, 0.12, 0.06, 0.09, 0.07])  # all positive, one huge: t does not decide
    c = paired(10 + d, np.full(8, 10.0))
    v = assess(c, Claim.at_least(0.0))
    assert v.status == INCONCLUSIVE and v.p_permutation == pytest.approx(_exact_sign_flip(d, above=True))
    assert v.p_permutation == pytest.approx(2 / 256) and "it would decide where the t test does not" in " ".join(v.details())
    # a contradicted claim: the check runs on the violated end's contrast
    v = assess(c, Claim.at_least(1.0))
    assert v.status in (CONTRADICTED, INCONCLUSIVE) and not math.isnan(v.p_permutation)
    assert v.p_permutation == pytest.approx(_exact_sign_flip(d - 1.0, above=False))


def test_three_to_five_seeds_state_the_normality_assumption_and_beyond_sixteen_monte_carlo():
    for n in (3, 4, 5):
        d = np.linspace(0.02, 0.04, n)
        v = assess(paired(0.8 + d, np.full(n, 0.8)), Claim.at_least(0.0))
        assert v.normality == "the decision assumes normally distributed per-seed differences"
        assert math.isnan(v.p_permutation) and "normally distributed per-seed differences" in " ".join(v.details())
    v = assess(sample([0.95, 0.96, 0.955], unit="block"), Claim.at_least(0.9, on="level"))
    assert v.normality == "the decision assumes normally distributed per-block values"
    p, exact = sign_flip_p(np.linspace(0.1, 0.2, 20), above=True)
    assert not exact and 0 < p < 0.001


# ----------------------------------------------------------------------------- rendering
def _family():
    base = np.array([0.50, 0.52, 0.48, 0.51])
    good = paired(base + 0.05 + np.array([0.001, -0.001, 0.002, 0.0]), base)
    vs = assess_all([(good, Claim.at_least(0.0, text="helps | a lot")),
                     (good, Claim.at_least(0.0, text="helps on 8 x V100", setting=BERT), LOCAL)],
                    measured=LOCAL)
    return [("arm A", vs[0]), ("arm <B>", vs[1])]


def test_render_verdicts_in_three_formats():
    items = _family()
    prov = "data: SST-2 sample; commit abc123; machine: 2 CPU cores"
    md = render_verdicts(items, fmt="markdown", provenance=prov)
    assert md.count(prov) == 1 and md.index(prov) < md.index("arm A")
    assert md.count("<details><summary>details: ") == 2 and "|---|---|" in md
    assert md.count("\n| arm ") == 2  # one compact row per comparison, status in bold
    assert "| **supported** |" in md and "| **not testable here** |" in md
    assert "helps \\| a lot" in md  # a pipe in a cell cannot break the table
    assert "| 4 seeds |" in md and "claimed: BERT pre-training on 8 x V100" in md

    text = render_verdicts(items, fmt="text", provenance=prov)
    assert "**" not in text and "|---|" not in text and "<details>" not in text and "|" not in text.replace("helps | a lot", "")
    assert text.startswith(prov) and text.count(prov) == 1
    lines = text.splitlines()
    head = next(ln for ln in lines if "status" in ln and "estimate" in ln)
    rows = [ln for ln in lines if ln.startswith("arm ") and not ln.endswith(":")]
    assert len(rows) == 2 and rows[0].index("supported") == head.index("status") == rows[1].index("not testable")
    assert rows[0].index("+0.051") == head.index("estimate")  # columns aligned
    assert "arm A:" in text and "    - " in text

    page = render_verdicts(items, fmt="html", provenance=prov)
    assert page.count("<table>") == 1 and page.count("<tr>") == 3 and "<details><summary>details: arm A</summary><ul>" in page
    assert "arm &lt;B&gt;" in page and "<B>" not in page and '<p class="provenance">' in page
    with pytest.raises(ParameterError, match="fmt"):
        render_verdicts(items, fmt="latex")


def test_verdict_line_is_one_line_status_first_and_plain_in_text_mode():
    items = _family()
    for _, v in items:
        md, txt = verdict_line(v, "x"), verdict_line(v, "x", fmt="text")
        assert md.startswith(f"**{v.label}**") and txt.startswith(v.label) and "**" not in txt
        assert "\n" not in md and "\n" not in txt
        assert "permutation" not in md  # details live beneath, not in the line
    assert "**" not in verdicts_markdown(items, fmt="text")


def test_as_dict_carries_every_new_field_json_safe():
    cases = [v for _, v in _family()] + [
        assess(paired([1.0, 2.0, 3.0], [0.98, 1.98, 2.98]), Claim.at_least(0.02)),
        assess(paired([12, 12, 12], [12, 13, 12], resolution=1), Claim.at_most(0.0)),
        assess(paired(np.linspace(1, 2, 6) + 0.1, np.linspace(1, 2, 6)), Claim.at_least(0.0)),
        assess(paired([0.01], [0.001]), Claim.at_least(0.5, on="relative")),
    ]
    keys = {"measured", "equal_within_resolution", "resolution", "unit", "p_permutation", "permutation_exact",
            "permutation_confirms", "normality", "decision_probability", "seeds_needed", "details", "alpha",
            "line_text"}
    for v in cases:
        assert v.status in STATUSES
        d = _json_round_trip(v)
        assert keys <= set(d) and d["label"] == v.label and isinstance(d["details"], list)
        assert d["line_text"].startswith(v.label) and "**" not in d["line_text"]


def test_a_stored_verdict_renders_exactly_like_the_one_computed():
    """Chapters store ``as_dict()`` in metrics JSON and render from it: ``Verdict.from_dict`` restores every field
    the renderer reads, for every status (decide mode and re-rendering from stored results rely on it)."""
    from dsopt.stats import Verdict

    cases = [(n, v) for n, v in _family()] + [
        ("float", assess(paired([1.0, 2.0, 3.0], [0.98, 1.98, 2.98]), Claim.at_least(0.02))),
        ("epochs", assess(paired([12, 12, 12], [12, 13, 12], resolution=1), Claim.at_most(0.0))),
        ("six", assess(paired(np.linspace(1, 2, 6) + 0.1, np.linspace(1, 2, 6)), Claim.at_least(0.0))),
        ("one seed", assess(paired([0.01], [0.001]), Claim.at_least(0.5, on="relative"))),
        ("gpu", assess(paired([1.0, 1.1, 1.2], [1.0, 1.0, 1.0]), Claim.at_least(2.3, on="ratio", setting=BERT),
                       measured=LOCAL)),
        ("reach", assess(paired([2.0, 3.0, 4.0], [1.0, 1.0, 1.0]), Claim.at_least(6.4, on="ratio",
                                                                                   reachable=(None, 5.0)))),
    ]
    for fmt in ("markdown", "text", "html"):
        again = [(n, Verdict.from_dict(json.loads(json.dumps(v.as_dict())))) for n, v in cases]
        assert render_verdicts(again, fmt=fmt) == render_verdicts(cases, fmt=fmt)
    for (_, v), (_, w) in zip(cases, again):
        assert w.as_dict() == v.as_dict() and w.label == v.label
