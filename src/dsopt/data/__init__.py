"""Real datasets for dsopt: registry, verified download cache, parsers, splits and CLI.

Typical use::

    from dsopt.data import load, load_splits
    ds = load("financial_phrasebank")            # variant "allagree": 2,264 sentences
    splits = load_splits("sms_spam_collection", seed=0)
    splits.train.texts, splits.train.y, splits.train.class_names

Files live in :func:`data_dir` (``$DSOPT_DATA``, else the user cache dir), laid out like the
project's ``shared/data`` folder, and are checked against their published SHA-256 before use.
``DSOPT_OFFLINE=1`` forbids downloads, ``DSOPT_DATA_MIRROR=URL`` replaces the canonical hosts.
``digits`` (scikit-learn's bundled set) needs no file and is the offline default.
"""
from __future__ import annotations

from dsopt.data.cache import CORRUPT, MISSING, OK, FileStatus, data_dir, dataset_path, verify
from dsopt.data.dataset import Dataset, load
from dsopt.data.download import fetch
from dsopt.data.errors import ChecksumMismatchError, CorruptFileError, DataError, DataUnavailableError
from dsopt.data.registry import DATASETS, DatasetInfo, FileSpec, get_info, names
from dsopt.data.splits import Splits, load_splits


def list_datasets() -> list[DatasetInfo]:
    """Registry entries of every dataset, in registry order."""
    return list(DATASETS.values())


__all__ = [
    "CORRUPT", "MISSING", "OK",
    "ChecksumMismatchError", "CorruptFileError", "DataError", "DataUnavailableError",
    "DATASETS", "Dataset", "DatasetInfo", "FileSpec", "FileStatus", "Splits",
    "data_dir", "dataset_path", "fetch", "get_info", "list_datasets", "load", "load_splits",
    "names", "verify",
]
