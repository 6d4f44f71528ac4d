"""A cost model: parameters and multiply-add FLOPs of a forward pass, before and after pruning.

FLOPs count 2 per multiply-add, for ``batch_size`` sequences of ``length`` tokens (no padding):

* attention, per layer with h heads of width d_h in a model of width d:
  Q, K, V and O projections ``4 * 2*B*T*d*(h*d_h)``; scores Q K^T ``2*B*h*T*T*d_h``; weights x V
  ``2*B*h*T*T*d_h``;
* the rest of each block (the FFN): ``2*B*T*in*out`` for every other Linear in the block;
* the classifier head (``model.head``): ``2*B*in*out`` (once per sequence).

Left out, and small at these sizes: embedding lookups (no multiply-adds), biases, LayerNorm, softmax,
GELU, pooling. Parameters are counted exactly from the tensors (embeddings included, and reported
apart because they cost no FLOPs). ``prune=`` prices a head set without building the pruned model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

from torch import nn

from dsopt.pruning.heads import attention_layers, check_head_set
from dsopt.util.validation import check_number


@dataclass(frozen=True)
class Cost:
    """Cost of one forward pass of ``batch_size`` x ``length`` tokens."""

    batch_size: int
    length: int
    heads: int                   # heads left in the model
    params: int                  # all parameters
    embedding_params: int        # nn.Embedding tables (no FLOPs)
    attention_params: int        # Q, K, V, O weights and biases
    attention_proj_flops: int    # Q, K, V, O projections
    attention_score_flops: int   # Q K^T and weights x V
    ffn_flops: int               # the other Linears of each block
    head_flops: int              # classifier head

    @property
    def attention_flops(self) -> int:
        return self.attention_proj_flops + self.attention_score_flops

    @property
    def total_flops(self) -> int:
        """Whole-model FLOPs (embeddings excluded, see the module doc)."""
        return self.attention_flops + self.ffn_flops + self.head_flops

    def as_dict(self) -> dict:
        return {**asdict(self), "attention_flops": self.attention_flops, "total_flops": self.total_flops}


def _parents(model: nn.Module) -> dict[int, nn.Module]:
    """id(attention module) -> the block that holds it as a direct child."""
    out = {}
    for m in model.modules():
        for child in m.children():
            out.setdefault(id(child), m)
    return out


def model_cost(model: nn.Module, batch_size: int, length: int, *, prune: Mapping[int, list[int]] | None = None) -> Cost:
    """Cost of ``model`` (as it is now, or as if ``prune`` were also removed) at ``batch_size`` x ``length``."""
    B = check_number("batch_size", batch_size, low=1, integer=True)
    T = check_number("length", length, low=1, integer=True)
    prune = check_head_set(model, prune or {})
    layers = attention_layers(model)
    parents = _parents(model)
    heads = proj = score = ffn = attn_params = attn_params_now = 0
    for i, a in enumerate(layers):
        h = len(set(a.remaining_heads()) - set(prune.get(i, [])))
        inner, d, bias = h * a.head_dim, a.d_model, a.q.bias is not None
        heads += h
        proj += 4 * 2 * B * T * d * inner
        score += 2 * 2 * B * h * T * T * a.head_dim
        attn_params += 4 * d * inner + (3 * inner + d if bias else 0)
        attn_params_now += sum(p.numel() for p in a.parameters())
        block = parents[id(a)]
        attn_linears = {id(m) for m in a.modules()}
        ffn += sum(2 * B * T * m.in_features * m.out_features for m in block.modules()
                   if isinstance(m, nn.Linear) and id(m) not in attn_linears)
    head = getattr(model, "head", None)
    head_flops = sum(2 * B * m.in_features * m.out_features for m in head.modules()
                     if isinstance(m, nn.Linear)) if isinstance(head, nn.Module) else 0
    params = sum(p.numel() for p in model.parameters()) - attn_params_now + attn_params
    emb = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters())
    return Cost(B, T, heads, params, emb, attn_params, proj, score, ffn, head_flops)


def reduction(before: Cost, after: Cost) -> dict[str, float]:
    """Fractions removed (0.25 = 25 % less) for params, attention FLOPs and whole-model FLOPs."""
    def cut(a, b):
        return 1.0 - b / a if a else 0.0
    return {
        "params": cut(before.params, after.params),
        "non_embedding_params": cut(before.params - before.embedding_params, after.params - after.embedding_params),
        "attention_flops": cut(before.attention_flops, after.attention_flops),
        "total_flops": cut(before.total_flops, after.total_flops),
    }
