"""Deterministic, stratified train/val/test splits.

Why fixed and stratified: none of these datasets ships an official labelled test split (except
SST-2's dev set), and with imbalanced classes (SMS 13 % spam, credit 22 % default) a random
split can move the class balance enough to change the metrics. Same ``seed`` -> the same rows
in the same order, on every machine, so results from two notebooks are comparable.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dsopt.data.dataset import Dataset, load
from dsopt.data.registry import get_info
from dsopt.util.validation import ParameterError, check_number


@dataclass
class Splits:
    """Three disjoint parts of one dataset. Each Dataset's ``meta["split"]`` names the part and
    ``meta["indices"]`` holds its row indices into the loaded source (sorted)."""

    train: Dataset
    val: Dataset
    test: Dataset

    def __iter__(self):
        return iter((self.train, self.val, self.test))


def _split(y: np.ndarray, size: float, seed: int, param: str) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of ``arange(len(y))`` into (rest, part of fraction ``size``), both sorted."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    try:
        rest, part = train_test_split(idx, test_size=size, stratify=y, random_state=seed, shuffle=True)
    except ValueError as exc:  # e.g. a part smaller than the number of classes
        raise ParameterError(param, f"{param}={size!r} cannot give a stratified split of {len(y)} rows: {exc}") from exc
    return np.sort(rest), np.sort(part)


def _part(ds: Dataset, idx: np.ndarray, split: str, seed: int) -> Dataset:
    sub = ds.subset(idx)
    return replace(sub, meta={**ds.meta, "split": split, "seed": seed, "indices": idx})


def load_splits(name: str, *, variant: str | None = None, seed: int = 0, val_fraction: float = 0.15,
                test_fraction: float = 0.15) -> Splits:
    """Load ``name`` and split it into stratified train/val/test parts.

    ``test_fraction`` of all rows go to test, then ``val_fraction`` of all rows to val
    (stratified by class each time, ``random_state=seed``). For ``sst2`` the GLUE dev set is the
    test set (GLUE's test labels are hidden) and val is ``val_fraction`` of the train file;
    ``test_fraction`` is then unused and ``variant`` must be ``None``.
    """
    info = get_info(name)
    seed = check_number("seed", seed, low=0, high=2**32 - 1, integer=True)
    val_fraction = check_number("val_fraction", val_fraction, low=0, high=1, low_inclusive=False, high_inclusive=False)
    test_fraction = check_number("test_fraction", test_fraction, low=0, high=1, low_inclusive=False, high_inclusive=False)
    if info.name == "sst2":
        if variant is not None:
            raise ParameterError("variant", "sst2 splits always use train (-> train/val) and dev (-> test); "
                                 f"variant must be None, got {variant!r}")
        train_all = load("sst2", "train")
        rest, val = _split(train_all.y, val_fraction, seed, "val_fraction")
        dev = load("sst2", "dev")
        test = _part(dev, np.arange(len(dev)), "test", seed)
        return Splits(_part(train_all, rest, "train", seed), _part(train_all, val, "val", seed), test)
    if val_fraction + test_fraction >= 1:
        raise ParameterError(
            "val_fraction",
            f"val_fraction + test_fraction must be < 1 so that rows are left for training; "
            f"got {val_fraction!r} + {test_fraction!r} = {val_fraction + test_fraction!r}",
        )
    ds = load(info.name, variant)
    trainval, test = _split(ds.y, test_fraction, seed, "test_fraction")
    # val_fraction is of the whole dataset, so rescale it to the remaining rows.
    rel_val = val_fraction / (1.0 - test_fraction)
    tr_local, val_local = _split(ds.y[trainval], rel_val, seed, "val_fraction")
    return Splits(
        _part(ds, trainval[tr_local], "train", seed),
        _part(ds, trainval[val_local], "val", seed),
        _part(ds, test, "test", seed),
    )
