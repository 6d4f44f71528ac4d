"""Head sets: which heads of which layer, always by ORIGINAL index, and [layers, heads] grids.

A *head set* is ``{layer: [original head indices]}``. Original indices stay valid after structural
removal (``MultiHeadSelfAttention.remaining_heads()`` maps current positions back to them), so one
head set means the same heads on a masked model and on its structurally pruned copy. Importance
scores live on a ``[layers, heads]`` grid over original indices; a head that is gone is NaN.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch

from dsopt.util.validation import ParameterError, check_number

HeadSet = dict[int, list[int]]


def attention_layers(model) -> list:
    """The model's attention modules (``model.attention_layers()``), with a clear error if absent."""
    if not hasattr(model, "attention_layers"):
        raise TypeError(f"{type(model).__name__} has no attention_layers(); pruning works on dsopt.models "
                        "(TransformerClassifier, MiniLMEncoder, MiniLMClassifier)")
    return list(model.attention_layers())


def grid_shape(model) -> tuple[int, int]:
    """(layers, heads per layer at construction): the shape of importance grids."""
    layers = attention_layers(model)
    return len(layers), max(a.n_heads_original for a in layers)


def check_head_set(model, heads: Mapping[int, object]) -> HeadSet:
    """Validate ``heads`` against ``model``; return it normalised (sorted, unique, no empty layers)."""
    layers = attention_layers(model)
    if not isinstance(heads, Mapping):
        raise ParameterError("heads", f"heads must be a mapping {{layer: [head, ...]}}; got {heads!r}")
    out: HeadSet = {}
    for layer, hs in heads.items():
        layer = check_number("layer", layer, low=0, high=len(layers) - 1, integer=True)
        n = layers[layer].n_heads_original
        idx = sorted({check_number("heads", int(h) if isinstance(h, torch.Tensor) else h, low=0, high=n - 1,
                                   integer=True) for h in hs})
        if idx:
            out[layer] = sorted(set(out.get(layer, [])) | set(idx))
    return dict(sorted(out.items()))


def count_heads(heads: Mapping[int, list[int]]) -> int:
    """Number of heads in a head set."""
    return sum(len(v) for v in heads.values())


def to_grid(model, per_layer: list[torch.Tensor]) -> torch.Tensor:
    """Place per-layer values (one per CURRENT head) on the [layers, heads] grid of original indices.

    Heads that were removed (and slots a layer never had) are NaN.
    """
    layers = attention_layers(model)
    grid = torch.full(grid_shape(model), math.nan, dtype=torch.float64)
    for i, (a, values) in enumerate(zip(layers, per_layer)):
        if a.n_heads:
            grid[i, a.remaining_heads()] = values.detach().to("cpu", torch.float64)
    return grid


def removed_on_grid(model) -> torch.Tensor:
    """Bool [layers, heads]: True where a head was structurally removed."""
    mask = torch.zeros(grid_shape(model), dtype=torch.bool)
    for i, a in enumerate(attention_layers(model)):
        mask[i, list(a.pruned_heads)] = True
    return mask


def head_set_to_mask(heads: Mapping[int, list[int]], shape: tuple[int, int]) -> torch.Tensor:
    """Bool [layers, heads] with True at the heads of ``heads``."""
    mask = torch.zeros(shape, dtype=torch.bool)
    for layer, hs in heads.items():
        mask[layer, list(hs)] = True
    return mask


def mask_to_head_set(mask: torch.Tensor) -> HeadSet:
    """Inverse of :func:`head_set_to_mask` (layers with no head are left out)."""
    return {i: [int(h) for h in torch.nonzero(row).flatten()] for i, row in enumerate(mask) if row.any()}
