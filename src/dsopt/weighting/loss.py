"""WeightedLoss: a per-sample weighted cross-entropy whose scheme can be switched between steps."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dsopt.util.validation import ParameterError
from dsopt.weighting.checks import _check_batch, _check_counts
from dsopt.weighting.schemes import _CLASS_LEVEL, SCHEMES, Scheme, make_scheme


class WeightedLoss(nn.Module):
    """``loss = mean_i(w_i * CE_i)`` with a scheme that can be replaced between steps.

    Normalisation: the plain mean over the batch, *not* ``sum(w_i CE_i) / sum(w_i)`` (which is what
    ``F.cross_entropy(weight=...)`` does). Dividing by the weight sum would cancel any overall scale and make
    each batch's normalisation depend on its class mix; the mean keeps the scheme's scale visible, so that
    e.g. the article's near-constant 1.13-1.25 factor shows up for what it mostly is (a loss/learning-rate
    scale) and class-balanced weights keep the paper's sum-over-classes normalisation. Compare schemes with
    that in mind, or with a scale-invariant optimiser (Adam). Focal uses its own formula.

    ``last_weights`` holds the detached per-sample weights of the latest forward, for statistics.
    """

    def __init__(self, scheme: str | Scheme = "none", class_counts: Any = None, **params: Any):
        super().__init__()
        self.class_counts = None if class_counts is None else _check_counts(class_counts)
        self.last_weights: torch.Tensor | None = None
        self.scheme = scheme if isinstance(scheme, Scheme) and not params else make_scheme(
            scheme.name if isinstance(scheme, Scheme) else scheme, **params)

    @property
    def scheme(self) -> Scheme:
        return self._scheme

    @scheme.setter
    def scheme(self, value: str | Scheme) -> None:
        scheme = value if isinstance(value, Scheme) else make_scheme(value)
        if SCHEMES[scheme.name].needs_counts and self.class_counts is None:
            raise ParameterError("class_counts", f"scheme {scheme.name!r} needs class_counts; got None")
        self._scheme = scheme

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        name = self._scheme.name
        if name == "none" or name in _CLASS_LEVEL:
            # Fast paths, the same values as Scheme.per_sample_loss: cross-entropy with per-class weights
            # (computed once per scheme and counts, not per batch) fused into one op.
            _check_batch(logits, targets)
            if name == "none":
                self.last_weights = torch.ones(targets.shape[0], dtype=logits.dtype, device=logits.device)
                return F.cross_entropy(logits, targets)
            cw = self._class_weight_tensor(logits)
            self.last_weights = cw[targets]
            return F.cross_entropy(logits, targets, weight=cw, reduction="none").mean()
        loss, self.last_weights = self._scheme.per_sample_loss(logits, targets, self.class_counts)
        return loss.mean()

    def _class_weight_tensor(self, like: torch.Tensor) -> torch.Tensor:
        key = (self._scheme, tuple(self.class_counts.tolist()), like.dtype, like.device)
        if getattr(self, "_cw_key", None) != key:
            w = _CLASS_LEVEL[self._scheme.name](self.class_counts, **self._scheme.params)
            if w.size != like.shape[1]:
                raise ParameterError("counts", f"counts must have one entry per class (C={like.shape[1]}); got {w.size}")
            self._cw, self._cw_key = torch.as_tensor(w, dtype=like.dtype, device=like.device), key
        return self._cw

    def extra_repr(self) -> str:
        return f"scheme={self._scheme.name!r}, params={dict(self._scheme.params)}"
