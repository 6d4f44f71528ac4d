"""An embedding drift score per window: how far the window's mean embedding sits from the launch data.

Fit on embeddings of data the model launched with (not the stream): centre them, keep the top
``components`` principal directions and whiten them. For a window of n items with mean offset d
(from the launch mean), two parts, as in PCA-based process monitoring (Hotelling's T^2 and the
squared prediction error Q):

* inside the subspace: T = n ||whitened projection of d||^2, chi-square with ``components`` degrees of
  freedom in control, standardised as (T - k) / sqrt(2k);
* outside it: Q = n ||residual of d||^2, with mean tr(S_res) and variance 2 tr(S_res^2) in control
  (S_res: the launch covariance outside the subspace), standardised the same way.

The score is their sum over sqrt(2): about N(0, 1) while the inputs look like the launch data, and it
grows with a shift in any direction, not only the high-variance ones. Cheap: two projections per window.
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
        self.basis_ = vt[:k].T  # [d, k]: orthonormal
        self.k_ = k
        var = s ** 2 / (x.shape[0] - 1)
        total = float(x.var(0, ddof=1).sum())
        self.residual_trace_ = max(total - float(var[:k].sum()), 1e-12)
        self.residual_trace2_ = max(float((var[k:] ** 2).sum()), 1e-24)
        return self

    def statistic(self, embeddings) -> float:
        """T = n ||whitened window mean||^2 (chi-square with k degrees of freedom in control)."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ParameterError("embeddings", f"need a non-empty [n, d] window; got shape {x.shape}")
        m = (x.mean(0) - self.mean_) @ self.projection_
        return float(x.shape[0] * (m @ m))

    def residual(self, embeddings) -> float:
        """Q = n ||part of the window mean offset outside the subspace||^2."""
        x = np.asarray(embeddings, dtype=np.float64)
        d = x.mean(0) - self.mean_
        r = d - self.basis_ @ (self.basis_.T @ d)
        return float(x.shape[0] * (r @ r))

    def score(self, embeddings) -> float:
        """Standardised T and Q, summed over sqrt(2): about N(0, 1) while the window looks like the launch data."""
        t = (self.statistic(embeddings) - self.k_) / math.sqrt(2 * self.k_)
        q = (self.residual(embeddings) - self.residual_trace_) / math.sqrt(2 * self.residual_trace2_)
        return (t + q) / math.sqrt(2)
