"""Tabular data for small MLPs: train-only standardisation and tensor loaders (the MLP is dsopt.models.mlp).

Used by the ``credit_card_default`` task (chapter 04). Standardisation statistics come from the
training split only and are then applied unchanged to validation and test, so nothing about the
held-out rows leaks into training.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from dsopt.util.validation import ParameterError, check_number

__all__ = ["Standardizer", "tabular_loader"]


class Standardizer:
    """``(X - mean_) / scale_`` per column, fitted on training rows (sklearn's StandardScaler, minus sklearn).

    A constant column gets ``scale_ = 1`` (it becomes all zeros instead of NaN).
    """

    def fit(self, X) -> "Standardizer":
        X = _as_matrix(X)
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        return self

    def transform(self, X) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise RuntimeError("Standardizer.transform called before fit")
        X = _as_matrix(X)
        if X.shape[1] != self.mean_.size:
            raise ParameterError("X", f"X must have {self.mean_.size} columns (as in fit); got {X.shape[1]}")
        return ((X - self.mean_) / self.scale_).astype(np.float32)


def _as_matrix(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or not np.all(np.isfinite(X)):
        raise ParameterError("X", f"X must be a non-empty 2-D array of finite numbers; got shape {X.shape}")
    return X


def tabular_loader(X, y, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """DataLoader of ``(float32 [B, F], int64 [B])`` batches; shuffling uses a generator seeded with ``seed``."""
    batch_size = check_number("batch_size", batch_size, low=1, integer=True)
    ds = TensorDataset(torch.as_tensor(np.asarray(X, dtype=np.float32)), torch.as_tensor(np.asarray(y)).long())
    gen = torch.Generator().manual_seed(int(seed)) if shuffle else None
    return DataLoader(ds, batch_size=batch_size, shuffle=bool(shuffle), generator=gen)
