"""Imbalanced-classification metrics on a case small enough to compute by hand."""
from __future__ import annotations

import math

import pytest

from dsopt.metrics.binary import binary_report
from dsopt.stats import summarize_seeds
from dsopt.util.validation import ParameterError

# ranked by score: + - + - - + - - -   (3 positives, 6 negatives)
SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
LABELS = [1, 0, 1, 0, 0, 1, 0, 0, 0]


def test_binary_report_hand_values():
    r = binary_report(LABELS, SCORES, threshold=0.5, precision_target=0.6, fpr_target=0.2)
    # AUC: positive at 0.9 beats 6 negatives, at 0.7 beats 5, at 0.4 beats 3 -> 14 / 18
    assert r["roc_auc"] == pytest.approx(14 / 18)
    # AP: precision at each positive's rank 1, 3, 6 -> (1 + 2/3 + 3/6) / 3
    assert r["pr_auc"] == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    # threshold 0.5 predicts the top 5: TP 2, FP 3
    assert r["threshold"] == 0.5 and r["recall_at_threshold"] == pytest.approx(2 / 3)
    assert r["precision_at_threshold"] == pytest.approx(2 / 5) and r["fpr_at_threshold"] == pytest.approx(3 / 6)
    assert r["balanced_accuracy"] == pytest.approx((2 / 3 + 3 / 6) / 2)
    # precision >= 0.6: t=0.9 (P 1, R 1/3) and t=0.7 (P 2/3, R 2/3) qualify -> recall 2/3 at 0.7
    assert r["precision_target_reached"] is True
    assert r["recall_at_precision"] == pytest.approx(2 / 3) and r["threshold_at_precision"] == 0.7
    assert r["precision_achieved"] == pytest.approx(2 / 3)
    # FPR <= 0.2 (one negative of six): t=0.7 gives TPR 2/3, FPR 1/6
    assert r["recall_at_fpr"] == pytest.approx(2 / 3) and r["threshold_at_fpr"] == 0.7
    assert r["fpr_achieved"] == pytest.approx(1 / 6)
    assert r["n"] == 9 and r["n_positive"] == 3 and r["prevalence"] == pytest.approx(1 / 3)


def test_binary_report_stricter_targets_and_unreachable():
    r = binary_report(LABELS, SCORES, precision_target=0.8, fpr_target=0.0)
    assert r["recall_at_precision"] == pytest.approx(1 / 3) and r["threshold_at_precision"] == 0.9
    assert r["recall_at_fpr"] == pytest.approx(1 / 3) and r["threshold_at_fpr"] == 0.9
    # the top-scored example is a negative: no threshold reaches precision 0.8, and FPR 0 recalls nothing
    r = binary_report([1, 0, 0], [0.1, 0.9, 0.5], precision_target=0.8, fpr_target=0.0)
    assert r["precision_target_reached"] is False and r["recall_at_precision"] == 0.0
    assert r["threshold_at_precision"] is None and r["precision_achieved"] is None
    assert r["recall_at_fpr"] == 0.0 and r["threshold_at_fpr"] is None and r["roc_auc"] == 0.0


def test_binary_report_validation_names_parameter():
    cases = [
        (([0, 1], [0.1]), "scores", "one value per label"),
        (([0, 2], [0.1, 0.2]), "y_true", "binary labels 0/1"),
        (([1, 1], [0.1, 0.2]), "y_true", "both classes"),
        (([0, 1], [0.1, math.nan]), "scores", "finite"),
    ]
    for args, name, text in cases:
        with pytest.raises(ParameterError, match=text) as e:
            binary_report(*args)
        assert e.value.name == name
    with pytest.raises(ParameterError, match=r"precision_target must be a number in \(0\.0, 1\.0\]"):
        binary_report(LABELS, SCORES, precision_target=0)
    with pytest.raises(ParameterError, match="fpr_target"):
        binary_report(LABELS, SCORES, fpr_target=1.5)


def test_summarize_seeds_of_binary_reports():
    reports = [binary_report(LABELS, SCORES), binary_report(LABELS, [s * 0.5 for s in SCORES])]
    assert summarize_seeds(reports)["roc_auc"] == (pytest.approx(14 / 18), 0.0, 2)
