"""SPC charts, ARL and calibration against published values (dsopt.monitor.published names the sources)."""
from __future__ import annotations

import numpy as np
import pytest

from dsopt.monitor import (
    CUSUM,
    EWMA,
    EmbeddingDrift,
    Reference,
    Shewhart,
    arl_curve,
    arl_table,
    calibrate,
    make_chart,
    markov_arl,
    run_chart,
    simulate_arl,
)
from dsopt.monitor.published import PUBLISHED_ARL, is_published
from dsopt.util.validation import ParameterError

ENTRIES = [pytest.param(e, id=f"{e['kind']}-{'-'.join(f'{k}{v}' for k, v in e['params'].items())}-shift{e['shift']}")
           for e in PUBLISHED_ARL]


@pytest.mark.parametrize("entry", ENTRIES)
def test_simulated_arl_within_5_percent_of_reference(entry):
    """The vectorised simulation through chart.step matches every reference ARL within 5 %."""
    chart = make_chart(entry["kind"], **entry["params"])
    sim = simulate_arl(chart, entry["shift"], runs=8000, seed=11)
    assert sim["censored"] == 0
    assert abs(sim["arl"] / entry["arl"] - 1) < 0.05, (sim["arl"], sim["se"], entry)
    assert sim["se"] < 0.015 * entry["arl"]  # the tolerance is several standard errors wide


@pytest.mark.parametrize("entry", ENTRIES)
def test_markov_chain_reproduces_reference_values(entry):
    """The exact / Markov-chain ARL agrees with the published tables to their printed precision."""
    chart = make_chart(entry["kind"], **entry["params"])
    value = markov_arl(chart, entry["shift"], states=1001)
    tol = 0.006 if is_published(entry) else 0.002  # tables print 3 significant digits (465, 10.4, 500)
    assert abs(value / entry["arl"] - 1) < tol, (value, entry)


def test_champ_woodall_table_1_exactly():
    """Shewhart + single runs rules: our chain gives Champ & Woodall's Table 1 to the printed 0.01."""
    table = {(1, 2): [225.44, 177.56, 104.46, 57.92, 33.12, 20.01], (1, 3): [166.05, 120.70, 63.88, 33.99, 19.78, 12.66],
             (1, 4): [152.73, 110.52, 59.76, 33.64, 21.07, 14.58], (1,): [370.40, 308.43, 200.08, 119.67, 71.55, 43.89]}
    for rules, values in table.items():
        got = [round(markov_arl(Shewhart(3.0, rules), mu), 2) for mu in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
        assert got == pytest.approx(values, abs=0.011), rules


def test_western_electric_rules_bring_arl0_from_370_to_92():
    assert markov_arl(Shewhart(3.0, (1,)), 0) == pytest.approx(1 / 0.0027, rel=0.001)
    assert markov_arl(Shewhart(3.0, (1, 2, 3, 4)), 0) == pytest.approx(91.75, abs=0.01)


def test_ewma_and_cusum_detect_one_sigma_in_about_10_where_shewhart_needs_44():
    assert markov_arl(Shewhart(3.0), 1.0) == pytest.approx(43.89, abs=0.01)
    assert markov_arl(CUSUM(0.5, 5.0), 1.0) == pytest.approx(10.4, abs=0.05)
    assert markov_arl(EWMA(0.1, 2.814), 1.0) == pytest.approx(10.3, abs=0.05)


def test_simulation_is_seeded_and_reproducible():
    a = simulate_arl(EWMA(0.2, 2.5), 0.5, runs=500, seed=3)
    b = simulate_arl(EWMA(0.2, 2.5), 0.5, runs=500, seed=3)
    c = simulate_arl(EWMA(0.2, 2.5), 0.5, runs=500, seed=4)
    assert np.array_equal(a["run_lengths"], b["run_lengths"])
    assert not np.array_equal(a["run_lengths"], c["run_lengths"])


def test_censoring_is_reported():
    r = simulate_arl(Shewhart(6.0), 0.0, runs=50, seed=0, max_steps=20)
    assert r["censored"] == 50 and r["arl"] == 20


@pytest.mark.parametrize("chart, target", [
    (Shewhart(3.0), 200.0), (Shewhart(3.0, (1, 2, 3, 4)), 200.0), (EWMA(0.1, 2.7), 200.0), (CUSUM(0.5, 5.0), 200.0),
    (EWMA(0.3, 3.0), 1000.0), (CUSUM(1.0, 2.0), 50.0),
])
def test_calibration_hits_the_target_in_control_arl(chart, target):
    cal = calibrate(chart, target)
    assert type(cal) is type(chart)
    assert markov_arl(cal, 0.0) == pytest.approx(target, rel=0.002)
    sim = simulate_arl(cal, 0.0, runs=6000, seed=5)
    assert abs(sim["arl"] / target - 1) < 0.05
    if isinstance(chart, EWMA):
        assert cal.lam == chart.lam  # only the limit moves
    if isinstance(chart, CUSUM):
        assert cal.k == chart.k


def test_calibration_refuses_an_unreachable_target():
    with pytest.raises(ParameterError, match="arl0=370 is out of reach for shewhart\\+WE1234"):
        calibrate(Shewhart(3.0, (1, 2, 3, 4)), 370)  # rule 4 alone caps ARL0 near 255


def test_calibrated_charts_compare_at_the_same_arl0():
    charts = [calibrate(c, 150.0) for c in (Shewhart(), Shewhart(3, (1, 2, 3, 4)), EWMA(0.1), CUSUM(0.5))]
    arl1 = [markov_arl(c, 1.0) for c in charts]
    assert arl1[0] > 2 * max(arl1[2:])  # EWMA and CUSUM catch a 1-sigma shift much sooner than plain Shewhart


def test_arl_curve_falls_with_the_shift():
    curve = arl_curve(EWMA(0.1, 2.7), [0.0, 0.5, 1.0, 2.0])
    assert np.all(np.diff(curve) < 0)


@pytest.mark.parametrize("make, match", [
    (lambda: EWMA(0.0, 2.7), "lambda must be a number in \\(0.0, 1.0\\]"),
    (lambda: EWMA(0.1, -1), "L must be a number in \\(0.0, 10.0\\]"),
    (lambda: CUSUM(-0.1, 5), "k must be a number in \\[0.0, 5.0\\]"),
    (lambda: CUSUM(0.5, 0), "h must be a number in \\(0.0, 50.0\\]"),
    (lambda: Shewhart(3, rules=(2, 3)), "must be a subset of \\(1, 2, 3, 4\\) that contains rule 1"),
    (lambda: make_chart("xbar"), "kind must be one of shewhart, shewhart_we, ewma, cusum"),
])
def test_invalid_parameters_are_refused_with_the_parameter_named(make, match):
    with pytest.raises(ParameterError, match=match):
        make()


# -- chart mechanics on hand-made sequences --------------------------------------------------------
def test_ewma_and_cusum_follow_their_recursions():
    z = np.array([0.3, -1.2, 2.0, 0.7, 1.1])
    e, hi, lo, ew, cu = 0.0, 0.0, 0.0, run_chart(EWMA(0.2, 2.7), z), run_chart(CUSUM(0.5, 1.5), z)
    for i, v in enumerate(z):
        e = 0.2 * v + 0.8 * e
        hi, lo = max(0.0, hi + v - 0.5), max(0.0, lo - v - 0.5)
        assert ew["statistic"][i] == pytest.approx(e)
        assert cu["statistic"][i] == pytest.approx(hi if hi >= lo else -lo)
        assert cu["alarm"][i] == (hi > 1.5 or lo > 1.5)
    assert ew["upper"] == pytest.approx(2.7 * np.sqrt(0.2 / 1.8))


@pytest.mark.parametrize("z, rule, at", [
    ([0.1, 3.2], 1, 1),
    ([2.5, 0.1, 2.4], 2, 2),
    ([-2.5, -2.4], 2, 1),
    ([2.5, -0.1, -2.4], 0, None),  # two beyond 2 sigma but on opposite sides
    ([1.5, 1.2, 0.2, 1.7, 1.1], 3, 4),
    ([0.5] * 7 + [0.2], 4, 7),
    ([0.5] * 7 + [-0.2], 0, None),
])
def test_western_electric_rules_fire_where_they_should(z, rule, at):
    out = run_chart(Shewhart(3.0, (1, 2, 3, 4)), z)
    if at is None:
        assert not out["alarm"].any()
    else:
        assert out["alarm"].argmax() == at and out["rule"][at] == rule


def test_vectorised_step_equals_one_chart_at_a_time():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 30)) + 0.4
    for chart in (Shewhart(2.5, (1, 2, 3, 4)), EWMA(0.3, 2.5), CUSUM(0.5, 3.0)):
        state = chart.init(4)
        alarms = []
        for t in range(30):
            state, p = chart.step(state, z[:, t])
            alarms.append(p.alarm)
        alarms = np.array(alarms).T
        for i in range(4):
            assert np.array_equal(alarms[i], run_chart(chart, z[i])["alarm"])


