"""Structural removal: slice the heads out of Q/K/V/O so the model is really smaller and faster.

The tensor surgery itself is ``MultiHeadSelfAttention.prune_heads`` (original indices, idempotent);
this module applies a head set to a whole model, refuses to empty a layer unless asked, and reads
the bookkeeping back (each attention module keeps ``pruned_heads``, saved with the model object).
A model with heads removed gives the same outputs as the intact model with those heads masked.
"""
from __future__ import annotations

import copy
from typing import Mapping

from dsopt.pruning.heads import HeadSet, attention_layers, check_head_set
from dsopt.util.validation import ParameterError


def remove_heads(model, heads: Mapping[int, list[int]], *, allow_empty_layers: bool = False) -> HeadSet:
    """Remove ``heads`` (original indices) from ``model`` in place; return the heads removed now.

    Removing every remaining head of a layer raises unless ``allow_empty_layers=True``; then the
    layer's attention adds only the output projection's bias (a clean, deterministic block). The
    projections get new Parameters: rebuild any optimizer that held the old ones.
    """
    heads = check_head_set(model, heads)
    layers = attention_layers(model)
    if not allow_empty_layers:
        for layer, hs in heads.items():
            left = set(layers[layer].remaining_heads()) - set(hs)
            if not left:
                raise ParameterError("heads", f"heads would remove every head of layer {layer}; pass "
                                              "allow_empty_layers=True to drop that layer's attention")
    removed = {}
    for layer, hs in heads.items():
        now = layers[layer].prune_heads(hs)
        if now:
            removed[layer] = now
    return removed


def removed_heads(model) -> HeadSet:
    """Heads removed so far, per layer (original indices): the model's pruning record."""
    return {i: list(a.pruned_heads) for i, a in enumerate(attention_layers(model)) if a.pruned_heads}


def head_counts(model) -> list[int]:
    """Heads each layer has now."""
    return [a.n_heads for a in attention_layers(model)]


def pruned_copy(model, heads: Mapping[int, list[int]], *, allow_empty_layers: bool = False):
    """A deep copy of ``model`` with ``heads`` removed (the original is untouched)."""
    clone = copy.deepcopy(model)
    remove_heads(clone, heads, allow_empty_layers=allow_empty_layers)
    return clone
