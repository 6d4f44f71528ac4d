"""Models for dsopt: a small transformer and our own all-MiniLM-L6-v2 sharing one gated attention, and a tabular MLP.

``attention_layers()`` on every model lists its :class:`MultiHeadSelfAttention` modules, each with
``head_gate``, ``prune_heads``, ``remaining_heads()`` and ``record_attention``.
"""
from dsopt.models.attention import MultiHeadSelfAttention, additive_mask
from dsopt.models.encoder import TransformerClassifier, digits_to_patches, pool
from dsopt.models.minilm import MiniLMClassifier, MiniLMEncoder, hf_to_ours, load_minilm, minilm_embed
from dsopt.models.mlp import TabularMLP
from dsopt.models.tokenize import digits_loader, encode_texts, load_minilm_tokenizer, minilm_path, text_loader

__all__ = [
    "MultiHeadSelfAttention", "additive_mask", "TransformerClassifier", "digits_to_patches", "pool",
    "MiniLMEncoder", "MiniLMClassifier", "load_minilm", "minilm_embed", "hf_to_ours",
    "load_minilm_tokenizer", "encode_texts", "text_loader", "digits_loader", "minilm_path", "TabularMLP",
]
