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

from dsopt.util.lazy import lazy_exports

#: name -> module that defines it, imported on first access (PEP 562): ``dsopt data list`` and the
#: preflight of ``dsopt run`` use the registry and the cache without paying for numpy or the parsers.
_EXPORTS = {
    **dict.fromkeys(["CORRUPT", "MISSING", "OK", "FileStatus", "data_dir", "dataset_path", "verify"], "cache"),
    **dict.fromkeys(["Dataset", "load"], "dataset"),
    **dict.fromkeys(["fetch", "require"], "download"),
    **dict.fromkeys(["ChecksumMismatchError", "CorruptFileError", "DataError", "DataUnavailableError"], "errors"),
    **dict.fromkeys(["DATASETS", "DatasetInfo", "FileSpec", "get_info", "names"], "registry"),
    **dict.fromkeys(["Splits", "load_splits"], "splits"),
}


def list_datasets():
    """Registry entries of every dataset, in registry order."""
    from dsopt.data.registry import DATASETS

    return list(DATASETS.values())


__all__ = [*_EXPORTS, "list_datasets"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
