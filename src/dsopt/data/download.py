"""Downloading dataset files: atomic, SHA-256 verified, offline-aware.

Rules, each there for a reason:

* Every file is written through :func:`dsopt.util.atomic.atomic_open` (temp file + rename) and its
  hash is checked *before* the rename, so an interrupted or wrong download never leaves a
  file behind that a later ``load`` could trust.
* Zip-published datasets (Financial PhraseBank, SMS Spam, SST-2) are downloaded to a temp file
  (or, when the archive is itself a stored file, to its place in the cache), verified, and only
  the needed members are extracted to the same relative paths as ``shared/data``, each verified.
  A valid archive already in the cache is reused instead of downloading it again.
* ``DSOPT_DATA_MIRROR=BASE`` replaces the canonical hosts: every file is fetched from
  ``BASE/<relpath>`` (``file://`` URLs and plain local folders work, e.g. a copy of shared/data).
* ``DSOPT_OFFLINE=1`` never touches the network (only a ``file://`` mirror is still read) and
  a missing file raises :class:`DataUnavailableError` with the exact path where to put it.
* Plain :mod:`urllib` with a timeout (no extra dependency), with a tqdm progress bar.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterable

from dsopt.data.cache import CORRUPT, MISSING, OK, check_file, file_path, remember_hash
from dsopt.data.errors import ChecksumMismatchError, CorruptFileError, DataError, DataUnavailableError
from dsopt.data.registry import DatasetInfo, FileSource, ZipSource, get_info
from dsopt.util.atomic import atomic_open
from dsopt.util.validation import check_number

DEFAULT_TIMEOUT = 60.0
_CHUNK = 1 << 16
_USER_AGENT = "dsopt-data (python urllib)"
# What one failed URL may raise; anything else (a bug) propagates.
_FETCH_ERRORS = (
    urllib.error.URLError,
    http.client.HTTPException,
    OSError,
    ValueError,
    zipfile.BadZipFile,
    KeyError,
    ChecksumMismatchError,
)


def is_offline() -> bool:
    """True when ``DSOPT_OFFLINE`` is set to 1/true/yes/on: never use the network."""
    return os.environ.get("DSOPT_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def mirror_base() -> str | None:
    """``DSOPT_DATA_MIRROR`` as a base URL without trailing slash (a local folder becomes file://)."""
    base = os.environ.get("DSOPT_DATA_MIRROR", "").strip()
    if not base:
        return None
    if "://" not in base:
        base = Path(base).expanduser().resolve().as_uri()
    return base.rstrip("/")


def mirror_url(base: str, relpath: str) -> str:
    """URL of ``relpath`` on a mirror laid out like the data dir."""
    return f"{base}/{urllib.parse.quote(relpath)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def _stream(url: str, fh, *, timeout: float, progress: bool, desc: str) -> str:
    """Copy ``url`` into the open binary file ``fh``; return the SHA-256 of the bytes."""
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    h = hashlib.sha256()
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        total = None
        headers = getattr(resp, "headers", None)
        if headers is not None:
            try:
                total = int(headers.get("Content-Length"))
            except (TypeError, ValueError):
                total = None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                  disable=not progress, leave=False) as bar:
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                fh.write(chunk)
                bar.update(len(chunk))
    return h.hexdigest()


