"""Making a training set more imbalanced on purpose (the chapter's imbalance knob).

Subsampling the minority class lets one ask how a weighting scheme behaves as imbalance grows, from the
data's natural ratio up to e.g. 1000:1, on the same examples.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dsopt.util.validation import ParameterError, check_number

__all__ = ["subsample_minority"]


def subsample_minority(y: Any, ratio: float, *, minority: int = 1, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Indices of a training subset with ``majority : minority = ratio : 1``.

    Apply this to the TRAIN split only: validation and test keep their natural class mix, otherwise the
    reported recall, precision and AUPRC describe a population that does not exist.

    Every non-minority example is kept (they form the "majority"); ``round(n_majority / ratio)`` minority
    examples (at least 1) are drawn without replacement by ``numpy.random.default_rng(seed)``, so the subset is
    deterministic for a given seed. Subsampling can only raise the ratio: a ``ratio`` below the data's
    natural ratio raises :class:`ParameterError`. Returns ``(sorted int64 indices into y, counts)`` where
    ``counts`` has ``majority``, ``minority``, ``ratio`` (achieved, n_majority / n_minority kept) and
    ``natural_ratio``.
    """
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0:
        raise ParameterError("y", f"y must be a non-empty 1-D array of class labels; got shape {labels.shape}")
    ratio = float(check_number("ratio", ratio, low=1.0))
    seed = check_number("seed", seed, low=0, integer=True)
    is_min = labels == minority
    n_min, n_maj = int(is_min.sum()), int((~is_min).sum())
    if n_min == 0:
        raise ParameterError("minority", f"minority class {minority!r} does not occur in y")
    if n_maj == 0:
        raise ParameterError("y", "y has no majority examples (every label is the minority class)")
    natural = n_maj / n_min
    if ratio < natural * (1 - 1e-12):
        raise ParameterError(
            "ratio", f"ratio must be >= the natural ratio {natural:.2f}:1 ({n_maj} majority / {n_min} minority); "
                     f"got {ratio}: subsampling the minority can only increase imbalance")
    keep = min(n_min, max(1, int(np.floor(n_maj / ratio + 0.5))))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(np.flatnonzero(is_min), size=keep, replace=False)
    idx = np.sort(np.concatenate([np.flatnonzero(~is_min), chosen])).astype(np.int64)
    return idx, {"majority": n_maj, "minority": keep, "ratio": n_maj / keep, "natural_ratio": natural}