def test_arl_table_rows_report_markov_and_simulation():
    rows = arl_table(PUBLISHED_ARL[:2], runs=2000, seed=1)
    assert [r["chart"] for r in rows] == ["shewhart", "shewhart"]
    assert rows[0]["markov"] == pytest.approx(370.4, abs=0.01) and abs(rows[0]["rel_error"]) < 0.1


# -- standardisation and drift -------------------------------------------------------------------
def test_reference_individuals_uses_the_moving_range():
    ref = Reference.individuals([1.0, 3.0, 2.0, 4.0])
    assert ref.centre == pytest.approx(2.5)
    assert ref.sigma == pytest.approx((2 + 1 + 2) / 3 / 1.128)
    assert ref.z(2.5 + ref.sigma) == pytest.approx(1.0)


def test_reference_xbar_scales_by_window_size():
    rng = np.random.default_rng(1)
    windows = [rng.normal(5.0, 2.0, size=50) for _ in range(40)]
    ref = Reference.xbar(windows)
    assert ref.centre == pytest.approx(5.0, abs=0.1) and ref.sigma == pytest.approx(2.0, rel=0.05)
    assert ref.z(ref.centre + ref.sigma / 5, n=25) == pytest.approx(1.0)
    with pytest.raises(ParameterError, match="no variation"):
        Reference.xbar([[1.0, 1.0]] * 5)


def test_drift_score_is_standard_normal_in_control_and_large_under_shift():
    rng = np.random.default_rng(2)
    cov = np.diag(np.linspace(3.0, 0.1, 32))
    launch = rng.multivariate_normal(np.zeros(32), cov, size=2000)
    drift = EmbeddingDrift(components=8).fit(launch)
    scores = [drift.score(rng.multivariate_normal(np.zeros(32), cov, size=40)) for _ in range(400)]
    assert abs(np.mean(scores)) < 0.25 and 0.8 < np.std(scores) < 1.3  # estimated launch mean: a little bias
    shifted = rng.multivariate_normal(np.r_[2.0, np.zeros(31)], cov, size=40)  # 1.15 sd along the top direction
    assert drift.score(shifted) > 5
    low = rng.multivariate_normal(np.r_[np.zeros(31), 1.5], cov, size=40)  # 4.7 sd along the weakest direction
    assert drift.score(low) > 5  # outside the kept components: seen by the residual part
