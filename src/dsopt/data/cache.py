"""Where data files live, and whether they are intact.

The cache dir is ``$DSOPT_DATA`` when set, else ``platformdirs.user_cache_dir("dsopt")/data``.
It is laid out exactly like the project's offline folder ``shared/data`` (``sst2/train.tsv``,
``financial_phrasebank/FinancialPhraseBank-v1.0/Sentences_AllAgree.txt``...), so pointing
``DSOPT_DATA`` at that read-only folder works as is. Nothing in this module writes to disk:
checking a file only reads it, which keeps read-only data folders usable.

Hashing a 4 MB file on every ``load`` would cost more than parsing it, so a verified hash is
remembered per process, keyed by (path, size, mtime, inode): editing or replacing the file
changes the key and forces a fresh check.
"""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from dsopt.data.registry import DatasetInfo, FileSpec, get_info
from dsopt.data.registry import names as _all_names

OK = "OK"
MISSING = "MISSING"
CORRUPT = "CORRUPT"

_hash_cache: dict[str, tuple[tuple[int, int, int], str]] = {}
_hash_lock = threading.Lock()


def data_dir() -> Path:
    """The data cache dir: ``$DSOPT_DATA`` if set (and non-empty), else the user cache dir.

    Read at every call, so changing the environment variable takes effect immediately.
    The folder is not created here (it may be read-only and is only needed for downloads).
    """
    env = os.environ.get("DSOPT_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("dsopt")) / "data"


def dataset_path(name: str) -> Path:
    """The folder holding ``name``'s files inside :func:`data_dir` (it may not exist yet).

    ``digits`` has no files (it ships with scikit-learn), so asking for its path is an error.
    """
    info = get_info(name)
    if info.folder is None:
        from dsopt.util.validation import ParameterError

        raise ParameterError("name", f"dataset {info.name!r} is bundled with scikit-learn and has no files")
    return data_dir() / info.folder


def file_path(relpath: str) -> Path:
    """Absolute path of a registry relpath inside the current :func:`data_dir`."""
    return data_dir() / relpath


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of ``path``, remembered while (size, mtime, inode) are unchanged."""
    path = Path(path)
    st = path.stat()
    key = str(path.resolve())
    stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
    with _hash_lock:
        hit = _hash_cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _hash_lock:
        _hash_cache[key] = (stamp, digest)
    return digest


def remember_hash(path: str | os.PathLike, digest: str) -> None:
    """Record the hash of a file just written and verified (saves re-reading a fresh download)."""
    path = Path(path)
    st = path.stat()
    with _hash_lock:
        _hash_cache[str(path.resolve())] = ((st.st_size, st.st_mtime_ns, st.st_ino), digest)


def clear_hash_cache() -> None:
    """Forget every remembered hash (tests, or after editing files within one mtime tick)."""
    with _hash_lock:
        _hash_cache.clear()


@dataclass(frozen=True)
class FileStatus:
    """Result of checking one registered file: ``status`` is ``OK``, ``MISSING`` or ``CORRUPT``."""

    dataset: str
    relpath: str
    path: Path
    status: str
    expected: str
    actual: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK


def check_file(info: DatasetInfo, spec: FileSpec) -> FileStatus:
    """Check one file of ``info`` in the current data dir (reads it; never writes)."""
    path = file_path(spec.relpath)
    if not path.is_file():
        return FileStatus(info.name, spec.relpath, path, MISSING, spec.sha256)
    actual = sha256_file(path)
    status = OK if actual == spec.sha256 else CORRUPT
    return FileStatus(info.name, spec.relpath, path, status, spec.sha256, actual)


def verify(names: Iterable[str] | str | None = None) -> list[FileStatus]:
    """Check every stored file of the given datasets (default: all) against its SHA-256.

    Returns one :class:`FileStatus` per file (bundled datasets such as ``digits`` have none).
    Never downloads and never writes.
    """
    if names is None:
        selected = _all_names()
    elif isinstance(names, str):
        selected = [names]
    else:
        selected = list(names)
    out: list[FileStatus] = []
    for name in selected:
        info = get_info(name)
        out.extend(check_file(info, spec) for spec in info.files)
    return out
