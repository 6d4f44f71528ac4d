"""Per-class validation metrics logged to the Recorder each epoch, from the model's plain predictions.

A weighted training loss says little about how a model does on the minority class (and differs
between weighting schemes), so :class:`ClassMetricsCallback` evaluates the model itself after every
epoch: plain (unweighted) cross-entropy, recall of every class at the default operating point, and
for binary tasks ROC-AUC and PR-AUC (average precision) of the positive class. Optionally it keeps
a copy of the weights of the best epoch by one of those metrics (model selection that never looks at
the weighted loss). Panels plot the records; the chapter-04 study uses the selection.
"""
from __future__ import annotations

import copy
from typing import Iterable

import numpy as np
import torch
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from dsopt.core.callbacks import Callback
from dsopt.core.device import move_to
from dsopt.core.modes import eval_mode
from dsopt.core.trainer import call_model
from dsopt.util.validation import check_choice, check_number

__all__ = ["ClassMetricsCallback", "predict_proba", "class_metrics"]

#: Metrics a ClassMetricsCallback can select on (higher is better; "ce_loss" is lower-is-better).
MONITORS = ("pr_auc", "roc_auc", "balanced_accuracy", "macro_f1", "ce_loss")


@torch.no_grad()
def predict_proba(model: torch.nn.Module, loader: Iterable, device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """``(labels [N], softmax probabilities [N, C])`` of ``model`` over ``loader``, in eval mode."""
    ys, ps = [], []
    with eval_mode(model):
        for inputs, targets in loader:
            logits = call_model(model, move_to(inputs, device))
            ps.append(logits.float().softmax(dim=1).cpu())
            ys.append(torch.as_tensor(targets).cpu())
    return torch.cat(ys).numpy(), torch.cat(ps).numpy().astype(np.float64)


def class_metrics(y: np.ndarray, probs: np.ndarray, *, positive: int = 1, threshold: float = 0.5) -> dict[str, float]:
    """Plain CE, per-class recall, balanced accuracy, macro-F1 (and ROC-/PR-AUC for two classes).

    Predictions: for two classes, ``positive`` when its probability is >= ``threshold`` (0.5 = argmax,
    the rule :func:`dsopt.metrics.binary.binary_report` uses); otherwise argmax. ``recall/class_c`` is the
    share of class-``c`` examples predicted as ``c``. AUCs are None when a class is absent.
    """
    y = np.asarray(y)
    k = probs.shape[1]
    if k == 2:
        pred = np.where(probs[:, positive] >= threshold, positive, 1 - positive)
    else:
        pred = probs.argmax(axis=1)
    eps = 1e-12
    out = {"ce_loss": float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], eps, 1.0))))}
    recalls = []
    for c in range(k):
        n = int(np.sum(y == c))
        r = float(np.sum((pred == c) & (y == c)) / n) if n else float("nan")
        out[f"recall/class_{c}"] = r
        if n:
            recalls.append(r)
    out["balanced_accuracy"] = float(np.mean(recalls))
    # macro-F1 over the classes present in y (an absent class has no defined recall; sklearn's convention)
    out["macro_f1"] = float(f1_score(y, pred, labels=np.unique(y), average="macro", zero_division=0))
    if k == 2:
        both = len(np.unique(y)) == 2
        s = probs[:, positive]
        out["roc_auc"] = float(roc_auc_score(y == positive, s)) if both else None
        out["pr_auc"] = float(average_precision_score(y == positive, s)) if both else None
    return out


class ClassMetricsCallback(Callback):
    """At every ``epoch_end``: evaluate ``loader`` and log ``{prefix}_{metric}`` records.

    Records: ``val_ce_loss`` (plain cross-entropy, whatever the training loss), ``val_recall/class_<c>``
    (at threshold 0.5 for two classes), ``val_balanced_accuracy``, ``val_macro_f1`` and, for two classes, ``val_roc_auc``
    and ``val_pr_auc`` (positive class ``positive``). With ``keep_best`` (one of :data:`MONITORS`) the
    weights of the best epoch are kept (earliest on ties); :meth:`restore_best` loads them.
    """

    order = 50  # after callbacks that change the model or the loss at epoch_end

    def __init__(self, loader: Iterable, *, positive: int = 1, prefix: str = "val", keep_best: str | None = None):
        self.loader = loader
        self.positive = check_number("positive", positive, low=0, integer=True)
        self.prefix = str(prefix)
        self.keep_best = None if keep_best is None else check_choice("keep_best", keep_best, MONITORS)
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict | None = None

    def epoch_end(self, state) -> None:
        y, probs = predict_proba(state.model, self.loader, state.device)
        metrics = class_metrics(y, probs, positive=self.positive)
        for name, value in metrics.items():
            if value is not None:
                state.recorder.log(f"{self.prefix}_{name}", value, step=state.step, epoch=state.epoch)
        if self.keep_best is not None and metrics.get(self.keep_best) is not None:
            v = metrics[self.keep_best]
            better = self.best_value is None or (v < self.best_value if self.keep_best == "ce_loss" else v > self.best_value)
            if better:
                self.best_value, self.best_epoch = float(v), int(state.epoch)
                self.best_state = copy.deepcopy({k: t.detach().cpu() for k, t in state.model.state_dict().items()})

    def restore_best(self, model: torch.nn.Module) -> int | None:
        """Load the kept best weights into ``model``; return their epoch (0-based), None if none kept."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        return self.best_epoch

    def state_dict(self) -> dict:
        return {"best_value": self.best_value, "best_epoch": self.best_epoch, "best_state": self.best_state}

    def load_state_dict(self, d: dict) -> None:
        self.best_value, self.best_epoch, self.best_state = d.get("best_value"), d.get("best_epoch"), d.get("best_state")

