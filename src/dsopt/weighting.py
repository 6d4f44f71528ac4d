"""Per-sample loss weighting for imbalanced classification (chapter 04).

The article's recipe multiplies each sample's loss by ``1 + 0.5 * (1 - sigmoid(confidence))``. This
module implements that rule exactly as written, next to the published alternatives it should be
compared with: focal loss (Lin et al., ICCV 2017), class-balanced weights by effective number (Cui et
al., CVPR 2019) and plain inverse frequency. Every scheme is a pure function
``(logits [N, C], targets [N], counts [C] | None, **params) -> weights [N]``; :class:`WeightedLoss`
turns a scheme into a loss whose scheme can be switched while a run is live, and
:class:`WeightingCallback` exposes the scheme and its parameters as Trainer knobs and records weight
statistics per class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .callbacks import Callback
from .controls import Knob
from .validation import ParameterError, check_choice, check_number

__all__ = [
    "article_weights", "article_weight_range", "focal_loss", "binary_focal_loss", "focal_weights",
    "class_balanced_class_weights", "inverse_frequency_class_weights", "class_balanced_weights",
    "inverse_frequency_weights", "uniform_weights", "ParamSpec", "SchemeSpec", "Scheme", "SCHEMES",
    "make_scheme", "WeightedLoss", "weight_curve", "confidence_curve", "WeightingCallback",
]

CONFIDENCE_READINGS = ("probability", "logit")
REDUCTIONS = ("none", "mean", "sum")


# ----------------------------------------------------------------------------- input checks
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


# ----------------------------------------------------------------------------- the article's rule
def article_weights(logits: torch.Tensor, targets: torch.Tensor, counts: Any = None, *,
                    confidence: str = "probability", detach: bool = True) -> torch.Tensor:
    """The article's factor ``w = 1 + 0.5 * (1 - sigmoid(c))`` per sample, exactly as written.

    ``c`` is the *predicted* class's confidence: its softmax probability (``"probability"``, the max
    softmax probability) or its raw logit (``"logit"``, the max logit). The label plays no part: a
    confidently *wrong* prediction gets the smallest weight, just like a confidently right one.
    ``targets`` and ``counts`` are accepted only for the common scheme signature.

    Ranges (see :func:`article_weight_range`): with a probability ``c`` lies in [1/C, 1], so ``w`` lies in
    [1 + 0.5(1 - sigmoid(1)), 1 + 0.5(1 - sigmoid(1/C))] within [1.134, 1.25] -- a near-constant factor
    that mostly rescales the loss (an SGD learning-rate boost of 13-25 %, largely cancelled by Adam). With a
    logit, ``w`` lies in the open interval (1, 1.5) and depends on the arbitrary logit offset.

    ``detach=True`` (default) treats ``w`` as a constant, so the gradient is ``w_i * dCE_i/dz``: a pure
    re-weighting. With ``detach=False`` the gradient also flows through ``w`` into the logits, and the
    effective loss changes: ``d(w*CE)/dz = w*dCE/dz + CE*dw/dc*dc/dz`` with
    ``dw/dc = -0.5*sigmoid(c)*(1 - sigmoid(c)) < 0``. Descending that extra term *raises* ``c``: each
    sample is pushed to become more confident in whatever class it currently predicts, with a strength
    proportional to its CE. For a misclassified sample that reinforces the wrong class (an entropy-
    minimisation term, label-agnostic); under the logit reading it also rewards inflating the max logit
    without bound.
    """
    _check_batch(logits, targets)
    check_choice("confidence", confidence, CONFIDENCE_READINGS)
    _check_bool("detach")(detach)
    z = logits.detach() if detach else logits
    c = z.softmax(dim=1).amax(dim=1) if confidence == "probability" else z.amax(dim=1)
    return 1.0 + 0.5 * (1.0 - torch.sigmoid(c))


def article_weight_range(confidence: str, n_classes: int) -> tuple[float, float]:
    """Exact bounds ``(low, high)`` of the article's factor for ``n_classes`` classes.

    ``"probability"``: the closed interval [1 + 0.5(1 - sigmoid(1)), 1 + 0.5(1 - sigmoid(1/C))] (max softmax
    probability ranges over [1/C, 1]; both ends are reached). ``"logit"``: the open interval (1, 1.5),
    approached as the max logit goes to +inf / -inf, never reached.
    """
    check_choice("confidence", confidence, CONFIDENCE_READINGS)
    k = check_number("n_classes", n_classes, low=2, integer=True)
    if confidence == "logit":
        return 1.0, 1.5
    sig = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731
    return 1.0 + 0.5 * (1.0 - sig(1.0)), 1.0 + 0.5 * (1.0 - sig(1.0 / k))


# ----------------------------------------------------------------------------- focal loss
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


# ----------------------------------------------------------------------------- class-level weights
def class_balanced_class_weights(counts: Any, beta: float = 0.999) -> np.ndarray:
    """Class-balanced weights by effective number (Cui et al. 2019): ``w_c = (1-beta)/(1-beta^n_c)``.

    The effective number of samples ``E_n = (1-beta^n)/(1-beta)`` saturates as data overlap; ``w_c = 1/E_n``
    is normalised so ``sum_c w_c = C`` (the paper's normalisation). ``beta = 0`` gives uniform weights;
    ``beta -> 1`` approaches inverse frequency (``E_n -> n``). Note the normalisation is over classes, not
    samples: on imbalanced data the average weight *per sample* is well below 1.
    """
    n = _check_counts(counts)
    beta = float(check_number("beta", beta, low=0.0, high=1.0, high_inclusive=False))
    with np.errstate(divide="ignore"):
        effective = -np.expm1(n * np.log1p(beta - 1.0)) / (1.0 - beta)  # (1 - beta^n)/(1 - beta), accurate near 1
    w = 1.0 / effective
    return w * (n.size / w.sum())


def inverse_frequency_class_weights(counts: Any) -> np.ndarray:
    """Inverse-frequency weights ``w_c = N / (C n_c)``: a balanced class mix gives all ones, and the
    sample-average weight is exactly 1 (``sum_c n_c w_c = N``), as in sklearn's ``class_weight="balanced"``."""
    n = _check_counts(counts)
    return n.sum() / (n.size * n)


def _per_sample(class_w: np.ndarray, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if class_w.size != logits.shape[1]:
        raise ParameterError("counts", f"counts must have one entry per class (C={logits.shape[1]}); got {class_w.size}")
    return torch.as_tensor(class_w, dtype=logits.dtype, device=logits.device)[targets]


def class_balanced_weights(logits: torch.Tensor, targets: torch.Tensor, counts: Any, *, beta: float = 0.999) -> torch.Tensor:
    """Per-sample class-balanced weight ``w_{y_i}`` (see :func:`class_balanced_class_weights`)."""
    _check_batch(logits, targets)
    return _per_sample(class_balanced_class_weights(counts, beta), logits, targets)


def inverse_frequency_weights(logits: torch.Tensor, targets: torch.Tensor, counts: Any) -> torch.Tensor:
    """Per-sample inverse-frequency weight ``N / (C n_{y_i})``."""
    _check_batch(logits, targets)
    return _per_sample(inverse_frequency_class_weights(counts), logits, targets)


def uniform_weights(logits: torch.Tensor, targets: torch.Tensor, counts: Any = None) -> torch.Tensor:
    """All ones: plain cross-entropy (the "none" scheme)."""
    _check_batch(logits, targets)
    return torch.ones(logits.shape[0], dtype=logits.dtype, device=logits.device)


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class ParamSpec:
    """One scheme parameter: default, validator (returns the coerced value or raises ParameterError), doc."""
    name: str
    default: Any
    validate: Callable[[Any], Any]
    doc: str = ""


@dataclass(frozen=True)
class SchemeSpec:
    """A registered scheme: its per-sample weight function, parameters and whether it needs class counts."""
    name: str
    fn: Callable[..., torch.Tensor]
    params: tuple[ParamSpec, ...]
    needs_counts: bool
    doc: str = ""


_GAMMA = ParamSpec("gamma", 2.0, lambda v: float(check_number("gamma", v, low=0.0, high=10.0)),
                   "focusing exponent in [0, 10]; 0 = cross-entropy, 2 = the paper's best")
_ALPHA = ParamSpec("alpha", None, _check_alpha,
                   "None or a float in [0, 1]: class 1 gets alpha, class 0 1 - alpha (binary only; paper: 0.25)")
_BETA = ParamSpec("beta", 0.999, lambda v: float(check_number("beta", v, low=0.0, high=1.0, high_inclusive=False)),
                  "effective-number beta in [0, 1); 0 = uniform, -> 1 = inverse frequency")
_CONFIDENCE = ParamSpec("confidence", "probability", lambda v: check_choice("confidence", v, CONFIDENCE_READINGS),
                        "what the article's 'confidence' is: the max softmax probability or the max logit")
_DETACH = ParamSpec("detach", True, _check_bool("detach"), "treat the article's weight as a constant (no gradient)")

SCHEMES: dict[str, SchemeSpec] = {s.name: s for s in (
    SchemeSpec("none", uniform_weights, (), False, "plain cross-entropy"),
    SchemeSpec("article", article_weights, (_CONFIDENCE, _DETACH), False, "1 + 0.5 (1 - sigmoid(confidence))"),
    SchemeSpec("focal", focal_weights, (_GAMMA, _ALPHA), False, "focal loss, a_t (1 - p_t)^gamma"),
    SchemeSpec("class_balanced", class_balanced_weights, (_BETA,), True, "(1 - beta)/(1 - beta^n_c), sum = C"),
    SchemeSpec("inverse_frequency", inverse_frequency_weights, (), True, "N / (C n_c)"),
)}


@dataclass(frozen=True)
class Scheme:
    """A scheme with validated parameters (build with :func:`make_scheme`)."""
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def weights(self, logits: torch.Tensor, targets: torch.Tensor, counts: Any = None) -> torch.Tensor:
        """Per-sample weights [N]."""
        return SCHEMES[self.name].fn(logits, targets, counts, **self.params)

    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor, counts: Any = None):
        """``(loss [N], detached weights [N])``; focal uses its own formula (gradient through (1-p_t)^gamma)."""
        if self.name == "focal":
            return _focal_parts(logits, targets, **self.params)
        w = self.weights(logits, targets, counts)
        return w * F.cross_entropy(logits, targets, reduction="none"), w.detach()


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


#: Schemes whose weight depends on the class only: per-class weights from (counts, **params).
_CLASS_LEVEL = {"class_balanced": lambda counts, beta: class_balanced_class_weights(counts, beta),
                "inverse_frequency": lambda counts: inverse_frequency_class_weights(counts)}


def make_scheme(name: str, **params: Any) -> Scheme:
    """Validate ``name`` and its parameters (unknown ones refused, missing ones defaulted) into a :class:`Scheme`."""
    spec = SCHEMES[check_choice("scheme", name, SCHEMES)]
    allowed = {p.name: p for p in spec.params}
    for key in params:
        if key not in allowed:
            raise ParameterError(key, f"{key} is not a parameter of scheme {name!r}; "
                                      f"allowed: {', '.join(allowed) or 'none'}")
    return Scheme(name, {k: p.validate(params.get(k, p.default)) for k, p in allowed.items()})


# ----------------------------------------------------------------------------- the loss module
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


# ----------------------------------------------------------------------------- curves for a panel
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


# ----------------------------------------------------------------------------- Trainer callback
_KNOB_PARAMS = ("gamma", "alpha", "beta", "confidence")
_QUANTILES = (("q10", 0.1), ("q50", 0.5), ("q90", 0.9))


class WeightingCallback(Callback):
    """Live knobs ``scheme``, ``gamma``, ``alpha``, ``beta``, ``confidence`` for a :class:`WeightedLoss`, and
    per-class weight statistics.

    At ``batch_start`` (knob changes already applied by the Trainer) the loss's scheme is rebuilt if the
    knobs changed, so a new scheme takes effect from that step's loss on. At ``batch_end`` the batch's
    ``last_weights`` are collected by target class; at ``epoch_end`` the per-class mean and 10/50/90 %
    quantiles are logged as ``weight_mean/class_<c>``, ``weight_q10/class_<c>``, ... ``switches`` lists
    ``(step, scheme name, params)`` for every scheme in force. ``class_counts`` (training-set examples per
    class) are handed to the loss, for the class-balanced and inverse-frequency schemes.
    """

    def __init__(self, weighted_loss: WeightedLoss, class_counts: Any, scheme: str = "none", **params: Any):
        bad = set(params) - set(_KNOB_PARAMS)
        if bad:
            key = sorted(bad)[0]
            raise ParameterError(key, f"{key} is not a weighting knob; allowed: {', '.join(_KNOB_PARAMS)}")
        self.loss = weighted_loss
        self.class_counts = weighted_loss.class_counts = _check_counts(class_counts)  # the loss uses these
        specs = {p.name: p for s in SCHEMES.values() for p in s.params}
        self.defaults = {"scheme": check_choice("scheme", scheme, SCHEMES)}
        self.defaults.update({k: specs[k].validate(params.get(k, specs[k].default)) for k in _KNOB_PARAMS})
        self._specs = specs
        self.switches: list[tuple[int, str, dict]] = []
        self._current: tuple | None = None
        self._by_class: dict[int, list[np.ndarray]] = {}

    def knobs(self) -> list:
        docs = {"scheme": f"loss weighting scheme: {', '.join(SCHEMES)}"}
        out = [Knob("scheme", self.defaults["scheme"], lambda v: check_choice("scheme", v, SCHEMES), docs["scheme"])]
        out += [Knob(k, self.defaults[k], self._specs[k].validate, self._specs[k].doc) for k in _KNOB_PARAMS]
        return out

    def _sync(self, state) -> None:
        values = {**self.defaults, **{k: v for k, v in (state.knobs or {}).items() if k in self.defaults}}
        name = values["scheme"]
        params = {p.name: values[p.name] for p in SCHEMES[name].params if p.name in values}
        key = (name, tuple(sorted(params.items())))
        if key != self._current:
            self.loss.scheme = make_scheme(name, **params)
            self._current = key
            if not self.switches or (self.switches[-1][1], self.switches[-1][2]) != (name, params):
                self.switches.append((int(state.step), name, params))

    def fit_start(self, state) -> None:
        self._sync(state)

    def epoch_start(self, state) -> None:
        self._by_class = {}

    def batch_start(self, state) -> None:
        self._sync(state)

    def batch_end(self, state) -> None:
        w, t = self.loss.last_weights, state.targets
        if w is None or t is None:
            return
        w, t = w.detach().float().cpu().numpy(), torch.as_tensor(t).detach().cpu().numpy()
        if w.shape != t.shape:
            raise RuntimeError(f"WeightingCallback: last_weights {w.shape} do not match targets {t.shape}; "
                               "is the Trainer's loss_fn this callback's WeightedLoss?")
        for c in np.unique(t):
            self._by_class.setdefault(int(c), []).append(w[t == c])

    def epoch_end(self, state) -> None:
        for c in sorted(self._by_class):
            w = np.concatenate(self._by_class[c])
            state.recorder.log(f"weight_mean/class_{c}", float(w.mean()), step=state.step, epoch=state.epoch)
            for label, q in _QUANTILES:
                state.recorder.log(f"weight_{label}/class_{c}", float(np.quantile(w, q)), step=state.step, epoch=state.epoch)
        self._by_class = {}

    def state_dict(self) -> dict:
        # the epoch's partial weights travel too, so a run resumed mid-epoch logs the same statistics
        partial = {c: np.concatenate(ws) for c, ws in self._by_class.items()}
        return {"defaults": dict(self.defaults), "switches": [list(s) for s in self.switches], "partial": partial}

    def load_state_dict(self, d: dict) -> None:
        self.defaults.update(d.get("defaults", {}))
        self.switches = [tuple(s) for s in d.get("switches", [])]
        self._by_class = {int(c): [np.asarray(w)] for c, w in d.get("partial", {}).items()}
        self._current = None  # the loss's scheme is rebuilt from the restored knobs at the next batch_start
