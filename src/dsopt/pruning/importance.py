"""Head importance: a [layers, heads] score per head (higher = more important), by five methods.

* ``gradient`` -- Michel, Levy & Neubig (2019): I_h = E|dL/dgate_h|, the loss's sensitivity to
  switching head h off, read from the gate gradient. As in the authors' code the absolute value is
  taken per batch (with batches of one example it is exactly the per-example expectation).
* ``entropy`` -- minus the mean entropy (nats) of the head's attention rows: diffuse heads rank low.
* ``confidence`` -- Voita et al. (2019): mean over tokens of the head's largest attention weight.
* ``random`` -- a seeded uniform baseline every real method must beat.
* ``article`` -- the article's statistic, attention weights averaged over the last axis, averaged
  over rows: exactly 1/L for every head (see :mod:`dsopt.pruning.article`), so it ranks nothing.

Scores are on the grid of ORIGINAL head indices; heads already removed are NaN. Rows of padding
queries are left out of every average (their weights mean nothing); padding keys get weight 0.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from dsopt.core.device import move_to
from dsopt.core.modes import eval_mode
from dsopt.core.trainer import call_model
from dsopt.pruning.article import article_statistic
from dsopt.pruning.heads import attention_layers, grid_shape, removed_on_grid, to_grid
from dsopt.util.validation import ParameterError, check_choice, check_number

METHODS = ("gradient", "entropy", "confidence", "random", "article")


def head_importance(model, method: str, batches: Iterable | None = None, *, seed: int = 0,
                    loss_fn: Callable = F.cross_entropy) -> torch.Tensor:
    """Importance of every head of ``model`` by ``method`` ([layers, heads], float64, NaN = removed).

    ``batches``: ``(inputs, targets)`` pairs as the loaders give them (not needed for ``random``).
    """
    check_choice("method", method, METHODS)
    if method == "random":
        return random_importance(model, seed)
    if batches is None:
        raise ParameterError("batches", f"method {method!r} needs batches of (inputs, targets)")
    if method == "gradient":
        return gradient_importance(model, batches, loss_fn)
    return attention_statistics(model, batches)[method]


def random_importance(model, seed: int = 0) -> torch.Tensor:
    """Uniform random scores from ``torch.Generator().manual_seed(seed)`` (no global RNG touched)."""
    seed = check_number("seed", seed, low=0, integer=True)
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(grid_shape(model), generator=g, dtype=torch.float64)
    scores[removed_on_grid(model)] = float("nan")
    return scores


def _device(model) -> torch.device:
    return next(model.parameters()).device


def gradient_importance(model, batches: Iterable, loss_fn: Callable = F.cross_entropy) -> torch.Tensor:
    """Michel et al.'s I_h = E|dL/dgate_h| at gates = 1, averaged over batches weighted by size.

    Parameters are frozen meanwhile (only the gates need gradients: cheaper) and everything is
    restored afterwards, including ``requires_grad`` flags and the gates' ``.grad``.
    """
    layers = attention_layers(model)
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    gate_flags = [a.head_gate.requires_grad for a in layers]
    live = [a for a in layers if a.n_heads]
    total = [torch.zeros(a.n_heads, dtype=torch.float64) for a in layers]
    n = 0
    dev = _device(model)
    try:
        for p in params:
            p.requires_grad_(False)
        for a in live:
            a.head_gate.requires_grad_(True)
        with eval_mode(model):
            for inputs, targets in batches:
                inputs, targets = move_to(inputs, dev), move_to(targets, dev)
                loss = loss_fn(call_model(model, inputs), targets)
                grads = torch.autograd.grad(loss, [a.head_gate for a in live])
                b = int(targets.shape[0])
                for a, g in zip(live, grads):
                    total[layers.index(a)] += g.detach().abs().to("cpu", torch.float64) * b
                n += b
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
        for a, f in zip(layers, gate_flags):
            a.head_gate.requires_grad_(f)
            a.head_gate.grad = None
    if n == 0:
        raise ParameterError("batches", "batches is empty")
    return to_grid(model, [t / n for t in total])


@torch.no_grad()
def attention_statistics(model, batches: Iterable) -> dict[str, torch.Tensor]:
    """One recorded pass: ``entropy`` (minus mean row entropy), ``confidence`` (mean row max) and
    ``article`` (mean of the article's statistic) per head, each on the [layers, heads] grid."""
    layers = attention_layers(model)
    sums = {k: [torch.zeros(a.n_heads, dtype=torch.float64) for a in layers]
            for k in ("entropy", "confidence", "article")}
    rows = 0.0
    dev = _device(model)
    saved = [a.record_attention for a in layers]
    try:
        for a in layers:
            a.record_attention = True
        with eval_mode(model):
            for inputs, _ in batches:
                inputs = move_to(inputs, dev)
                call_model(model, inputs)
                w = None
                for i, a in enumerate(layers):
                    p = a.last_attention  # [B, H, Q, K]
                    if p.shape[1] == 0:
                        continue
                    if w is None:
                        w = _query_weights(inputs, p)  # [B, 1, Q]
                    per_row = {
                        "entropy": -torch.special.xlogy(p, p).sum(-1),
                        "confidence": p.amax(-1),
                        "article": article_statistic(p),
                    }
                    for k, v in per_row.items():
                        sums[k][i] += (v * w).sum(dim=(0, 2)).to("cpu", torch.float64)
                if w is None:  # every head of every layer removed
                    continue
                rows += float(w.sum())
    finally:
        for a, s in zip(layers, saved):
            a.record_attention = s
            a.last_attention = None
    if rows == 0:
        raise ParameterError("batches", "batches is empty (or every head was removed)")
    out = {k: to_grid(model, [s / rows for s in v]) for k, v in sums.items()}
    out["entropy"] = -out["entropy"]
    return out


def _query_weights(inputs, probs: torch.Tensor) -> torch.Tensor:
    """[B, 1, Q] weights: 1 for real query tokens, 0 for padding (all ones without a mask)."""
    mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None
    B, _, Q, _ = probs.shape
    if mask is None:
        return probs.new_ones(B, 1, Q)
    return mask[:, None, :].to(probs.dtype)