def download_file(url: str, dest: str | os.PathLike, *, sha256: str | None,
                  timeout: float = DEFAULT_TIMEOUT, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically; with ``sha256``, verify before the rename.

    On a hash mismatch (or any error) nothing is left at ``dest`` (an older file stays as it was)
    and :class:`ChecksumMismatchError` (or the network error) is raised.
    """
    dest = Path(dest)
    with atomic_open(dest, "wb") as fh:
        actual = _stream(url, fh, timeout=timeout, progress=progress, desc=dest.name)
        if sha256 is not None and actual != sha256:
            raise ChecksumMismatchError(url, sha256, actual)
    remember_hash(dest, actual)
    return dest


def _extract(archive: Path, members: dict[str, str], info: DatasetInfo) -> None:
    """Extract ``members`` (member name -> relpath) of ``archive``, each verified and atomic."""
    with zipfile.ZipFile(archive) as zf:
        for member, rel in members.items():
            spec = info.file(rel)
            dest = file_path(rel)
            h = hashlib.sha256()
            with zf.open(member) as src, atomic_open(dest, "wb") as fh:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    h.update(chunk)
                    fh.write(chunk)
                if h.hexdigest() != spec.sha256:
                    raise ChecksumMismatchError(f"{member} in {archive.name}", spec.sha256, h.hexdigest())
            remember_hash(dest, spec.sha256)


def _from_local_archives(info: DatasetInfo, need: set[str]) -> None:
    """Extract members in ``need`` from valid archives already stored in the cache.

    Not a download, so it also runs with ``DSOPT_OFFLINE=1``: a user may drop the official zip
    at its path (the error message says where) and ``load`` takes the files from it.
    """
    for src in info.sources:
        if not (isinstance(src, ZipSource) and src.keep_as) or src.keep_as in need:
            continue
        members = {m: rel for m, rel in src.members.items() if rel in need}
        if not members:
            continue
        kept = check_file(info, info.file(src.keep_as))
        if kept.status != OK:
            continue
        _writable_or_raise(file_path(info.folder or ""))
        _extract(kept.path, members, info)
        need -= set(members.values())


def _from_zip(info: DatasetInfo, src: ZipSource, wanted: set[str], attempts: list[str],
              tried: list[str], *, timeout: float, progress: bool) -> set[str]:
    """Download the archive of ``src`` (URLs in order) and extract ``wanted``; return those now in place.

    The archive is stored at ``keep_as`` when that is wanted or missing; otherwise (no
    ``keep_as``, or a corrupt stored archive that ``load`` must not silently replace) it goes to
    a temp dir that is removed afterwards.
    """
    members = {m: rel for m, rel in src.members.items() if rel in wanted}
    keep = bool(src.keep_as) and (
        src.keep_as in wanted or check_file(info, info.file(src.keep_as)).status == MISSING
    )
    for url in src.urls:
        tried.append(url)
        try:
            if keep:
                archive = download_file(url, file_path(src.keep_as), sha256=src.sha256,
                                        timeout=timeout, progress=progress)
                _extract(archive, members, info)
                return set(members.values()) | {src.keep_as}
            with tempfile.TemporaryDirectory(prefix="dsopt-download-") as tmp:
                name = Path(urllib.parse.urlparse(url).path).name or "archive.zip"
                archive = download_file(url, Path(tmp) / name, sha256=src.sha256,
                                        timeout=timeout, progress=progress)
                _extract(archive, members, info)
            return set(members.values())
        except _FETCH_ERRORS as exc:
            attempts.append(f"{url}: {_reason(exc)}")
    return set()


def _writable_or_raise(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"Cannot create the data folder {folder} ({exc}). Set DSOPT_DATA to a writable folder."
        ) from exc
    if not os.access(folder, os.W_OK):
        raise DataError(f"The data folder {folder} is not writable. Set DSOPT_DATA to a writable folder.")


def _download_missing(info: DatasetInfo, need: set[str], *, timeout: float, progress: bool) -> None:
    """Fetch every relpath in ``need``; raise DataUnavailableError listing what is still missing."""
    offline = is_offline()
    base = mirror_base()
    tried: list[str] = []
    attempts: list[str] = []
    hints: list[str] = []
    _from_local_archives(info, need)
    can_try = base is not None and base.startswith("file:") if offline else True
    if need and can_try:
        _writable_or_raise(file_path(info.folder or ""))
        if base is not None:
            for rel in sorted(need):
                url = mirror_url(base, rel)
                tried.append(url)
                try:
                    download_file(url, file_path(rel), sha256=info.file(rel).sha256,
                                  timeout=timeout, progress=progress)
                    need.discard(rel)
                except _FETCH_ERRORS as exc:
                    attempts.append(f"{url}: {_reason(exc)}")
        else:
            for src in info.sources:
                wanted = need & src.provides()
                if not wanted:
                    continue
                if isinstance(src, ZipSource):
                    need -= _from_zip(info, src, wanted, attempts, tried, timeout=timeout, progress=progress)
                elif isinstance(src, FileSource):
                    for url in src.urls:
                        tried.append(url)
                        try:
                            download_file(url, file_path(src.relpath), sha256=info.file(src.relpath).sha256,
                                          timeout=timeout, progress=progress)
                            need.discard(src.relpath)
                            break
                        except _FETCH_ERRORS as exc:
                            attempts.append(f"{url}: {_reason(exc)}")
    if need:
        urls = tried if tried else ([mirror_url(base, r) for r in sorted(need)] if base else info.urls())
        archive = None
        for src in info.sources:
            if isinstance(src, ZipSource) and src.keep_as and need & set(src.members.values()):
                if need <= src.provides():  # the archive alone is what is missing: ask for it, once
                    archive = file_path(src.keep_as)
                elif src.keep_as not in need:
                    hints.append(f"Alternatively put the archive {Path(src.keep_as).name} at "
                                 f"{file_path(src.keep_as)}; the files are extracted from it.")
        raise DataUnavailableError(info.name, [file_path(r) for r in sorted(need)], urls, attempts,
                                   offline=offline and not can_try, hints=hints, archive=archive)


def ensure_files(info: DatasetInfo, relpaths: Iterable[str], *, replace_corrupt: bool = False,
                 force: bool = False, timeout: float = DEFAULT_TIMEOUT, progress: bool = True) -> list[Path]:
    """Make sure ``relpaths`` of ``info`` are present and valid; return their paths.

    Present valid files are left alone (nothing is written, so read-only folders work).
    Missing files are downloaded. A corrupt file raises :class:`CorruptFileError` unless
    ``replace_corrupt`` (``fetch`` sets it), in which case it is downloaded again and replaced
    atomically once the new bytes verify. ``force`` re-downloads even valid files.
    """
    relpaths = list(relpaths)
    need: set[str] = set()
    for rel in relpaths:
        st = check_file(info, info.file(rel))
        if st.status == OK and not force:
            continue
        if st.status == CORRUPT and not (replace_corrupt or force):
            raise CorruptFileError(st.path, st.expected, st.actual or "", info.name)
        need.add(rel)
    if need:
        _download_missing(info, need, timeout=timeout, progress=progress)
    paths = []
    for rel in relpaths:  # trust nothing: re-check what is now on disk
        st = check_file(info, info.file(rel))
        if st.status == CORRUPT:
            raise CorruptFileError(st.path, st.expected, st.actual or "", info.name)
        if st.status != OK:  # pragma: no cover - _download_missing raises first
            raise DataUnavailableError(info.name, [st.path], info.urls(), [], offline=is_offline())
        paths.append(st.path)
    return paths


def fetch(name: str, *, force: bool = False, timeout: float = DEFAULT_TIMEOUT,
          progress: bool = True) -> list[Path]:
    """Download (if needed) and verify every stored file of dataset ``name``; return their paths.

    Valid files are kept; missing and corrupt files are (re)downloaded; ``force`` re-downloads
    all. Bundled datasets (``digits``) need nothing and return ``[]``.
    """
    info = get_info(name)
    timeout = check_number("timeout", timeout, low=0, low_inclusive=False)
    if info.bundled:
        return []
    return ensure_files(info, [f.relpath for f in info.files], replace_corrupt=True, force=force,
                        timeout=timeout, progress=progress)


def require(names: Iterable[str], *, timeout: float = DEFAULT_TIMEOUT, progress: bool = True) -> list[Path]:
    """Make sure the files that loading each dataset in ``names`` (default variant) reads are here and valid.

    Present, valid files cost a hash check (memoised); missing ones are downloaded (or, offline, refused at
    once with :class:`DataUnavailableError` naming the exact paths); a corrupt one raises
    :class:`CorruptFileError`. ``dsopt run`` calls this before a kernel starts. Returns the paths.
    """
    out: list[Path] = []
    for name in dict.fromkeys(names):
        info = get_info(name)
        if info.bundled:
            continue
        out += ensure_files(info, info.variants[info.default_variant], timeout=timeout, progress=progress)
    return out
