"""Chapter 01's measurement helpers on constructed inputs (fast; the real runs are in the notebook)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dsopt.lr import restart_positions
from dsopt.studies.lr_restarts import (
    aligned_restarts,
    epochs_to_reach,
    per_batch_pitfall,
    study_schedules,
    summarize,
    verdict,
)


@pytest.mark.parametrize("epochs, pair", [(20, (5, 3)), (12, (4, 2)), (21, (7, 2)), (7, (1, 2)), (2, (1, 1))])
def test_aligned_restarts_end_exactly_at_the_budget(epochs, pair):
    assert aligned_restarts(epochs) == pair
    T_0, T_mult = pair
    ends = restart_positions({"base_lr": 1e-3, "T_0": T_0, "T_mult": T_mult}, 10 * epochs)
    assert epochs in ends  # a cycle boundary coincides with the end of the budget


def test_study_schedules_share_the_peak_and_budget():
    s = study_schedules(20, 1e-3)
    assert len(s) == 4 and all(abs(f(0.0) - 1e-3) < 1e-15 for f in s.values())
    assert s["one cosine cycle"](19.999) < 1e-8


def test_epochs_to_reach():
    assert epochs_to_reach([0.1, 0.5, 0.9, 0.95], 0.9) == 3
    assert epochs_to_reach([0.1, 0.5], 0.9) is None


def run(task, schedule, seed, curve, test):
    return {"task": task, "schedule": schedule, "seed": seed, "val_accuracy": curve, "test_accuracy": test, "lr_end": 1e-3}


def test_summarize_counts_unreached_as_budget_plus_one():
    runs = [run("t", "constant", 0, [0.5, 0.8, 1.0], 0.9), run("t", "constant", 1, [0.5, 0.9, 1.0], 0.8),
            run("t", "slow", 0, [0.1, 0.2, 0.3], 0.5), run("t", "slow", 1, [0.1, 0.2, 0.96], 0.6)]
    rows = {r["schedule"]: r for r in summarize(runs)}
    assert rows["constant"]["epochs_to_95"] == 3.0 and rows["constant"]["reached_95"] == "2/2"
    assert rows["slow"]["epochs_to_95"] == pytest.approx((4 + 3) / 2) and rows["slow"]["reached_95"] == "1/2"
    assert rows["constant"]["test_acc"] == pytest.approx(0.85)
    assert rows["constant"]["test_acc_sd"] == pytest.approx(np.std([0.9, 0.8], ddof=1))


def test_verdict_is_computed_from_the_table():
    def row(schedule, e, acc, sd=0.005):
        return {"task": "t", "schedule": schedule, "epochs_to_95": e, "test_acc": acc, "test_acc_sd": sd}

    rows = [row("constant", 10.0, 0.80), row("restarts T_0=5, T_mult=2 (article)", 6.0, 0.83)]
    v = verdict(rows, epochs=20)
    t = v["per_task"]["t"]
    assert t["speedup_vs_constant"] == pytest.approx(0.4) and t["claim_speed_holds"]
    assert t["points_vs_constant"] == pytest.approx(3.0) and t["claim_accuracy_holds"]
    assert v["restarts_in_budget"] == [5.0, 15.0] and "ends mid-cycle, 5 epochs after the last restart" in v["text"]
    worse = verdict([row("constant", 10.0, 0.80, 0.03), row("restarts T_0=5, T_mult=2 (article)", 12.0, 0.81, 0.03)],
                    epochs=20)["per_task"]["t"]
    assert not worse["claim_speed_holds"] and not worse["claim_accuracy_holds"]  # +1 point is inside the noise


def test_per_batch_pitfall_counts_batches_not_epochs():
    d = per_batch_pitfall(5, 2, iters_per_epoch=20, epochs=20)
    jumps = lambda lr: int((np.diff(lr) > 0.5e-3).sum())
    assert jumps(d["no_fraction"]) == 6  # restarts after 5, 15, 35, 75, 155, 315 batches
    assert jumps(d["fractional"]) == 2  # epochs 5 and 15
    assert math.isclose(d["epoch"][20], 1.0)
