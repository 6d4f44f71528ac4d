"""Ready-made training tasks on real data: loaders plus a model factory, at three scales.

A chapter asks for ``make_task("financial_phrasebank", scale="workshop", seed=1)`` and gets the
deterministic split (the split never depends on the seed, so seeds vary only the initialisation
and the batch order), seeded loaders and a function building a fresh model. Scales:
``tiny`` (tests: seconds), ``workshop`` (2 CPU cores: an epoch in about a second or two),
``full`` (bigger model and data, meant for a GPU).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from dsopt.util.validation import check_choice

TASKS = ("digits", "financial_phrasebank", "sms_spam_collection", "credit_card_default")
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
    #: What was done to the data: ``class_counts`` of the train split actually used, and for an
    #: ``imbalance_ratio`` the natural and achieved ratios (see :func:`_imbalance`).
    meta: dict = field(default_factory=dict)

    @property
    def class_counts(self) -> list[int]:
        """Training examples per class (after any subsampling), for class-weighted losses."""
        return list(self.meta["class_counts"])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_size(self) -> int:
        return len(self.train_loader.dataset)


def make_task(name: str, *, scale: str = "workshop", seed: int = 0, batch_size: int | None = None,
              imbalance_ratio: float | None = None) -> Task:
    """Build task ``name`` at ``scale``; ``seed`` seeds the shuffling generator and the model init.

    ``make_model()`` seeds torch with ``seed`` itself, so the same seed always gives the same
    initial weights regardless of what ran before.

    ``imbalance_ratio`` (binary tasks): subsample the minority class (label 1) of the TRAIN split to
    ``majority : minority = imbalance_ratio : 1`` with a fixed seed independent of ``seed``, so every
    run seed sees the same subsample; validation and test keep the natural ratio.
    """
    from dsopt.data import load_splits
    from dsopt.models import TransformerClassifier, digits_loader, load_minilm_tokenizer, text_loader

    check_choice("task", name, TASKS)
    check_choice("scale", scale, SCALES)
    splits = load_splits(name)
    train = splits.train
    keep = stratified_subset(train.y, _TINY_TRAIN) if scale == "tiny" else None
    keep, meta = _imbalance(name, train.y, len(train.class_names), keep, imbalance_ratio)
    if name == "credit_card_default":
        return _credit_task(splits, scale, seed, batch_size, keep, meta)
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

    return Task(name, scale, list(train.class_names), *loaders, make_model, meta=meta)


def stratified_subset(y: np.ndarray, n: int) -> np.ndarray:
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


# -- chapter 04: imbalance knob and the credit-default task ---------------------------------------
_IMBALANCE_SEED = 0  # fixed: the subsample never depends on the run seed
_MLP = {"tiny": (16,), "workshop": (64, 64), "full": (256, 256)}


def _imbalance(name: str, y: np.ndarray, n_classes: int, keep: np.ndarray | None,
               ratio: float | None) -> tuple[np.ndarray | None, dict]:
    """Apply the ``imbalance_ratio`` knob to the train indices ``keep`` (None = all); return (keep, meta).

    Subsampling the minority class is how a fraud-like ratio (e.g. 100:1) is made from a milder
    data set; it happens on the TRAIN split only, with ``_IMBALANCE_SEED``.
    """
    from dsopt.data.imbalance import subsample_minority
    from dsopt.util.validation import ParameterError, check_number

    idx = np.arange(len(y)) if keep is None else np.asarray(keep)
    natural = np.bincount(y[idx], minlength=n_classes)
    meta = {"imbalance_ratio": None, "natural_class_counts": natural.tolist()}
    if ratio is not None:
        ratio = float(check_number("imbalance_ratio", ratio, low=1.0))
        if n_classes != 2:
            raise ParameterError("imbalance_ratio", f"imbalance_ratio needs a binary task (minority = class 1); "
                                                    f"{name} has {n_classes} classes")
        try:
            sub, info = subsample_minority(y[idx], ratio, minority=1, seed=_IMBALANCE_SEED)
        except ParameterError as exc:
            raise ParameterError("imbalance_ratio", f"imbalance_ratio: {exc}") from exc
        idx, keep = idx[sub], idx[sub]
        meta.update(imbalance_ratio=ratio, achieved_ratio=info["ratio"], natural_ratio=info["natural_ratio"],
                    imbalance_seed=_IMBALANCE_SEED)
    meta["class_counts"] = np.bincount(y[idx], minlength=n_classes).tolist()
    return keep, meta


def _credit_task(splits, scale: str, seed: int, batch_size: int | None, keep, meta: dict) -> Task:
    """Default of Credit Card Clients (Taiwan, 2005): 23 standardised features -> default next month (22 %).

    This is credit DEFAULT, not fraud; a fraud-like ratio is made with ``imbalance_ratio``
    (subsampling the defaults of the train split). Features are standardised with the statistics of
    the train split actually used (after any subsampling); val/test are transformed with them.
    Model: an MLP 23 -> 64 -> 64 -> 2 with dropout 0.1 at workshop scale (16 hidden units at tiny,
    256 x 256 at full); batches of 32 (128 at full).
    """
    from dsopt.data.tabular import Standardizer, tabular_loader
    from dsopt.models.mlp import TabularMLP

    train = splits.train
    X, y = (train.X, train.y) if keep is None else (train.X[keep], train.y[keep])
    std = Standardizer().fit(X)
    bs = batch_size or (128 if scale == "full" else 32)  # small batches: more updates per epoch on CPU
    loaders = (
        tabular_loader(std.transform(X), y, bs, shuffle=True, seed=seed),
        tabular_loader(std.transform(splits.val.X), splits.val.y, 1024),
        tabular_loader(std.transform(splits.test.X), splits.test.y, 1024),
    )
    n_features, n_classes, hidden = X.shape[1], len(train.class_names), _MLP[scale]

    def make_model() -> torch.nn.Module:
        torch.manual_seed(seed)
        return TabularMLP(n_features, n_classes, hidden=hidden, dropout=0.1)

    return Task("credit_card_default", scale, list(train.class_names), *loaders, make_model,
                meta={**meta, "feature_names": list(train.feature_names or [])})
