"""A small transformer encoder classifier that trains in seconds on a laptop CPU.

One class covers both course datasets: token ids (Financial PhraseBank through the MiniLM WordPiece
tokenizer) or image patches (scikit-learn's 8x8 digits cut into 2x2 patches). Pre-LN blocks, learned
positions, pooling over non-padding tokens, a linear head. Each block's ``.attn`` is a
:class:`MultiHeadSelfAttention`, listed by ``attention_layers()`` -- the protocol the pruning chapter
uses on this model and on MiniLM alike.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dsopt.models.attention import MultiHeadSelfAttention
from dsopt.util.validation import ParameterError, check_choice, check_number

POOLINGS = ("mean", "max", "cls")


def pool(h: torch.Tensor, attention_mask: torch.Tensor | None, how: str = "mean") -> torch.Tensor:
    """[batch, tokens, d] -> [batch, d]: mean or max over non-pad tokens, or the first ("cls") token."""
    if how == "cls":
        return h[:, 0]
    if attention_mask is None:
        return h.mean(1) if how == "mean" else h.amax(1)
    m = attention_mask.unsqueeze(-1).to(h.dtype)
    if how == "mean":
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)
    return h.masked_fill(m == 0, torch.finfo(h.dtype).min).amax(1)


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + ffn(ln(x))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, n_heads, dropout=dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, attention_mask=None):
        x = x + self.drop(self.attn(self.ln1(x), attention_mask))
        return x + self.drop(self.ffn(self.ln2(x)))


class TransformerClassifier(nn.Module):
    """Transformer encoder + pooling + linear head. Give exactly one of ``vocab_size``/``patch_dim``.

    ``forward(input_ids=None, attention_mask=None, patches=None)`` returns logits [batch, n_classes].
    ``input_ids``: [batch, tokens] LongTensor (with ``vocab_size``); ``patches``: [batch, tokens,
    patch_dim] float (with ``patch_dim``). ``attention_mask`` [batch, tokens] of 1/0 marks padding.
    """

    def __init__(self, *, vocab_size: int | None = None, patch_dim: int | None = None,
                 n_tokens_max: int = 128, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 d_ff: int = 128, n_classes: int, dropout: float = 0.1, pooling: str = "mean"):
        super().__init__()
        if (vocab_size is None) == (patch_dim is None):
            raise ParameterError("vocab_size", "give exactly one of vocab_size (token ids) or "
                                 f"patch_dim (patches); got vocab_size={vocab_size!r}, "
                                 f"patch_dim={patch_dim!r}")
        self.n_tokens_max = check_number("n_tokens_max", n_tokens_max, low=1, integer=True)
        d_model = check_number("d_model", d_model, low=1, integer=True)
        n_layers = check_number("n_layers", n_layers, low=1, integer=True)
        n_heads = check_number("n_heads", n_heads, low=1, high=d_model, integer=True)
        if d_model % n_heads:
            raise ParameterError("n_heads", f"n_heads must divide d_model={d_model}; got {n_heads!r}")
        d_ff = check_number("d_ff", d_ff, low=1, integer=True)
        n_classes = check_number("n_classes", n_classes, low=2, integer=True)
        dropout = check_number("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        self.vocab_size = self.patch_dim = None
        if vocab_size is not None:
            self.vocab_size = check_number("vocab_size", vocab_size, low=1, integer=True)
            self.embed = nn.Embedding(self.vocab_size, d_model)
        else:
            self.patch_dim = check_number("patch_dim", patch_dim, low=1, integer=True)
            self.embed = nn.Linear(self.patch_dim, d_model)
        self.pos = nn.Embedding(self.n_tokens_max, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def attention_layers(self) -> list[MultiHeadSelfAttention]:
        return [b.attn for b in self.blocks]

    def forward(self, input_ids=None, attention_mask=None, patches=None) -> torch.Tensor:
        if isinstance(self.embed, nn.Embedding):
            if input_ids is None:
                raise ValueError("this model was built with vocab_size: pass input_ids")
            x = self.embed(input_ids)
        else:
            if patches is None:
                raise ValueError("this model was built with patch_dim: pass patches")
            x = self.embed(patches)
        T = x.shape[1]
        if T > self.n_tokens_max:
            raise ValueError(f"{T} tokens exceed n_tokens_max={self.n_tokens_max}")
        x = self.drop(x + self.pos(torch.arange(T, device=x.device)))
        for block in self.blocks:
            x = block(x, attention_mask)
        return self.head(pool(self.ln_f(x), attention_mask, self.pooling))


def digits_to_patches(images, patch: int = 2) -> torch.Tensor:
    """8x8 digit images ([N, 8, 8] or [N, 64], values 0..16) -> [N, (8/patch)^2, patch*patch].

    Float32 scaled to [0, 1]; patches in row-major order, pixels row-major inside each patch.
    """
    patch = check_choice("patch", patch, (1, 2, 4, 8))
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    x = x.to(torch.float32).reshape(-1, 8, 8) / 16.0
    n, g = x.shape[0], 8 // patch
    x = x.reshape(n, g, patch, g, patch).permute(0, 1, 3, 2, 4)
    return x.reshape(n, g * g, patch * patch).contiguous()
