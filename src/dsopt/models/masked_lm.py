"""Masked-language-model pre-training for the small transformer (BERT's objective, at laptop size).

:class:`MaskedLM` is :class:`~dsopt.models.encoder.TransformerClassifier`'s encoder (the same module
names: ``embed``, ``pos``, ``blocks``, ``ln_f``) with BERT's MLM head -- dense + GELU + LayerNorm and a
decoder tied to the token embedding. Its logits are computed only at the masked positions (what
efficient BERT implementations do: the vocabulary projection is the largest matmul). After
pre-training, :func:`transfer_encoder` copies the encoder into a classifier for fine-tuning.
:func:`mask_tokens` is BERT's corruption: 15 % of the real tokens are chosen; of those 80 % become
[MASK], 10 % a random token, 10 % stay.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dsopt.models.encoder import Block, TransformerClassifier
from dsopt.util.validation import check_number

IGNORE = -100  # label of positions that are not predicted (F.cross_entropy's ignore_index)


class MaskedLM(nn.Module):
    """Transformer encoder + MLM head over a vocabulary of ``vocab_size`` token ids.

    ``forward(input_ids, attention_mask=None, masked=None)``: with ``masked`` (bool [batch, tokens]) the
    logits of the masked positions only, [n_masked, vocab_size], in row-major order (the order of
    ``labels[masked]``); without it, logits for every position [batch, tokens, vocab_size].
    """

    def __init__(self, *, vocab_size: int, n_tokens_max: int = 128, d_model: int = 64, n_layers: int = 2,
                 n_heads: int = 4, d_ff: int = 128, dropout: float = 0.1):
        super().__init__()
        self.vocab_size = check_number("vocab_size", vocab_size, low=2, integer=True)
        self.n_tokens_max = check_number("n_tokens_max", n_tokens_max, low=1, integer=True)
        check_number("n_layers", n_layers, low=1, integer=True)
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(n_tokens_max, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.mlm_dense = nn.Linear(d_model, d_model)
        self.mlm_ln = nn.LayerNorm(d_model)
        self.mlm_bias = nn.Parameter(torch.zeros(vocab_size))
        self.apply(TransformerClassifier._init)
        self.config = dict(vocab_size=vocab_size, n_tokens_max=n_tokens_max, d_model=d_model, n_layers=n_layers,
                           n_heads=n_heads, d_ff=d_ff, dropout=dropout)

    def attention_layers(self):
        return [b.attn for b in self.blocks]

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[batch, tokens] ids -> [batch, tokens, d_model] hidden states (after the final LayerNorm)."""
        T = input_ids.shape[1]
        if T > self.n_tokens_max:
            raise ValueError(f"{T} tokens exceed n_tokens_max={self.n_tokens_max}")
        x = self.drop(self.embed(input_ids) + self.pos(torch.arange(T, device=input_ids.device)))
        for block in self.blocks:
            x = block(x, attention_mask)
        return self.ln_f(x)

    def forward(self, input_ids, attention_mask=None, masked=None) -> torch.Tensor:
        h = self.encode(input_ids, attention_mask)
        if masked is not None:
            h = h[masked]
        h = self.mlm_ln(F.gelu(self.mlm_dense(h)))
        return F.linear(h, self.embed.weight, self.mlm_bias)  # decoder tied to the input embedding (BERT)


def transfer_encoder(mlm: MaskedLM, classifier: TransformerClassifier) -> TransformerClassifier:
    """Copy the pre-trained encoder (embeddings, blocks, final LayerNorm) into ``classifier``; its head stays
    fresh. The two must have the same sizes; anything else missing or left over is an error."""
    enc = {k: v for k, v in mlm.state_dict().items() if not k.startswith("mlm_")}
    missing, unexpected = classifier.load_state_dict(enc, strict=False)
    missing = [k for k in missing if not k.startswith("head.") and not k.endswith("head_gate")]
    if missing or unexpected:
        raise ValueError(f"encoder transfer mismatch: missing={missing}, unexpected={unexpected}")
    return classifier


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, *, mask_id: int, vocab_size: int,
                special_ids: tuple[int, ...] = (), generator: torch.Generator | None = None,
                probability: float = 0.15, first_random_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption. Returns ``(corrupted ids, labels)``; labels are the original ids at the chosen
    positions and :data:`IGNORE` elsewhere. Padding and ``special_ids`` ([CLS], [SEP]) are never chosen;
    every row with a real token gets at least one, so no batch is empty. Random replacements are drawn from
    ``[first_random_id, vocab_size)`` (skip the special ids at the start of a compact vocabulary).
    """
    probability = float(check_number("probability", probability, low=0.0, high=1.0, low_inclusive=False))
    g = generator
    eligible = attention_mask.bool()
    for s in special_ids:
        eligible &= input_ids != s
    u = torch.rand(input_ids.shape, generator=g)
    chosen = eligible & (u < probability)
    # rows with nothing chosen get their eligible position of smallest u
    empty = ~chosen.any(1) & eligible.any(1)
    if empty.any():
        best = u.masked_fill(~eligible, 2.0).argmin(1)
        chosen[empty, best[empty]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    action = torch.rand(input_ids.shape, generator=g)
    random_ids = torch.randint(first_random_id, vocab_size, input_ids.shape, generator=g)
    out = input_ids.clone()
    out[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    out[swap] = random_ids[swap]
    return out, labels
