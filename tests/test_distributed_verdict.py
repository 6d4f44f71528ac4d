"""Chapter 06's verdict from constructed tables: a CPU measurement of an 8-GPU claim is "not testable here" (shown as
a fact), identical accuracies are judged at their resolution 1/n_val, and the one renderer's three formats."""
from __future__ import annotations

import json

import pytest

from dsopt.stats import Verdict
from dsopt.studies.distributed_verdict import claim_verdicts, compute_verdict, render_verdict

pytestmark = pytest.mark.unit


def rows(n: int = 2, speedups=(1.5, 1.6, 1.55), acc_diffs=(0.0, 0.0, 0.0), n_val: int | None = 360) -> list[dict]:
    seeds = [str(s) for s in range(len(speedups))]
    multi = {"arm": f"ddp x{n}", "n": n, "backend": "ddp", "n_seeds": len(seeds), "n_val": n_val,
             "speedup_by_seed": dict(zip(seeds, speedups)), "ttt_speedup_by_seed": {},
             "acc_diff_by_seed": dict(zip(seeds, acc_diffs)),
             "throughput_by_seed": dict(zip(seeds, (100.0, 101.0, 99.0)))}
    return [{"arm": "1 worker", "n": 1, "backend": "none", "n_seeds": len(seeds)}, multi]


def test_an_eight_gpu_claim_measured_on_cpu_processes_is_not_testable_here_but_shown():
    v = compute_verdict(rows())
    e = v["efficiency"]["ddp x2"]
    assert e["status"] == "not testable here" and e["point"] == pytest.approx((1.5 + 1.6 + 1.55) / 3 / 2)
    assert "cuda" in e["reason"] and "workers" in e["reason"]
    gpu = compute_verdict(rows(n=8, speedups=(7.6, 7.7, 7.65)), device="cuda")["efficiency"]["ddp x8"]
    assert gpu["status"] == "supported"  # 96 % on 8 CUDA workers: the claim's own setting, so judged
    assert compute_verdict(rows(n=2), device="cuda")["efficiency"]["ddp x2"]["status"] == "not testable here"


def test_identical_accuracies_are_judged_at_their_resolution_never_at_zero_width():
    same = compute_verdict(rows())["accuracy"]["ddp x2"]
    assert same["status"] == "supported" and same["equal_within_resolution"]  # +-0.3 points inside +-0.5
    assert same["interval"]["high"] - same["interval"]["low"] > 0.004
    bare = compute_verdict(rows(n_val=None))["accuracy"]["ddp x2"]
    assert bare["status"] == "inconclusive" and "zero width" in bare["reason"]  # three exact zeros: no interval
    off = compute_verdict(rows(acc_diffs=(0.02, 0.03, 0.025)))["accuracy"]["ddp x2"]
    assert off["status"] == "contradicted"


def test_render_formats_round_trip_and_decide_hooks():
    v = compute_verdict(rows(), alpha=0.05)
    stored = json.loads(json.dumps(v))
    md = render_verdict(v, provenance="from 9 stored runs")
    assert render_verdict(stored, provenance="from 9 stored runs") == md
    assert md.startswith("_from 9 stored runs_") and "**not testable here**" in md and "47 %" in md
    text = render_verdict(stored, fmt="text")
    assert "**" not in text and "|---|" not in text and "<details>" not in text and "not testable here" in text
    cv = claim_verdicts(stored)
    assert set(cv) == {"efficiency / ddp x2", "accuracy / ddp x2"} and all(isinstance(x, Verdict) for x in cv.values())
    wide = compute_verdict(rows(), alpha=0.01)["accuracy"]["ddp x2"]["interval"]
    assert wide["high"] > v["accuracy"]["ddp x2"]["interval"]["high"]
