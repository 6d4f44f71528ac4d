"""Binary-classification metrics for imbalanced data, with every recall tied to its operating point.

"Minority recall +27 %" means nothing without a threshold: any recall is reachable by lowering it.
:func:`binary_report` therefore gives threshold-free summaries (ROC AUC, and average precision, the
area under the precision-recall curve that the ULB fraud set's maintainers recommend) next to recall at
three stated operating points: a fixed score threshold, a minimum precision and a maximum false-positive
rate, each reported with the threshold it used. The rule throughout is "predict positive when
score >= threshold".
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from dsopt.util.validation import ParameterError, check_number

__all__ = ["binary_report"]


def _check_inputs(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ParameterError("y_true", f"y_true and scores must be 1-D; got shapes {y.shape} and {s.shape}")
    if y.shape != s.shape:
        raise ParameterError("scores", f"scores must have one value per label: len(y_true)={y.size}, len(scores)={s.size}")
    if not np.all(np.isfinite(s)):
        raise ParameterError("scores", f"scores must be finite; {int(np.sum(~np.isfinite(s)))} are not")
    labels = set(np.unique(y).tolist())
    if not labels <= {0, 1}:
        raise ParameterError("y_true", f"y_true must be binary labels 0/1 (1 = minority/positive); got values {sorted(labels)}")
    if labels != {0, 1}:
        raise ParameterError("y_true", f"y_true must contain both classes 0 and 1 for AUC and recall; got only {sorted(labels)}")
    return y.astype(np.int64), s


def binary_report(y_true: Any, scores: Any, *, threshold: float = 0.5, precision_target: float = 0.8,
                  fpr_target: float = 0.01) -> dict[str, Any]:
    """Threshold-free and operating-point metrics for the positive (minority) class 1.

    ``scores`` are any monotone scores (probabilities, logits); ``threshold`` must be on the same scale.
    Returns a flat dict:

    - ``roc_auc``, ``pr_auc`` (average precision, sklearn's step-wise AUPRC), ``prevalence``, ``n``, ``n_positive``;
    - at ``threshold``: ``recall_at_threshold``, ``precision_at_threshold`` (0 when nothing is predicted
      positive), ``fpr_at_threshold``, ``balanced_accuracy``;
    - ``recall_at_precision``: the largest recall among thresholds whose precision >= ``precision_target``,
      with ``threshold_at_precision`` and the ``precision_achieved``. If no threshold reaches the target,
      the recall is 0.0, the threshold None and ``precision_target_reached`` False (predicting nothing is the
      only operating point left, and it recalls nothing);
    - ``recall_at_fpr``: the largest recall among thresholds whose false-positive rate <= ``fpr_target``,
      with ``threshold_at_fpr`` and ``fpr_achieved`` (threshold None when only "predict nothing" qualifies).

    Ties in the scores move together: every reported operating point is one a deployed model can use.
    """
    y, s = _check_inputs(y_true, scores)
    threshold = float(check_number("threshold", threshold))
    precision_target = float(check_number("precision_target", precision_target, low=0.0, high=1.0, low_inclusive=False))
    fpr_target = float(check_number("fpr_target", fpr_target, low=0.0, high=1.0))

    pred = s >= threshold
    tp, fp = int(np.sum(pred & (y == 1))), int(np.sum(pred & (y == 0)))
    n_pos, n_neg = int(np.sum(y == 1)), int(np.sum(y == 0))
    out: dict[str, Any] = {
        "n": int(y.size), "n_positive": n_pos, "prevalence": n_pos / y.size,
        "roc_auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s)),
        "threshold": threshold, "recall_at_threshold": tp / n_pos,
        "precision_at_threshold": tp / (tp + fp) if tp + fp else 0.0, "fpr_at_threshold": fp / n_neg,
        "balanced_accuracy": float(balanced_accuracy_score(y, pred.astype(np.int64))),
    }

    precision, recall, thr = precision_recall_curve(y, s)  # thr[i] gives (precision[i], recall[i])
    ok = np.flatnonzero(precision[:-1] >= precision_target)  # the final (1, 0) point has no threshold
    best = ok[np.argmax(recall[ok])] if ok.size else None
    out.update({
        "precision_target": precision_target, "precision_target_reached": best is not None,
        "recall_at_precision": float(recall[best]) if best is not None else 0.0,
        "threshold_at_precision": float(thr[best]) if best is not None else None,
        "precision_achieved": float(precision[best]) if best is not None else None,
    })

    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)  # thr[0] = inf: predict nothing
    ok = np.flatnonzero(fpr <= fpr_target)
    best = ok[np.argmax(tpr[ok])]
    out.update({
        "fpr_target": fpr_target, "recall_at_fpr": float(tpr[best]),
        "threshold_at_fpr": float(thr[best]) if np.isfinite(thr[best]) else None,
        "fpr_achieved": float(fpr[best]),
    })
    return out
