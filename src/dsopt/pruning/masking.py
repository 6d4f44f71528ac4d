"""Soft masking: switch heads off through their gates on a live model, and switch them back.

Masking sets ``head_gate`` entries to 0, which multiplies the head's context vector by 0 before the
output projection: the model computes exactly what the structurally pruned model computes, but
nothing is removed, so it is instant and fully reversible. Use the context manager ``masked`` for a
temporary mask, or ``apply_head_mask`` / ``restore_gates`` when the mask must outlive a block (a
panel slider). Gates are restored by value, so a mask applied on top of another is undone exactly.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

import torch

from dsopt.pruning.heads import attention_layers, check_head_set


def gates(model) -> list[torch.Tensor]:
    """A copy of every layer's gate vector (one entry per CURRENT head)."""
    return [a.head_gate.detach().clone() for a in attention_layers(model)]


@torch.no_grad()
def apply_head_mask(model, heads: Mapping[int, list[int]]) -> list[torch.Tensor]:
    """Set the gates of ``heads`` (original indices) to 0; return the previous gates for restoring.

    Heads already removed structurally are ignored (they compute nothing either way).
    """
    heads = check_head_set(model, heads)
    saved = gates(model)
    for layer, hs in heads.items():
        a = attention_layers(model)[layer]
        position = {h: p for p, h in enumerate(a.remaining_heads())}
        pos = [position[h] for h in hs if h in position]
        if pos:
            a.head_gate[pos] = 0.0
    return saved


@torch.no_grad()
def restore_gates(model, saved: list[torch.Tensor]) -> None:
    """Put back gates saved by :func:`apply_head_mask` or :func:`gates`."""
    layers = attention_layers(model)
    if len(saved) != len(layers):
        raise ValueError(f"saved gates are for {len(saved)} layers; the model has {len(layers)}")
    for i, (a, g) in enumerate(zip(layers, saved)):
        if a.head_gate.shape != g.shape:
            raise ValueError(f"layer {i} has {a.head_gate.numel()} heads now but {g.numel()} gates were saved: "
                             "heads were removed since; gates cannot be restored")
        a.head_gate.copy_(g)


@contextlib.contextmanager
def masked(model, heads: Mapping[int, list[int]]) -> Iterator:
    """``with masked(model, {0: [1, 3]}): ...`` runs the block with those heads switched off."""
    saved = apply_head_mask(model, heads)
    try:
        yield model
    finally:
        restore_gates(model, saved)
