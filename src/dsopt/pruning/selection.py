"""Which heads to prune, from a [layers, heads] importance grid (higher = more important).

Two rules, each global (one ranking over the whole model) or per layer:

* ``fraction`` -- remove that fraction of ALL heads (rounded half up), least important first;
  per layer, that fraction of each layer's heads.
* ``threshold`` -- remove heads whose score, min-max rescaled to [0, 1] within the scope (the whole
  model, or each layer), is below the threshold. Rescaling puts every method on one scale
  (|gradients|, nats and probabilities are not comparable): 0 = least important head of the scope.

The last remaining head of a layer is never removed unless ``allow_empty_layers=True``; a global
fraction then takes the next head elsewhere. NaN scores mark heads already removed: they belong to
the result (so it is the full pruned set) and count toward the fraction. Ties break by (layer, head).
"""
from __future__ import annotations

import math

import torch

from dsopt.pruning.heads import HeadSet, mask_to_head_set
from dsopt.util.validation import ParameterError, check_number


def select_heads(importance: torch.Tensor, *, fraction: float | None = None, threshold: float | None = None,
                 per_layer: bool = False, allow_empty_layers: bool = False) -> HeadSet:
    """The head set to prune (original indices) by ``fraction`` or ``threshold``; see the module doc."""
    if (fraction is None) == (threshold is None):
        raise ParameterError("fraction", f"give exactly one of fraction or threshold; got fraction={fraction!r}, "
                                         f"threshold={threshold!r}")
    imp = torch.as_tensor(importance, dtype=torch.float64)
    if imp.dim() != 2:
        raise ParameterError("importance", f"importance must be a [layers, heads] grid; got shape {tuple(imp.shape)}")
    gone = torch.isnan(imp)
    if fraction is not None:
        fraction = float(check_number("fraction", fraction, low=0.0, high=1.0))
        prune = _by_fraction(imp, gone, fraction, per_layer, allow_empty_layers)
    else:
        threshold = float(check_number("threshold", threshold, low=0.0, high=1.0))
        prune = _by_threshold(imp, gone, threshold, per_layer, allow_empty_layers)
    return mask_to_head_set(prune | gone)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5 + 1e-9))


def _order(imp: torch.Tensor, cells) -> list[tuple[int, int]]:
    """(layer, head) cells sorted by score, then layer, then head."""
    return sorted(cells, key=lambda c: (float(imp[c]), c[0], c[1]))


def _by_fraction(imp, gone, fraction, per_layer, allow_empty) -> torch.Tensor:
    L, H = imp.shape
    prune = torch.zeros_like(gone)
    left = (~gone).sum(1).tolist()  # heads each layer still has
    floor = 0 if allow_empty else 1
    if per_layer:
        for i in range(L):
            want = _round_half_up(fraction * H) - int(gone[i].sum())
            cells = _order(imp, [(i, h) for h in range(H) if not gone[i, h]])
            for c in cells[:max(0, min(want, left[i] - floor))]:
                prune[c] = True
        return prune
    want = _round_half_up(fraction * L * H) - int(gone.sum())
    for c in _order(imp, [(i, h) for i in range(L) for h in range(H) if not gone[i, h]]):
        if want <= 0:
            break
        if left[c[0]] > floor:
            prune[c] = True
            left[c[0]] -= 1
            want -= 1
    return prune


def _rescale(values: torch.Tensor) -> torch.Tensor:
    """Min-max to [0, 1] over the non-NaN entries; a constant scope maps to 1 (nothing stands out)."""
    ok = ~torch.isnan(values)
    if not ok.any():
        return values
    lo, hi = values[ok].min(), values[ok].max()
    if hi - lo <= 0:
        return torch.where(ok, torch.ones_like(values), values)
    return (values - lo) / (hi - lo)


def _by_threshold(imp, gone, threshold, per_layer, allow_empty) -> torch.Tensor:
    L, H = imp.shape
    scaled = torch.stack([_rescale(row) for row in imp]) if per_layer else _rescale(imp)
    prune = (scaled < threshold) & ~gone
    if not allow_empty:
        for i in range(L):
            if prune[i].any() and not (~gone[i] & ~prune[i]).any():  # would empty layer i
                keep = max((h for h in range(H) if not gone[i, h]), key=lambda h: (float(imp[i, h]), -h))
                prune[i, keep] = False
    return prune
