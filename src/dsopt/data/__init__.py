"""Real datasets for dsopt: registry, verified download cache, parsers and splits (``dsopt data``: dsopt.cli.data).

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

#: name -> module that defines it, imported on first access (PEP 562): ``dsopt data list`` and the
#: preflight of ``dsopt run`` use the registry and the cache without paying for numpy or the parsers.
_EXPORTS = {
    **dict.fromkeys(["CORRUPT", "MISSING", "OK", "FileStatus", "data_dir", "dataset_path", "verify"], "dsopt.data.cache"),
    **dict.fromkeys(["Dataset", "load"], "dsopt.data.dataset"),
    **dict.fromkeys(["fetch", "require"], "dsopt.data.download"),
    **dict.fromkeys(["ChecksumMismatchError", "CorruptFileError", "DataError", "DataUnavailableError"], "dsopt.data.errors"),
    **dict.fromkeys(["DATASETS", "DatasetInfo", "FileSpec", "get_info", "names"], "dsopt.data.registry"),
    **dict.fromkeys(["Splits", "load_splits"], "dsopt.data.splits"),
}


def list_datasets():
    """Registry entries of every dataset, in registry order."""
    from dsopt.data.registry import DATASETS

    return list(DATASETS.values())


__all__ = [*_EXPORTS, "list_datasets"]


def _load(module: str):
    """Import ``module`` (a value of ``_EXPORTS``) with a plain import statement, so that
    tests/test_layout.py sees every module this package depends on."""
    if module == "dsopt.data.cache":
        import dsopt.data.cache as loaded
    elif module == "dsopt.data.dataset":
        import dsopt.data.dataset as loaded
    elif module == "dsopt.data.download":
        import dsopt.data.download as loaded
    elif module == "dsopt.data.errors":
        import dsopt.data.errors as loaded
    elif module == "dsopt.data.registry":
        import dsopt.data.registry as loaded
    elif module == "dsopt.data.splits":
        import dsopt.data.splits as loaded
    else:
        raise ImportError(f"{module} is not among dsopt.data's lazy exports")
    return loaded


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dsopt.data' has no attribute {name!r}")
    value = getattr(_load(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
