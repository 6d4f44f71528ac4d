"""The article's pruning rule, exactly as written, and what it computes.

The recipe: per "head", keep-mask = ``attention_weights.mean(dim=-1) > 0.1``, multiplied into the
attention weights. Softmax rows sum to 1, so the mean over the last axis (the keys) of every row is
exactly ``1 / L`` (L = number of key positions, padding included) for every head, example and query.
The "score" carries no information about the head: the mask is all ones when ``L < 10`` and all zeros
when ``L > 10`` (at ``L = 10`` the comparison is decided by rounding). Its shape is
``[batch, heads, queries]``: rows, not heads; and as a multiplication it removes no computation.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch

from dsopt.pruning.heads import attention_layers
from dsopt.util.validation import check_number


def article_statistic(probs: torch.Tensor) -> torch.Tensor:
    """The article's per-"head" score: attention weights [..., queries, keys] averaged over keys."""
    return probs.mean(dim=-1)


def article_keep_mask(probs: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """The article's keep-mask, literally: ``probs.mean(-1) > threshold`` ([batch, heads, queries])."""
    return article_statistic(probs) > threshold


def apply_article_rule(probs: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """The article's recipe on attention weights: the keep-mask multiplied into them."""
    return probs * article_keep_mask(probs, threshold)[..., None].to(probs.dtype)


def rule_keeps(length: int, threshold: float = 0.1) -> bool:
    """What the rule decides for a row of ``length`` keys, analytically: ``1 / length > threshold``."""
    length = check_number("length", length, low=1, integer=True)
    return 1.0 / length > threshold


@dataclass
class RuleLog:
    """Rows the literal rule saw and kept while :func:`article_rule` was active."""

    rows_seen: int = 0
    rows_kept: int = 0

    @property
    def kept_fraction(self) -> float:
        return self.rows_kept / self.rows_seen if self.rows_seen else float("nan")


@contextlib.contextmanager
def article_rule(model, threshold: float = 0.1) -> Iterator[RuleLog]:
    """Run ``model`` with the article's rule inside every attention layer, literally.

    Each attention layer computes its softmax weights, multiplies the keep-mask into them (as the
    article writes it) and continues; gates still apply. Yields a :class:`RuleLog`. The from-scratch
    attention below is the textbook one of :class:`~dsopt.models.MultiHeadSelfAttention` (tests check
    that with a threshold keeping every row it gives the model's own output).
    """
    threshold = float(check_number("threshold", threshold, low=0.0, high=1.0))
    log = RuleLog()
    layers = attention_layers(model)
    for a in layers:
        a.forward = _literal_forward(a, threshold, log)
    try:
        yield log
    finally:
        for a in layers:
            del a.forward  # back to the class's forward


def _literal_forward(attn, threshold: float, log: RuleLog):
    from dsopt.models import additive_mask

    def forward(x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        H, D = attn.n_heads, attn.head_dim
        if H == 0:
            return attn.o(x.new_zeros(B, T, 0))
        q, k, v = (lin(x).view(B, T, H, D).transpose(1, 2) for lin in (attn.q, attn.k, attn.v))
        scores = (q @ k.transpose(-2, -1)) * D ** -0.5
        mask = additive_mask(attention_mask, scores.dtype)
        if mask is not None:
            scores = scores + mask
        probs = scores.softmax(dim=-1)
        keep = article_keep_mask(probs, threshold)
        log.rows_seen += keep.numel()
        log.rows_kept += int(keep.sum())
        probs = probs * keep[..., None].to(probs.dtype)  # "multiplied into the attention weights"
        ctx = (attn.attn_dropout(probs) @ v) * attn.head_gate.to(v.dtype).view(1, H, 1, 1)
        return attn.o(ctx.transpose(1, 2).reshape(B, T, H * D))

    return forward


def rule_on_random_attention(lengths, threshold: float = 0.1, *, batch: int = 2, heads: int = 4,
                             seed: int = 0) -> list[dict]:
    """The statistic and the rule on softmax rows of random scores, one entry per length L.

    Each entry: ``deviation`` = max |row mean - 1/L| over every row, ``keeps`` = fraction of rows
    the rule keeps, ``one_over_L_above`` = 1/L > threshold (what the rule reduces to).
    """
    g = torch.Generator().manual_seed(seed)
    out = []
    for L in lengths:
        L = check_number("lengths", L, low=1, integer=True)
        probs = (3.0 * torch.randn(batch, heads, L, L, generator=g)).softmax(-1)
        stat = article_statistic(probs)
        out.append({"length": L, "deviation": float((stat - 1.0 / L).abs().max()),
                    "keeps": float(article_keep_mask(probs, threshold).float().mean()),
                    "one_over_L_above": rule_keeps(L, threshold), "mask_shape": list(stat.shape)})
    return out


@torch.no_grad()
def row_means_on_batches(model, batches) -> list[dict]:
    """The statistic on a model's real attention maps, per batch: min and max over every layer, head
    and row, next to 1/L (L = the batch's padded length), and the keep-mask's shape."""
    from dsopt.core.device import move_to
    from dsopt.core.modes import eval_mode
    from dsopt.core.trainer import call_model

    layers = attention_layers(model)
    saved = [a.record_attention for a in layers]
    dev = next(model.parameters()).device
    out = []
    try:
        for a in layers:
            a.record_attention = True
        with eval_mode(model):
            for inputs, _ in batches:
                call_model(model, move_to(inputs, dev))
                stats = [article_statistic(a.last_attention) for a in layers if a.n_heads]
                L = layers[0].last_attention.shape[-1]
                lo = min(float(s.min()) for s in stats)
                hi = max(float(s.max()) for s in stats)
                out.append({"length": L, "min": lo, "max": hi, "deviation": max(hi - 1 / L, 1 / L - lo),
                            "rows": sum(s.numel() for s in stats), "mask_shape": list(stats[0].shape)})
    finally:
        for a, s in zip(layers, saved):
            a.record_attention = s
            a.last_attention = None
    return out
