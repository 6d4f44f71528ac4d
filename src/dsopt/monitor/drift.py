"""An embedding drift score per window: how far the window's mean embedding sits from the launch data.

Fit on embeddings of data the model launched with (not the stream): centre them, keep the top
``components`` principal directions and whiten them. For a window of n items with whitened mean m,
T = n ||m||^2 is chi-square with ``components`` degrees of freedom while the inputs look like the
launch data (a Hotelling-type statistic on a diagonal, whitened subspace), so the score
(T - components) / sqrt(2 components) is about N(0, 1) in control and grows with any shift of the
input distribution along the directions that carry the most variance. Cheap: one projection per item.
"""
from __future__ import annotations

import math

import numpy as np

from dsopt.util.validation import ParameterError, check_number


class EmbeddingDrift:
    """Drift score of windows of embeddings against a launch sample (scikit-learn style: ``fit`` returns self)."""

    def __init__(self, components: int = 10):
        self.components = check_number("components", components, low=1, high=4096, integer=True)

    def fit(self, embeddings) -> EmbeddingDrift:
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] <= self.components:
            raise ParameterError("embeddings", f"need a [N, d] array with N > components={self.components}; "
                                               f"got shape {x.shape}")
        self.mean_ = x.mean(0)
        _, s, vt = np.linalg.svd(x - self.mean_, full_matrices=False)
        k = min(self.components, vt.shape[0])
        sd = s[:k] / math.sqrt(x.shape[0] - 1)
        if np.any(sd <= 0):
            raise ParameterError("embeddings", "the launch embeddings are degenerate (zero variance directions)")
        self.projection_ = (vt[:k] / sd[:, None]).T  # [d, k]: project and whiten
        self.k_ = k
        return self

    def statistic(self, embeddings) -> float:
        """T = n ||whitened window mean||^2 (chi-square with k degrees of freedom in control)."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ParameterError("embeddings", f"need a non-empty [n, d] window; got shape {x.shape}")
        m = (x.mean(0) - self.mean_) @ self.projection_
        return float(x.shape[0] * (m @ m))

    def score(self, embeddings) -> float:
        """(T - k) / sqrt(2k): about N(0, 1) while the window looks like the launch data."""
        return (self.statistic(embeddings) - self.k_) / math.sqrt(2 * self.k_)
