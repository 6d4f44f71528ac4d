"""Per-sample loss weighting for imbalanced classification (chapter 04's technique).

``schemes``: the article's rule, class-balanced and inverse-frequency weights, the scheme registry;
``focal``: focal loss; ``loss``: :class:`WeightedLoss`; ``curves``: weight curves for previews;
``callback``: :class:`WeightingCallback` (live knobs, per-class weight statistics).
Pure functions of ``(logits, targets, class counts)``: no data loading, no plotting.
"""
from dsopt.weighting.callback import WeightingCallback
from dsopt.weighting.checks import CONFIDENCE_READINGS
from dsopt.weighting.curves import confidence_curve, weight_curve
from dsopt.weighting.focal import binary_focal_loss, focal_loss, focal_weights
from dsopt.weighting.loss import WeightedLoss
from dsopt.weighting.schemes import (
    SCHEMES,
    ParamSpec,
    Scheme,
    SchemeSpec,
    article_weight_range,
    article_weights,
    class_balanced_class_weights,
    class_balanced_weights,
    inverse_frequency_class_weights,
    inverse_frequency_weights,
    make_scheme,
    uniform_weights,
)

__all__ = [
    "article_weights", "article_weight_range", "focal_loss", "binary_focal_loss", "focal_weights",
    "class_balanced_class_weights", "inverse_frequency_class_weights", "class_balanced_weights",
    "inverse_frequency_weights", "uniform_weights", "ParamSpec", "SchemeSpec", "Scheme", "SCHEMES",
    "make_scheme", "WeightedLoss", "weight_curve", "confidence_curve", "WeightingCallback", "CONFIDENCE_READINGS",
]
