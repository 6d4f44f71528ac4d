"""Weight curves of a scheme over a probability or confidence grid (what the panel previews)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from dsopt.util.validation import ParameterError, check_number
from dsopt.weighting.checks import _check_counts
from dsopt.weighting.schemes import SCHEMES, Scheme, make_scheme


def weight_curve(scheme: str | Scheme, params: Mapping[str, Any] | None, p_grid: Any, n_classes: int, *,
                 counts: Any = None, target_class: int = 1) -> dict[str, np.ndarray]:
    """Weight against the true-class probability ``p_t`` (numpy arrays for a panel).

    Each grid point is a sample whose true class ``target_class`` has probability ``p`` and whose other
    classes share ``1 - p`` evenly (logits = log-probabilities); the weights come from the scheme's own
    function. Returns ``{"p_true", "weight"}``; for the article rule also ``{"confidence",
    "weight_vs_confidence"}``: the factor over the confidence's natural range ([1/C, 1] for a probability,
    [-8, 8] for a logit, the latter an arbitrary window since logits have no fixed offset). Note the article's
    weight against ``p_t`` is V-shaped: it is highest where the prediction is least confident, not where it is
    most wrong.
    """
    sch = scheme if isinstance(scheme, Scheme) else make_scheme(scheme, **dict(params or {}))
    k = check_number("n_classes", n_classes, low=2, integer=True)
    target_class = check_number("target_class", target_class, low=0, high=k - 1, integer=True)
    p = np.asarray(p_grid, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or not np.all((p >= 0) & (p <= 1)):
        raise ParameterError("p_grid", f"p_grid must be a non-empty 1-D array of probabilities in [0, 1]; got {p_grid!r}")
    probs = np.repeat(((1.0 - p) / (k - 1))[:, None], k, axis=1)
    probs[:, target_class] = p
    logits = torch.as_tensor(np.log(np.clip(probs, 1e-300, 1.0)), dtype=torch.float64)
    targets = torch.full((p.size,), target_class, dtype=torch.long)
    if SCHEMES[sch.name].needs_counts:
        _check_counts(counts, k)
    out = {"p_true": p, "weight": sch.weights(logits, targets, counts).numpy()}
    if sch.name == "article":
        c = np.linspace(1.0 / k, 1.0, p.size) if sch.params["confidence"] == "probability" else np.linspace(-8, 8, p.size)
        out["confidence"] = c
        out["weight_vs_confidence"] = 1.0 + 0.5 * (1.0 - 1.0 / (1.0 + np.exp(-c)))
    return out


def confidence_curve(scheme: str | Scheme, params: Mapping[str, Any] | None, n_classes: int, *, points: int = 201,
                     counts: Any = None, target_class: int = 1) -> dict[str, Any]:
    """Weight of a class-``target_class`` sample against the prediction's confidence (numpy arrays for a panel).

    ``confidence`` c is the max softmax probability, on [1/C, 1]. ``"correct"``: the true class has
    probability c, the other classes share 1 - c evenly. ``"wrong"``: another class has c, the true class
    and the rest share 1 - c evenly. A label-agnostic rule (the article's) gives the same weight to both;
    focal and class weights do not. For the article's logit reading the weight depends on the max logit,
    not on c, so the axis is the max logit on [-8, 8] instead (``"axis"`` says which: "probability" or "logit").
    """
    sch = scheme if isinstance(scheme, Scheme) else make_scheme(scheme, **dict(params or {}))
    k = check_number("n_classes", n_classes, low=2, integer=True)
    target_class = check_number("target_class", target_class, low=0, high=k - 1, integer=True)
    points = check_number("points", points, low=2, high=100_000, integer=True)
    if SCHEMES[sch.name].needs_counts:
        _check_counts(counts, k)
    if sch.name == "article" and sch.params["confidence"] == "logit":
        z = np.linspace(-8.0, 8.0, points)
        w = 1.0 + 0.5 * (1.0 - 1.0 / (1.0 + np.exp(-z)))
        return {"axis": "logit", "confidence": z, "correct": w, "wrong": w.copy()}
    c = np.linspace(1.0 / k, 1.0, points)
    rest = (1.0 - c) / (k - 1)
    correct = np.repeat(rest[:, None], k, axis=1)
    correct[:, target_class] = c
    wrong = np.repeat(rest[:, None], k, axis=1)
    wrong[:, (target_class + 1) % k] = c
    targets = torch.full((points,), target_class, dtype=torch.long)
    out = {"axis": "probability", "confidence": c}
    for name, probs in (("correct", correct), ("wrong", wrong)):
        logits = torch.as_tensor(np.log(np.clip(probs, 1e-300, 1.0)), dtype=torch.float64)
        out[name] = sch.weights(logits, targets, counts).detach().numpy()
    return out
