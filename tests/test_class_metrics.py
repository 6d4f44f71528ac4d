"""Per-class validation metrics callback, the tabular helpers and the confidence curve (chapter 04)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torch.utils.data import DataLoader, TensorDataset

from dsopt import Trainer, seed_everything
from dsopt.data.tabular import Standardizer, tabular_loader
from dsopt.metrics.per_class import ClassMetricsCallback, class_metrics, predict_proba
from dsopt.models.mlp import TabularMLP
from dsopt.util.validation import ParameterError
from dsopt.weighting import WeightedLoss, WeightingCallback, article_weight_range, confidence_curve


def test_class_metrics_hand_values():
    y = np.array([0, 0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.2, 0.5, 0.4])
    m = class_metrics(y, np.stack([1 - p1, p1], axis=1))
    assert m["recall/class_0"] == pytest.approx(2 / 3) and m["recall/class_1"] == 0.5  # 0.5 counts as positive
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p1)) and m["roc_auc"] == pytest.approx(roc_auc_score(y, p1))
    ce = -np.mean(np.log([0.9, 0.4, 0.8, 0.5, 0.4]))
    assert m["ce_loss"] == pytest.approx(ce)
    three = class_metrics(np.array([0, 1, 2]), np.eye(3)[[0, 2, 2]])
    assert [three[f"recall/class_{c}"] for c in range(3)] == [1.0, 0.0, 1.0] and "pr_auc" not in three


def test_callback_logs_plain_metrics_and_keeps_the_best_epoch():
    g = seed_everything(0)
    X = torch.randn(400, 5, generator=g)
    y = (X[:, 0] + 0.5 * torch.randn(400, generator=g) > 1.2).long()
    train = DataLoader(TensorDataset(X[:300], y[:300]), batch_size=32, shuffle=True, generator=g)
    val = DataLoader(TensorDataset(X[300:], y[300:]), batch_size=100)
    model = torch.nn.Linear(5, 2)
    loss = WeightedLoss(class_counts=torch.bincount(y[:300]).tolist())
    cb = ClassMetricsCallback(val, keep_best="pr_auc")
    tr = Trainer(model, torch.optim.AdamW(model.parameters(), lr=0.05), loss, train, None, max_epochs=4, progress=False,
                 callbacks=[WeightingCallback(loss, torch.bincount(y[:300]).tolist(), scheme="inverse_frequency"), cb])
    rec = tr.fit()
    steps, pr = rec.series("val_pr_auc")
    assert steps == [10, 20, 30, 40] and len(rec.series("val_recall/class_1")[1]) == 4
    assert "val_loss" not in rec.names()  # no weighted validation loss anywhere
    yv, probs = predict_proba(model, val)
    assert rec.last("val_ce_loss") == pytest.approx(class_metrics(yv, probs)["ce_loss"])
    assert cb.best_value == max(pr) and cb.best_epoch == pr.index(max(pr))
    cb.restore_best(model)
    assert class_metrics(*predict_proba(model, val))["pr_auc"] == pytest.approx(max(pr))
    with pytest.raises(ParameterError, match="keep_best must be one of"):
        ClassMetricsCallback(val, keep_best="accuracy")


def test_standardizer_and_mlp():
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    s = Standardizer().fit(X)
    assert s.transform(X).tolist() == [[-1.0, 0.0], [1.0, 0.0]]  # a constant column becomes zeros, not NaN
    assert s.transform([[2.0, 7.0]]).tolist() == [[0.0, 2.0]]
    with pytest.raises(ParameterError, match="X must have 2 columns"):
        s.transform(np.ones((1, 3)))
    loader = tabular_loader(X, [0, 1], 1, shuffle=True, seed=3)
    assert next(iter(loader))[0].dtype == torch.float32
    model = TabularMLP(2, 2, hidden=(4, 4), dropout=0.1)
    assert model(torch.zeros(3, 2)).shape == (3, 2)
    with pytest.raises(ParameterError, match=r"hidden\[1\] must be an integer"):
        TabularMLP(2, 2, hidden=(4, 0))


def test_confidence_curve_correct_vs_wrong():
    c = confidence_curve("article", {}, 2, points=11)
    lo, hi = article_weight_range("probability", 2)
    assert c["axis"] == "probability" and c["confidence"][0] == 0.5
    assert np.array_equal(c["correct"], c["wrong"])  # label-agnostic
    assert c["correct"][0] == pytest.approx(hi) and c["correct"][-1] == pytest.approx(lo)
    f = confidence_curve("focal", {"gamma": 2.0}, 2, points=11)
    assert f["correct"] == pytest.approx((1 - f["confidence"]) ** 2)  # p_t = c
    assert f["wrong"] == pytest.approx(f["confidence"] ** 2)  # p_t = 1 - c
    lg = confidence_curve("article", {"confidence": "logit"}, 3, points=5)
    assert lg["axis"] == "logit" and lg["confidence"].tolist() == [-8, -4, 0, 4, 8] and lg["correct"][2] == 1.25
    inv = confidence_curve("inverse_frequency", {}, 2, counts=[90, 10], points=3)
    assert inv["correct"].tolist() == [5.0, 5.0, 5.0] == inv["wrong"].tolist()
    with pytest.raises(ParameterError, match="counts"):
        confidence_curve("inverse_frequency", {}, 2)
