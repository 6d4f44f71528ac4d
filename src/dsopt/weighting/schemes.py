"""Per-sample loss weighting for imbalanced classification (chapter 04).

The article's recipe multiplies each sample's loss by ``1 + 0.5 * (1 - sigmoid(confidence))``. This
module implements that rule exactly as written, next to the published alternatives it should be
compared with: focal loss (Lin et al., ICCV 2017), class-balanced weights by effective number (Cui et
al., CVPR 2019) and plain inverse frequency. Every scheme is a pure function
``(logits [N, C], targets [N], counts [C] | None, **params) -> weights [N]``; :class:`~dsopt.weighting.loss.WeightedLoss`
turns a scheme into a loss whose scheme can be switched while a run is live, and
:class:`~dsopt.weighting.callback.WeightingCallback` exposes the scheme and its parameters as Trainer knobs and records weight
statistics per class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from dsopt.util.validation import ParameterError, check_choice, check_number
from dsopt.weighting.checks import CONFIDENCE_READINGS, _check_alpha, _check_batch, _check_bool, _check_counts
from dsopt.weighting.focal import _focal_parts, focal_weights

__all__ = [
    "article_weights", "article_weight_range", "class_balanced_class_weights", "inverse_frequency_class_weights",
    "class_balanced_weights", "inverse_frequency_weights", "uniform_weights", "ParamSpec", "SchemeSpec", "Scheme",
    "SCHEMES", "make_scheme",
]


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
