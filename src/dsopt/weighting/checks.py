"""Input checks shared by the weighting schemes: batches, class counts, scalar parameters."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from dsopt.util.validation import ParameterError, check_choice, check_number

CONFIDENCE_READINGS = ("probability", "logit")
REDUCTIONS = ("none", "mean", "sum")


def _check_batch(logits: torch.Tensor, targets: torch.Tensor) -> None:
    """Multi-class batch: logits [N, C] floating, targets [N] integer class indices in [0, C)."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or not logits.is_floating_point():
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ParameterError("logits", f"logits must be a floating tensor of shape [N, C]; got {shape}")
    if logits.shape[1] < 2:
        raise ParameterError("logits", f"logits must have at least 2 classes (C >= 2); got C={logits.shape[1]}")
    if (not isinstance(targets, torch.Tensor) or targets.ndim != 1 or targets.is_floating_point()
            or targets.shape[0] != logits.shape[0]):
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ParameterError(
            "targets", f"targets must be an integer tensor of shape [N]={logits.shape[0]} (class indices); got {shape}")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
        raise ParameterError(
            "targets", f"targets must be class indices in [0, {logits.shape[1] - 1}]; "
                       f"got values in [{int(targets.min())}, {int(targets.max())}]")


def _check_counts(counts: Any, n_classes: int | None = None) -> np.ndarray:
    """Class counts: 1-D, at least 2 classes, every count a positive integer (an absent class has no weight)."""
    if counts is None:
        raise ParameterError("counts", "counts (training-set examples per class) is required by this scheme; got None")
    arr = counts.detach().cpu().numpy() if isinstance(counts, torch.Tensor) else np.asarray(counts)
    if arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr.astype(float))):
        raise ParameterError("counts", f"counts must be a 1-D sequence of >= 2 finite class counts; got {counts!r}")
    if np.any(arr < 1) or np.any(arr != np.round(arr)):
        raise ParameterError("counts", f"counts must be positive integers (every class present); got {arr.tolist()}")
    if n_classes is not None and arr.size != n_classes:
        raise ParameterError("counts", f"counts must have one entry per class (C={n_classes}); got {arr.size}")
    return arr.astype(np.float64)


def _check_alpha(alpha: Any) -> float | None:
    return None if alpha is None else float(check_number("alpha", alpha, low=0.0, high=1.0))


def _check_bool(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ParameterError(name, f"{name} must be one of True, False; got {value!r}")
        return bool(value)
    return check


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    check_choice("reduction", reduction, REDUCTIONS)
    return loss if reduction == "none" else loss.mean() if reduction == "mean" else loss.sum()
