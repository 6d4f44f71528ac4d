"""Multi-head self-attention built so that heads can be inspected, gated and removed.

Both models in dsopt (the small ``TransformerClassifier`` and our MiniLM) use this one module, so
the pruning chapter works on them through one protocol:

* ``head_gate`` -- a float buffer of shape ``[n_heads]`` (ones) multiplied into each head's context
  vector before the output projection. Set entries to 0 to switch heads off, or call
  ``head_gate.requires_grad_(True)``: after ``backward()``, ``head_gate.grad`` is dL/dgate, the head
  importance score of Michel et al. (2019, "Are Sixteen Heads Really Better than One?").
* ``prune_heads(heads)`` -- structural removal: slices the rows of q/k/v and the columns of o, so a
  pruned model is really smaller and faster. ``pruned_heads`` keeps the ORIGINAL indices removed and
  ``remaining_heads()`` maps current positions back to original indices.
* ``record_attention`` -- when True, the forward stores the softmax probabilities in
  ``last_attention`` ([batch, heads, queries, keys], before dropout) for attention maps and
  entropy plots.

The gated path is plain matmul + softmax, so gating is exact. When nothing needs the probabilities
or the gate, the forward may use PyTorch's fused ``scaled_dot_product_attention`` (same numbers to
~1e-7; set ``use_sdpa = False`` to always take the explicit path).
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from dsopt.util.validation import ParameterError, check_number


def additive_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """[batch, keys] of 1 (keep) / 0 (pad) -> additive [batch, 1, 1, keys] of 0 / dtype-min.

    The most negative finite number, not -inf, so a row whose keys are all padding softmaxes to a
    uniform row instead of NaN (the same convention as BERT); real keys get exactly 0 probability.
    """
    if attention_mask is None:
        return None
    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with separate q, k, v, o projections and per-head gates.

    Args:
        d_model: width of the input and output.
        n_heads: number of heads at construction (>= 1; pruning may later bring it to 0).
        head_dim: width of each head; default ``d_model // n_heads`` (then ``n_heads`` must divide it).
        dropout: dropout on the attention probabilities (training only).
        bias: whether the four projections have biases.
    """

    use_sdpa: bool = True  # class default; set on an instance to force the explicit path

    def __init__(self, d_model: int, n_heads: int, head_dim: int | None = None,
                 dropout: float = 0.0, bias: bool = True):
        super().__init__()
        d_model = check_number("d_model", d_model, low=1, integer=True)
        n_heads = check_number("n_heads", n_heads, low=1, integer=True)
        if head_dim is None:
            if d_model % n_heads:
                raise ParameterError("n_heads", f"n_heads must divide d_model={d_model} when head_dim "
                                                f"is not given; got {n_heads!r}")
            head_dim = d_model // n_heads
        head_dim = check_number("head_dim", head_dim, low=1, integer=True)
        self.dropout = check_number("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, head_dim
        self.n_heads_original = n_heads
        inner = n_heads * head_dim
        self.q = nn.Linear(d_model, inner, bias=bias)
        self.k = nn.Linear(d_model, inner, bias=bias)
        self.v = nn.Linear(d_model, inner, bias=bias)
        self.o = nn.Linear(inner, d_model, bias=bias)
        self.attn_dropout = nn.Dropout(self.dropout)
        self.register_buffer("head_gate", torch.ones(n_heads))
        self.pruned_heads: list[int] = []
        self.record_attention = False
        self.keep_attention_graph = False  # with record_attention: keep last_attention in the graph
        self.last_attention: torch.Tensor | None = None

    def remaining_heads(self) -> list[int]:
        """Original index of the head at each current position (pruning keeps the order)."""
        gone = set(self.pruned_heads)
        return [h for h in range(self.n_heads_original) if h not in gone]

    def _fast_path_ok(self) -> bool:
        g = self.head_gate
        # torch.all(...) syncs a GPU once per layer; a cache keyed on the tensor's version would
        # miss edits made through head_gate.data, so correctness wins.
        return (self.use_sdpa and not self.record_attention and not g.requires_grad
                and bool(torch.all(g == 1)))

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: [batch, tokens, d_model]; attention_mask: [batch, tokens] of 1/0 (0 = padding key)."""
        B, T, _ = x.shape
        H, D = self.n_heads, self.head_dim
        if H == 0:  # every head removed: the block adds only o's bias
            if self.record_attention:
                self.last_attention = x.new_zeros(B, 0, T, T)
            return self.o(x.new_zeros(B, T, 0))
        q = self.q(x).view(B, T, H, D).transpose(1, 2)  # [B, H, T, D]
        k = self.k(x).view(B, T, H, D).transpose(1, 2)
        v = self.v(x).view(B, T, H, D).transpose(1, 2)
        mask = additive_mask(attention_mask, q.dtype)
        if self._fast_path_ok():
            ctx = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        else:
            scores = (q @ k.transpose(-2, -1)) * D ** -0.5  # [B, H, T, T]
            if mask is not None:
                scores = scores + mask
            probs = scores.softmax(dim=-1)
            if self.record_attention:
                self.last_attention = probs if self.keep_attention_graph else probs.detach()
            ctx = self.attn_dropout(probs) @ v
            ctx = ctx * self.head_gate.to(ctx.dtype).view(1, H, 1, 1)
        return self.o(ctx.transpose(1, 2).reshape(B, T, H * D))

    @torch.no_grad()
    def prune_heads(self, heads: Iterable[int]) -> list[int]:
        """Remove heads given by their ORIGINAL indices; return the original indices removed now.

        Indices already pruned are ignored (so calls are idempotent, as in HF transformers).
        The projections keep their modules but get new, smaller Parameters: rebuild any optimizer
        that held the old ones. The gate values of the surviving heads are kept.
        """
        heads = [check_number("heads", h.item() if isinstance(h, torch.Tensor) else h, low=0,
                              high=self.n_heads_original - 1, integer=True) for h in heads]
        drop = set(heads) - set(self.pruned_heads)
        if not drop:
            return []
        keep_pos = [p for p, h in enumerate(self.remaining_heads()) if h not in drop]
        D = self.head_dim
        rows = torch.tensor([p * D + i for p in keep_pos for i in range(D)], dtype=torch.long,
                            device=self.q.weight.device)
        for lin in (self.q, self.k, self.v):
            lin.weight = nn.Parameter(lin.weight[rows].clone(), lin.weight.requires_grad)
            if lin.bias is not None:
                lin.bias = nn.Parameter(lin.bias[rows].clone(), lin.bias.requires_grad)
            lin.out_features = len(keep_pos) * D
        self.o.weight = nn.Parameter(self.o.weight[:, rows].clone(), self.o.weight.requires_grad)
        self.o.in_features = len(keep_pos) * D
        gate = self.head_gate
        self.head_gate = gate.detach()[keep_pos].clone().requires_grad_(gate.requires_grad)
        self.n_heads = len(keep_pos)
        self.pruned_heads = sorted(set(self.pruned_heads) | drop)
        return sorted(drop)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, head_dim={self.head_dim}, "
                f"pruned_heads={self.pruned_heads}")
