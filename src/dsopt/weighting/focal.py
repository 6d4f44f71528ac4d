"""Focal loss (Lin et al., ICCV 2017): FL = -a_t (1 - p_t)^gamma log p_t, multi-class and binary forms."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dsopt.util.validation import ParameterError, check_number
from dsopt.weighting.checks import _check_alpha, _check_batch, _reduce


def _alpha_t(alpha: Any, targets: torch.Tensor, n_classes: int, like: torch.Tensor) -> torch.Tensor | None:
    """Per-sample alpha_t. float: binary convention (class 1 -> alpha, class 0 -> 1 - alpha; C must be 2);
    sequence/tensor: one weight per class."""
    if alpha is None:
        return None
    if isinstance(alpha, (torch.Tensor, np.ndarray, list, tuple)):
        a = torch.as_tensor(alpha, dtype=like.dtype, device=like.device)
        if a.ndim != 1 or a.numel() != n_classes or not torch.isfinite(a).all() or (a < 0).any():
            raise ParameterError(
                "alpha", f"alpha as per-class weights must be {n_classes} finite values >= 0; got {alpha!r}")
        return a[targets]
    a = _check_alpha(alpha)
    if n_classes != 2:
        raise ParameterError(
            "alpha", f"alpha as a float is the binary convention (class 1 gets alpha, class 0 gets 1 - alpha) and "
                     f"needs C == 2; got C={n_classes}: pass one weight per class instead")
    return torch.where(targets == 1, torch.full_like(like, a), torch.full_like(like, 1.0 - a))


def _focal_factor(p_t: torch.Tensor, gamma: float) -> torch.Tensor:
    # (1 - p_t)^gamma; the clamp only touches 1 - p_t < float tiny, where it avoids 0^(gamma-1) = inf
    # gradients (NaN for 0 < gamma < 1 on saturated samples) without changing any value measurably.
    return (1.0 - p_t).clamp_min(torch.finfo(p_t.dtype).tiny).pow(gamma)


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0, alpha: Any = None,
               reduction: str = "mean") -> torch.Tensor:
    """Multi-class (softmax) focal loss ``FL_i = -a_t (1 - p_t)^gamma log p_t`` (Lin et al. 2017).

    ``p_t`` is the softmax probability of the true class. ``alpha``: None (no class factor), a float in
    [0, 1] with C == 2 (class 1 gets ``alpha``, class 0 ``1 - alpha``, as in the binary paper; with logits
    ``[0, z]`` this equals :func:`binary_focal_loss` on ``z``), or C per-class weights. ``gamma = 0`` and
    ``alpha = None`` give plain cross-entropy.
    """
    _check_batch(logits, targets)
    gamma = float(check_number("gamma", gamma, low=0.0))
    logp_t = logits.log_softmax(dim=1).gather(1, targets[:, None]).squeeze(1)
    loss = -_focal_factor(logp_t.exp(), gamma) * logp_t
    a_t = _alpha_t(alpha, targets, logits.shape[1], loss)
    return _reduce(loss if a_t is None else a_t * loss, reduction)


def binary_focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0, alpha: float | None = 0.25,
                      reduction: str = "mean") -> torch.Tensor:
    """Binary (sigmoid) focal loss, the formula of ``torchvision.ops.sigmoid_focal_loss``.

    ``logits`` and ``targets`` have the same shape; targets are floats in [0, 1]. ``p_t = p t + (1-p)(1-t)``,
    ``a_t = alpha t + (1-alpha)(1-t)``, loss ``= a_t (1-p_t)^gamma BCE(logits, t)``. ``alpha=None`` disables the
    class factor (torchvision's ``alpha=-1``). Defaults follow torchvision (gamma 2, alpha 0.25) except
    ``reduction``, "mean" here like the rest of this module (torchvision defaults to "none").
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ParameterError("logits", f"logits must be a floating tensor; got {type(logits).__name__}")
    if not isinstance(targets, torch.Tensor) or targets.shape != logits.shape:
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ParameterError("targets", f"targets must be a tensor of the logits' shape {tuple(logits.shape)}; got {shape}")
    gamma = float(check_number("gamma", gamma, low=0.0))
    alpha = _check_alpha(alpha)
    t = targets.to(logits.dtype)
    if t.numel() and (float(t.min()) < 0 or float(t.max()) > 1):
        raise ParameterError("targets", f"targets must lie in [0, 1]; got values in [{float(t.min())}, {float(t.max())}]")
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    loss = ce * _focal_factor(p * t + (1 - p) * (1 - t), gamma)
    if alpha is not None:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return _reduce(loss, reduction)


def focal_weights(logits: torch.Tensor, targets: torch.Tensor, counts: Any = None, *,
                  gamma: float = 2.0, alpha: Any = None) -> torch.Tensor:
    """Focal loss seen as a per-sample weight on cross-entropy: ``w_i = a_t (1 - p_t)^gamma``.

    ``w_i * CE_i`` equals the focal loss value. Not detached: kept in the graph it also reproduces focal's
    gradient; detach it for statistics or a pure re-weighting. Unlike the article's factor it depends on the
    label: easy (well-classified) samples are down-weighted towards 0, hard ones keep weight ~a_t.
    """
    _check_batch(logits, targets)
    gamma = float(check_number("gamma", gamma, low=0.0))
    p_t = logits.softmax(dim=1).gather(1, targets[:, None]).squeeze(1)
    w = _focal_factor(p_t, gamma)
    a_t = _alpha_t(alpha, targets, logits.shape[1], w)
    return w if a_t is None else a_t * w


def _focal_parts(logits: torch.Tensor, targets: torch.Tensor, gamma: float, alpha: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``focal_loss(..., reduction="none")`` (the same operations, so the same values and gradient) and its
    detached weights ``a_t (1 - p_t)^gamma``, from one log-softmax instead of two softmaxes."""
    _check_batch(logits, targets)
    logp_t = logits.log_softmax(dim=1).gather(1, targets[:, None]).squeeze(1)
    factor = _focal_factor(logp_t.exp(), float(gamma))
    loss = -factor * logp_t
    a_t = _alpha_t(alpha, targets, logits.shape[1], loss)
    w = factor.detach()
    return (loss, w) if a_t is None else (a_t * loss, a_t * w)
