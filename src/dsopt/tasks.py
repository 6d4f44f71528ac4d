"""Ready-made training tasks on real data: loaders plus a model factory, at three scales.

A chapter asks for ``make_task("financial_phrasebank", scale="workshop", seed=1)`` and gets the
deterministic split (the split never depends on the seed, so seeds vary only the initialisation
and the batch order), seeded loaders and a function building a fresh model. Scales:
``tiny`` (tests: seconds), ``workshop`` (2 CPU cores: an epoch in about a second or two),
``full`` (bigger model and data, meant for a GPU).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from .validation import check_choice

TASKS = ("digits", "financial_phrasebank", "sms_spam_collection")
SCALES = ("tiny", "workshop", "full")

# Model sizes per scale (the small transformer of dsopt.models).
_MODEL = {
    "tiny": dict(d_model=32, n_layers=1, n_heads=2, d_ff=64),
    "workshop": dict(d_model=64, n_layers=2, n_heads=4, d_ff=128),
    "full": dict(d_model=128, n_layers=4, n_heads=8, d_ff=256),
}
_MAX_LEN = {"tiny": 32, "workshop": 48, "full": 64}
_TINY_TRAIN = 240  # training examples kept at scale "tiny"


@dataclass
class Task:
    """Loaders, class names and a factory for a freshly initialised model."""

    name: str
    scale: str
    class_names: list[str]
    train_loader: DataLoader
    val_loader: DataLoader
    test_loader: DataLoader
    make_model: Callable[[], torch.nn.Module]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_size(self) -> int:
        return len(self.train_loader.dataset)


def make_task(name: str, *, scale: str = "workshop", seed: int = 0, batch_size: int | None = None) -> Task:
    """Build task ``name`` at ``scale``; ``seed`` seeds the shuffling generator and the model init.

    ``make_model()`` seeds torch with ``seed`` itself, so the same seed always gives the same
    initial weights regardless of what ran before.
    """
    from .data import load_splits
    from .models import TransformerClassifier, digits_loader, load_minilm_tokenizer, text_loader

    check_choice("task", name, TASKS)
    check_choice("scale", scale, SCALES)
    splits = load_splits(name)
    train = splits.train
    keep = _subsample(train.y, _TINY_TRAIN) if scale == "tiny" else None
    size = _MODEL[scale]
    if name == "digits":
        bs = batch_size or 64
        X = train.X if keep is None else train.X[keep]
        y = train.y if keep is None else train.y[keep]
        loaders = (
            digits_loader(X, y, bs, shuffle=True, seed=seed),
            digits_loader(splits.val.X, splits.val.y, 256),
            digits_loader(splits.test.X, splits.test.y, 256),
        )
        model_kw = dict(patch_dim=4, n_tokens_max=16)
    else:
        bs = batch_size or 32
        tok = load_minilm_tokenizer()
        texts = train.texts if keep is None else [train.texts[i] for i in keep]
        y = train.y if keep is None else train.y[keep]
        max_len = _MAX_LEN[scale]
        loaders = (
            text_loader(texts, y, tok, bs, shuffle=True, seed=seed, max_length=max_len),
            text_loader(splits.val.texts, splits.val.y, tok, 256, max_length=max_len),
            text_loader(splits.test.texts, splits.test.y, tok, 256, max_length=max_len),
        )
        vocab = compact_vocab(loaders[0].dataset.tensors[0], tok)
        for loader in loaders:
            _remap_ids(loader, vocab)
        model_kw = dict(vocab_size=int(vocab.max()) + 1, n_tokens_max=max_len)
    n_classes = len(train.class_names)

    def make_model() -> torch.nn.Module:
        torch.manual_seed(seed)
        return TransformerClassifier(n_classes=n_classes, **model_kw, **size)

    return Task(name, scale, list(train.class_names), *loaders, make_model)


def _subsample(y: np.ndarray, n: int) -> np.ndarray:
    """First ``n`` indices of a fixed stratified order (deterministic, seed-independent)."""
    from sklearn.model_selection import train_test_split

    if len(y) <= n:
        return np.arange(len(y))
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=0)
    return np.sort(idx)


def compact_vocab(train_ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """Map WordPiece ids to a vocabulary of the ids seen in training (plus pad and [UNK]).

    Financial PhraseBank's training split uses ~4,800 of the 30,522 WordPiece ids; an embedding
    over all of them makes every AdamW step update ~2M unused parameters (40 % of a step's time at
    workshop scale). Returns a [30,522] LongTensor: new id per old id; unseen ids map to [UNK].
    """
    pad, unk = tokenizer.pad_token_id, tokenizer.unk_token_id
    seen = torch.unique(train_ids)
    seen = seen[(seen != pad) & (seen != unk)]
    table = torch.full((tokenizer.vocab_size,), 1, dtype=torch.long)  # 1 = [UNK]
    table[pad] = 0
    table[seen] = torch.arange(2, 2 + len(seen))
    return table


def _remap_ids(loader: DataLoader, table: torch.Tensor) -> None:
    """Rewrite the token ids of a tokenized TensorDataset through ``table`` (in place, once)."""
    ds = loader.dataset
    ds.tensors = (table[ds.tensors[0]],) + tuple(ds.tensors[1:])
