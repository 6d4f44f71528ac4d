"""Per-seed summaries: mean and sample standard deviation, the one helper every chapter uses.

One seed has *unknown* noise, not zero noise: the standard deviation of a single value is ``nan``
(never 0.0), so nothing downstream can read one run as noiseless.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from dsopt.util.validation import ParameterError

__all__ = ["as_values", "mean_sd", "summarize_seeds"]


def as_values(values: Iterable[float], name: str = "values") -> np.ndarray:
    """``values`` as a 1-D float array of finite numbers (ParameterError naming ``name`` otherwise)."""
    try:
        v = np.asarray(list(values), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(name, f"{name} must be a sequence of numbers; got {values!r}") from exc
    if v.ndim != 1 or v.size == 0:
        raise ParameterError(name, f"{name} must be a non-empty 1-D sequence of numbers; got {v.size} values")
    if not np.all(np.isfinite(v)):
        raise ParameterError(name, f"{name} must be finite numbers; got {v.tolist()}")
    return v


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of ``values``; the sd of a single value is nan."""
    v = as_values(values)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def summarize_seeds(results: Iterable[Mapping[str, Any]]) -> dict[str, tuple[float, float, int]]:
    """``metric -> (mean, sd, n)`` over per-seed result dicts (e.g. ``binary_report`` outputs).

    Only real numbers are summarised (booleans, None and strings are skipped); ``n`` counts the seeds that
    had a number for that metric, so a metric missing in some runs shows it.
    """
    results = list(results)
    if not results or not all(isinstance(r, Mapping) for r in results):
        raise ParameterError("results", "results must be a non-empty list of dicts (one per seed)")
    values: dict[str, list[float]] = {}
    for r in results:
        for k, v in r.items():
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
                values.setdefault(k, []).append(float(v))
    return {k: (*mean_sd(v), len(v)) for k, v in values.items()}
