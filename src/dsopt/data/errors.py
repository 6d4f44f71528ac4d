"""Exceptions of the data layer.

Every message is written for the person at the keyboard: it names the dataset, the exact file
path involved and the command or action that fixes the problem, because a data error usually
happens far from the code that caused it (in a notebook cell, on a CI runner without network).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class DataError(Exception):
    """Base class of every error raised by :mod:`dsopt.data`.

    Subclasses keep their constructor arguments in ``_init`` so that :meth:`__reduce__` can rebuild
    them: an error raised in a spawned worker process reaches the user with its whole message.
    """

    _init: tuple = ()
    _kw: dict | None = None

    def __reduce__(self):
        if not self._init and not self._kw:
            return (type(self), self.args)
        return (_rebuild, (type(self), self._init, self._kw or {}))


class CorruptFileError(DataError):
    """A stored file whose SHA-256 differs from the registry's value.

    A corrupt (truncated, edited, different-version) file is never parsed: the numbers a model
    reports would silently refer to different data. Attributes: ``path``, ``expected``,
    ``actual``, ``dataset``.
    """

    def __init__(self, path: Path, expected: str, actual: str, dataset: str):
        self._init = (path, expected, actual, dataset)
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        self.dataset = dataset
        super().__init__(
            f"Corrupt data file: {self.path}\n"
            f"  expected sha256: {expected}\n"
            f"  actual sha256:   {actual}\n"
            f"The file is damaged or is not the published version. Delete it and download it again:\n"
            f"  rm '{self.path}'\n"
            f"  dsopt data fetch {dataset}"
        )


class ChecksumMismatchError(DataError):
    """Downloaded or extracted bytes did not match the expected SHA-256 (nothing was written)."""

    def __init__(self, what: str, expected: str, actual: str):
        self._init = (what, expected, actual)
        self.what = what
        self.expected = expected
        self.actual = actual
        super().__init__(f"sha256 mismatch for {what}: expected {expected}, got {actual}")


class DataUnavailableError(DataError):
    """Files of a dataset are missing and could not be downloaded.

    Raised when the network is unreachable, ``DSOPT_OFFLINE=1`` is set, or every URL failed.
    Attributes: ``dataset``, ``urls`` (the URLs tried, or that would have been tried offline),
    ``attempts`` (``"url: reason"`` lines), ``paths`` (the exact paths where the files belong).
    """

    def __init__(
        self,
        dataset: str,
        paths: Sequence[Path],
        urls: Sequence[str],
        attempts: Sequence[str],
        *,
        offline: bool,
        hints: Sequence[str] = (),
        archive: Path | None = None,
    ):
        self._init = (dataset, list(paths), list(urls), list(attempts))
        self._kw = {"offline": offline, "hints": list(hints), "archive": archive}
        self.archive = Path(archive) if archive else None
        self.dataset = dataset
        self.paths = [Path(p) for p in paths]
        self.urls = list(urls)
        self.attempts = list(attempts)
        self.offline = offline
        lines = [
            f"Dataset {dataset!r} is not available: {len(self.paths)} file(s) missing "
            + ("and DSOPT_OFFLINE=1 forbids downloading." if offline else "and the download failed.")
        ]
        if offline:
            lines.append("Download URL(s) (not tried because DSOPT_OFFLINE=1):")
            lines += [f"  {u}" for u in self.urls]
        else:
            lines.append("URL(s) tried:")
            lines += [f"  {a}" for a in self.attempts] or [f"  {u}" for u in self.urls]
        if self.archive is not None:
            lines.append("Missing file(s):")
            lines += [f"  {p}" for p in self.paths if p != self.archive]
            lines.append(f"They are extracted from the archive {self.archive.name}: put it at exactly this path:")
            lines.append(f"  {self.archive}")
        else:
            lines.append("Put the file(s) at exactly these path(s):")
            lines += [f"  {p}" for p in self.paths]
        lines += list(hints)
        lines.append(
            f"Or run `dsopt data fetch {dataset}` where the network is reachable, set DSOPT_DATA to a "
            "folder that already holds the files, or set DSOPT_DATA_MIRROR to a base URL serving "
            "MIRROR/<relative path>."
        )
        super().__init__("\n".join(lines))


def _rebuild(cls, args, kwargs):
    return cls(*args, **kwargs)
