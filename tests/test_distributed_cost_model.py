"""Ring all-reduce cost model: bytes moved, time, calibration, efficiency arithmetic (pure, fast)."""
from __future__ import annotations

import pytest

from dsopt.distributed import cost_model as cm
from dsopt.util.validation import ParameterError


def test_ring_moves_2_n_minus_1_over_n_of_the_bytes():
    assert cm.ring_allreduce_bytes(1, 100.0) == 0.0
    assert cm.ring_allreduce_bytes(2, 100.0) == pytest.approx(100.0)
    assert cm.ring_allreduce_bytes(4, 100.0) == pytest.approx(150.0)
    assert cm.ring_allreduce_bytes(128, 1.0) == pytest.approx(2 * 127 / 128)


def test_time_is_latency_steps_plus_bandwidth_term():
    t = cm.ring_allreduce_time(4, 1e6, bandwidth=1e9, latency=1e-5)
    assert t == pytest.approx(6 * 1e-5 + 1.5e6 / 1e9)
    assert cm.ring_allreduce_time(1, 1e9, 1e9, 1.0) == 0.0


def test_calibration_recovers_known_latency_and_bandwidth():
    alpha, beta = 4e-5, 2.5e9
    pts = [(n, b, cm.ring_allreduce_time(n, b, beta, alpha)) for n in (2, 3, 4) for b in (1e3, 1e5, 1e6, 1e7)]
    cal = cm.calibrate(pts)
    assert cal.latency == pytest.approx(alpha, rel=1e-6) and cal.bandwidth == pytest.approx(beta, rel=1e-6)
    assert cal.r2 == pytest.approx(1.0) and cal.max_rel_error < 1e-9
    assert cal.predict(8, 1e8) == pytest.approx(cm.ring_allreduce_time(8, 1e8, beta, alpha))


def test_calibration_needs_two_sizes():
    with pytest.raises(ParameterError, match="2 message sizes"):
        cm.calibrate([(2, 1e6, 0.01), (2, 1e6, 0.011)])


def test_efficiency_weak_and_strong_and_overlap():
    # weak: C / (C + t_comm); with t_comm == C -> 50 %
    t = cm.ring_allreduce_time(2, 1e6, 1e9, 0.0)
    assert cm.predicted_efficiency(2, 1e6, t, 1e9, 0.0) == pytest.approx(0.5)
    assert cm.predicted_efficiency(1, 1e9, 0.1, 1e6, 1.0) == 1.0
    # full overlap hides communication shorter than the compute
    assert cm.predicted_efficiency(2, 1e6, 2 * t, 1e9, 0.0, overlap=1.0) == pytest.approx(1.0)
    # strong scaling: compute per worker shrinks, so the same communication costs more
    weak = cm.predicted_efficiency(4, 1e6, 0.01, 1e9, 1e-5)
    strong = cm.predicted_efficiency(4, 1e6, 0.01, 1e9, 1e-5, mode="strong")
    assert strong < weak
    with pytest.raises(ParameterError, match="overlap"):
        cm.predicted_efficiency(2, 1e6, 0.1, 1e9, 0.0, overlap=1.5)


def test_efficiency_falls_with_n_and_rises_with_bandwidth():
    rows = cm.prediction_table(latency=2e-5, ns=(2, 8, 128))
    r50 = {(r["link"], r["n"]): r["efficiency"] for r in rows if r["model"].startswith("ResNet-50")}
    assert r50[("25 GbE", 2)] > r50[("25 GbE", 128)]
    assert r50[("NVLink 2 (V100, 6 links)", 128)] > r50[("25 GbE", 128)]


def test_article_arithmetic():
    a = cm.article_arithmetic()
    assert a["speedup"] == pytest.approx(3.75)
    assert a["efficiency"] == pytest.approx(0.46875)
    assert a["hours_needed_for_claim"] == pytest.approx(12 / (0.92 * 8))
    assert "47 %" in a["text"] and "1.63 h" in a["text"]
    assert cm.scaling_efficiency(10.0, 6.0, 2)["efficiency"] == pytest.approx(10 / 6 / 2)
