"""One finished run as a sealed JSON file: the run cache and the stored runs share this format.

A run file holds the run's ``key``, the code that produced it (``fingerprint``: the declared modules and
the hash of their syntax), the machine it was made on (``machine``: torch, device, CPU, host), the ``job`` it answered, its ``result`` and a SHA-256 over all of that (``sha256``). A file
whose checksum does not match (edited, truncated, written by an older format) is refused with
:class:`RunFileError`, so a cache never returns a result it cannot vouch for.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from dsopt.util.atomic import atomic_write_text

FORMAT = 1
#: The largest run file read (the largest dsopt writes is ~0.2 MB, chapter 03's): a bigger one is refused by name
#: before it is read, so a padded or foreign file cannot take a kernel's memory (a 419 MB one took 0.8 GB more).
MAX_BYTES = 64 * 2**20


class RunFileError(Exception):
    """A run file that cannot be trusted: unreadable JSON, wrong format, wrong key or failed checksum."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"run file {path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


def _digest(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def seal(key: str, result: dict, *, fingerprint: dict, job=None, run: str = "", seconds: float | None = None,
         machine: dict | None = None) -> dict:
    """The sealed record of one run (``sha256`` covers every other field; ``seconds``: how long it took;
    ``machine``: where it was made, recorded for people and the spot check, not part of the key)."""
    record = {"format": FORMAT, "key": key, "run": run, "job": job, "fingerprint": fingerprint, "result": result,
              "seconds": seconds, "machine": machine or {}}
    record["sha256"] = _digest(record)
    return record


def write_run(path: str | os.PathLike, record: dict) -> None:
    """Write a sealed record atomically (a reader never sees half a file)."""
    atomic_write_text(path, json.dumps(record, sort_keys=True, indent=1, default=repr))


def read_run(path: str | os.PathLike, key: str | None = None) -> dict:
    """Read and check a run file; return the whole record. Raises :class:`RunFileError` if it cannot be trusted."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise RunFileError(path, f"{size:,} bytes, above the {MAX_BYTES:,} a run file may hold (dsopt's are "
                                     f"well under 1 MB): not read")
        record = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise RunFileError(path, f"unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise RunFileError(path, f"not a run file of format {FORMAT}")
    if record.get("sha256") != _digest(record):
        raise RunFileError(path, "checksum mismatch (the file was changed after it was written)")
    if key is not None and record.get("key") != key:
        raise RunFileError(path, f"holds run {record.get('key')!r}, not {key!r}")
    return record
