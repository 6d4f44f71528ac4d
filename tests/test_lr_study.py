"""Chapter 01's measurement helpers on constructed inputs (fast; the real runs are in the notebook)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dsopt.lr import restart_positions
from dsopt.studies.lr_restarts import (
    aligned_restarts,
    epochs_to_reach,
    per_batch_pitfall,
    study_schedules,
    format_table,
    summarize,
)
from dsopt.studies.lr_restarts_verdict import compute_verdict, render_verdict
from dsopt.stats import Claim
from dsopt.util.validation import ParameterError


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
    assert rows["constant"]["epochs_to_95"] == 3.0 and rows["constant"]["reached_95"] == 2
    assert rows["slow"]["epochs_to_95"] == pytest.approx((4 + 3) / 2) and rows["slow"]["reached_95"] == 1
    assert rows["slow"]["per_seed"]["epochs_to_95"] == [4.0, 3.0] and rows["slow"]["seeds"] == [0, 1]
    assert rows["constant"]["test_acc"] == pytest.approx(0.85)
    assert rows["constant"]["test_acc_sd"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
    assert rows["slow"]["val_acc_final"] == pytest.approx((0.3 + 0.96) / 2)
    one = summarize([run("t", "constant", 0, [0.5, 1.0], 0.9)])[0]
    assert math.isnan(one["test_acc_sd"])  # one seed: unknown noise, not zero
    assert "(1 seed, sd unknown)" in format_table([one])


ART = "restarts T_0=5, T_mult=2 (article)"


def row(schedule, epochs_to_95, test, val=None, task="t", reached=None):
    """A constructed table row with per-seed values (what summarize produces)."""
    n = len(test)
    val = val if val is not None else test
    out = {"task": task, "schedule": schedule, "n_seeds": n, "budget": 20, "seeds": list(range(n)),
           "reached_95": n if reached is None else reached, "lr_at_end": 1e-3,
           "per_seed": {"epochs_to_95": list(map(float, epochs_to_95)), "test_acc": list(test), "val_acc_final": list(val)}}
    for k, v in out["per_seed"].items():
        out[k], out[f"{k}_sd"] = float(np.mean(v)), float(np.std(v, ddof=1)) if n > 1 else math.nan
    return out


def test_verdict_supported_when_both_intervals_sit_inside_the_claims():
    rows = [row("constant", [10, 10, 11, 10], [0.80, 0.82, 0.81, 0.80]),
            row(ART, [6, 6, 7, 6], [0.83, 0.85, 0.845, 0.83])]
    v = compute_verdict(rows, epochs=20)
    t = v["per_task"]["t"]
    assert t["speed"]["status"] == "supported" and t["accuracy"]["status"] == "supported"
    assert t["accuracy"]["point"] == pytest.approx(0.03125)
    assert v["restarts_in_budget"] == [5.0, 15.0]
    text = render_verdict(v)
    assert render_verdict(json.loads(json.dumps(v, sort_keys=True))) == text  # as stored by save_metrics
    assert "ends mid-cycle, 5 epochs after the last restart" in text
    assert text.index("**supported**") < text.index("+3.1")  # status first, then the numbers


def test_verdict_one_seed_is_inconclusive_not_noise_free():
    """n_seeds=1 and +2.1 points printed "'+2 to +5 points': holds" with "seed noise +- 0.0"."""
    v = compute_verdict([row("constant", [10], [0.840]), row(ART, [6], [0.861])], epochs=20)
    t = v["per_task"]["t"]
    assert t["accuracy"]["status"] == t["speed"]["status"] == "inconclusive"
    assert "+- 0.0" not in render_verdict(v) and "no interval from 1 seed" in render_verdict(v)


def test_verdict_noisy_speed_difference_is_inconclusive():
    """Restarts 4.67 +- 3.79 epochs vs constant 6.67 +- 0.58 printed "'30 % faster': holds"."""
    v = compute_verdict([row("constant", [7, 6, 7], [0.80, 0.81, 0.80]), row(ART, [2, 3, 9], [0.80, 0.81, 0.80])],
                        epochs=20)
    s = v["per_task"]["t"]["speed"]
    assert s["status"] == "inconclusive" and s["point"] == pytest.approx(-0.30)
    assert s["interval"]["low"] < -0.3 < s["interval"]["high"]


def test_verdict_overshoot_above_the_upper_end_contradicts_the_range():
    v = compute_verdict([row("constant", [10, 10, 10], [0.80, 0.81, 0.80]),
                         row(ART, [10, 10, 10], [0.89, 0.905, 0.895])], epochs=20)
    a = v["per_task"]["t"]["accuracy"]
    assert a["status"] == "contradicted" and "above the claim's upper end" in a["reason"]


def test_verdict_several_tasks_are_holm_corrected_and_thresholds_are_parameters():
    rows = [row("constant", [10, 10, 11], [0.80, 0.82, 0.81], task=t) for t in ("a", "b")]
    rows += [row(ART, [6, 6, 7], [0.83, 0.85, 0.84], task=t) for t in ("a", "b")]
    v = compute_verdict(rows, epochs=20)
    assert all("Holm over 2" in v["per_task"][t]["accuracy"]["correction"] for t in ("a", "b"))
    loose = compute_verdict(rows, epochs=20, accuracy_claim=Claim.at_least(0.0, text="more accurate"))
    assert loose["claims"]["accuracy"]["text"] == "more accurate"
    assert loose["per_task"]["a"]["accuracy"]["status"] == "supported"


def test_best_schedule_is_chosen_on_validation_and_its_test_reported():
    rows = [row("constant", [10, 10, 10], test=[0.90, 0.91, 0.90], val=[0.80, 0.80, 0.81]),
            row(ART, [10, 10, 10], test=[0.80, 0.81, 0.80], val=[0.85, 0.86, 0.85])]
    b = compute_verdict(rows, epochs=20)["per_task"]["t"]["best_on_validation"]
    assert b["schedule"] == ART and b["test_acc"] == pytest.approx(0.8033, abs=1e-4)  # not the test maximum


def test_verdict_without_the_articles_schedule_says_so():
    with pytest.raises(ParameterError, match=r"schedule a label containing '\(article\)' for task 't'; the table has: constant"):
        compute_verdict([row("constant", [10, 10, 10], [0.8, 0.8, 0.8])], epochs=20)
    with pytest.raises(ParameterError, match="schedule 'constant'"):
        compute_verdict([row(ART, [10, 10, 10], [0.8, 0.8, 0.8])], epochs=20)


def test_per_batch_pitfall_counts_batches_not_epochs():
    d = per_batch_pitfall(5, 2, iters_per_epoch=20, epochs=20)
    jumps = lambda lr: int((np.diff(lr) > 0.5e-3).sum())
    assert jumps(d["no_fraction"]) == 6  # restarts after 5, 15, 35, 75, 155, 315 batches
    assert jumps(d["fractional"]) == 2  # epochs 5 and 15
    assert math.isclose(d["epoch"][20], 1.0)


def test_verdict_tables_text_form_decide_hooks_and_resolution():
    """One table per claim (a row per task), plain text for the terminal, Verdicts for decide mode, whole epochs
    and 1/n_test as resolutions: identical accuracies on every seed are "equal within resolution", not support."""
    from dsopt.stats import Verdict
    from dsopt.studies.lr_restarts_verdict import claim_verdicts

    rows = [row("constant", [10, 10, 11, 10], [0.80, 0.82, 0.81, 0.80]),
            row(ART, [6, 6, 7, 6], [0.80, 0.82, 0.81, 0.80])]
    for r in rows:
        r["n_test"] = 270
    v = compute_verdict(rows, epochs=20)
    acc = v["per_task"]["t"]["accuracy"]
    assert acc["equal_within_resolution"] and acc["status"] == "contradicted"  # +0 points is below +2: that is decided
    assert acc["resolution"] == pytest.approx(1 / 270) and v["per_task"]["t"]["speed"]["resolution"] == 1.0
    md = render_verdict(v, provenance="from 24 stored runs")
    assert md.startswith("_from 24 stored runs_") and md.count("| **") == 2 and "\n\n**Claim: 'converges" in md
    text = render_verdict(v, fmt="text")
    assert "**" not in text and "|---|" not in text and "<details>" not in text and "contradicted" in text
    cv = claim_verdicts(json.loads(json.dumps(v)))
    assert set(cv) == {"speed / t", "accuracy / t"} and all(isinstance(x, Verdict) for x in cv.values())
    assert cv["accuracy / t"].status == acc["status"]
    wide = compute_verdict(rows, epochs=20, alpha=0.01)["per_task"]["t"]["speed"]["interval"]
    narrow = v["per_task"]["t"]["speed"]["interval"]
    assert wide["low"] < narrow["low"] and wide["high"] > narrow["high"]
