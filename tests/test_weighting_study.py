"""Chapter 04's study: table and verdict from constructed runs, one real tiny run, caching, the 578:1 range."""
from __future__ import annotations

import json
import math

import pytest

import dsopt.studies.dynamic_weighting as ws
from dsopt.studies.dynamic_weighting import (
    article_vs_imbalance,
    compare_schemes,
    format_table,
    run_one,
    study_schemes,
    summarize,
    verdict,
)
from dsopt.util.validation import ParameterError


def fake_run(task, ratio, scheme, seed, recall, auc=0.8, pr=0.5):
    test = {"roc_auc": auc, "pr_auc": pr, "recall_at_threshold": recall, "recall_at_precision": recall / 2,
            "recall_at_fpr": recall / 4, "balanced_accuracy": 0.6, "precision_at_threshold": 0.7,
            "prevalence": 0.2, "precision_target_reached": seed != 2}
    return {"task": task, "ratio": ratio, "ratio_label": ws.ratio_label(ratio), "scheme": scheme, "seed": seed,
            "train_ratio": 3.5 if ratio is None else float(ratio), "train_counts": [350, 100], "best_epoch": seed,
            "test": test}


def constructed_runs(article_recalls=(0.40, 0.42, 0.44), base_recalls=(0.30, 0.30, 0.33)):
    runs = []
    for ratio in (None, 100.0):
        for s, (a, b) in enumerate(zip(article_recalls, base_recalls)):
            runs.append(fake_run("credit_card_default", ratio, "unweighted", s, b, auc=0.75 + 0.01 * s))
            runs.append(fake_run("credit_card_default", ratio, "article (probability)", s, a, auc=0.76 + 0.01 * s))
            runs.append(fake_run("credit_card_default", ratio, "inverse frequency", s, 0.6, pr=0.55))
    return runs


def test_summarize_mean_sd_and_counts():
    rows = summarize(constructed_runs())
    assert len(rows) == 6
    r = next(r for r in rows if r["scheme"] == "unweighted" and r["ratio_label"] == "natural")
    assert r["n_seeds"] == 3 and r["recall_at_threshold"] == pytest.approx(0.31)
    assert r["recall_at_threshold_sd"] == pytest.approx(math.sqrt(((0.01) ** 2 * 2 + 0.02 ** 2) / 2))
    assert r["roc_auc"] == pytest.approx(0.76) and r["precision_reached"] == "2/3" and r["best_epoch"] == 2.0
    assert next(r for r in rows if r["ratio_label"] == "100:1")["train_ratio"] == 100.0
    table = format_table(rows)
    assert "recall @ threshold 0.5" in table and "recall @ precision >= 0.8" in table and "recall @ FPR <= 1 %" in table
    assert "0.310 +- 0.017" in table and "(2/3 reached)" in table


def test_verdict_states_operating_points_and_uses_the_table():
    rows = summarize(constructed_runs())
    v = verdict(rows)
    text = v["text"]
    # +0.11 absolute on 0.31 = +35 % relative, noise sqrt(0.02^2 + 0.0173^2) = 0.026: the claim holds
    assert v["per_setting"]["credit_card_default / natural"]["claim_recall_holds"]
    assert "minority recall at threshold 0.5 0.310 -> 0.420 (+0.110, +35 % relative" in text
    assert "recall at precision >= 0.8 0.155 -> 0.210" in text and "recall at FPR <= 1 % 0.077 -> 0.105" in text
    assert "holds in 2 of 2 settings" in text and "Best PR-AUC: inverse frequency (0.550 +- 0.000)" in text
    assert "'AUC 0.94': the article's rule reached ROC-AUC >= 0.94 in 0 of 2 settings" in text
    # a gain inside the seed noise does not count, and a zero baseline has no relative change
    noisy = verdict(summarize(constructed_runs(article_recalls=(0.1, 0.9, 0.3), base_recalls=(0.3, 0.3, 0.31))))
    assert not noisy["holds_in"] and "not reproduced in any of 2 settings" in noisy["text"]
    zero = verdict(summarize(constructed_runs(base_recalls=(0.0, 0.0, 0.0))))
    assert "relative change undefined: baseline 0" in zero["text"] and not zero["holds_in"]
    with pytest.raises(ParameterError, match="need the schemes"):
        verdict([r for r in rows if r["scheme"] != "unweighted"])


def test_article_range_against_578_to_1():
    a = article_vs_imbalance()
    assert a["counts"] == [284_315, 492] and round(a["ratio"]) == 578
    assert a["article_probability"] == pytest.approx([1.1345, 1.1888], abs=1e-4)
    assert a["article_probability_tilt"] == pytest.approx(1.0479, abs=1e-4) and a["article_logit_tilt_bound"] == 1.5
    assert a["inverse_frequency_tilt"] == pytest.approx(284_315 / 492)
    assert 1 < a["class_balanced_tilt"] < a["inverse_frequency_tilt"]
    assert "at most 1.048x between any two samples" in a["text"] and "-> 578x" in a["text"]


def test_study_schemes_labels_and_validation():
    s = study_schemes()
    assert list(s) == ["unweighted", "article (probability)", "article (logit)", "focal (gamma=2, alpha=0.25)",
                       "class-balanced (beta=0.9999)", "inverse frequency"]
    assert s["focal (gamma=2, alpha=0.25)"] == ("focal", {"gamma": 2.0, "alpha": 0.25})
    with pytest.raises(ParameterError, match="beta must be"):
        study_schemes(beta=1.0)


def test_run_one_tiny_is_deterministic_and_reports_operating_points():
    kw = dict(epochs=2, seed=1, scale="tiny", imbalance_ratio=20.0)
    a = run_one("credit_card_default", "focal", {"gamma": 2.0, "alpha": 0.25}, **kw)
    ws._task.cache_clear()  # a fresh task (as in a new worker process) gives the same run
    b = run_one("credit_card_default", "focal", {"gamma": 2.0, "alpha": 0.25}, **kw)
    a.pop("seconds"), b.pop("seconds")
    assert a == b
    t = a["test"]
    assert t["threshold"] == 0.5 and t["precision_target"] == 0.8 and t["fpr_target"] == 0.01
    assert 0 <= t["recall_at_threshold"] <= 1 and 0 <= t["pr_auc"] <= 1 and t["prevalence"] == pytest.approx(995 / 4500)
    assert a["train_counts"] == [187, 9] and len(a["val_pr_auc"]) == 2 and a["best_epoch"] in (0, 1)
    assert set(a["weight_mean_last_epoch"]) == {"0", "1"}


def test_compare_schemes_caches_and_resumes(tmp_path, monkeypatch):
    schemes = {k: v for k, v in study_schemes(article_readings=("probability",)).items()
               if k in ("unweighted", "article (probability)")}
    kw = dict(ratios=[None], epochs=1, seeds=[0, 1], scale="tiny", cache_dir=tmp_path, workers=1, progress=False)
    res = compare_schemes(["credit_card_default"], schemes, **kw)
    assert len(res["runs"]) == 4 and len(list(tmp_path.glob("*.json"))) == 4 and len(res["table"]) == 2
    json.loads(next(tmp_path.glob("*.json")).read_text())  # complete JSON files
    # patch the inner function: run_one itself (and so the run's code fingerprint) stays the same
    monkeypatch.setattr(ws, "_run_one", lambda *a, **k: pytest.fail("a cached run was recomputed"))
    again = compare_schemes(["credit_card_default"], schemes, **kw)
    assert again["table"] == res["table"]
