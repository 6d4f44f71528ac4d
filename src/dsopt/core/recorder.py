"""Recorder: the append-only, lock-protected metrics log of a run.

Training is its only writer; widgets and notebooks read it by cursor (``since``) so that a panel
refreshing on the main thread never touches the model or the optimizer. Rows are never changed
once written, so a reader holding a cursor sees every row exactly once.
"""
from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from dsopt.util.atomic import atomic_write_text


@dataclass(frozen=True)
class Record:
    """One logged value: ``name`` had ``value`` at optimizer step ``step`` during ``epoch``."""

    step: int
    epoch: int
    name: str
    value: Any


class Recorder:
    """Append-only metrics log. Thread-safe: one writer (training), any number of readers."""

    def __init__(self, rows: Iterable[Record] = ()):
        self._lock = threading.Lock()
        self._rows: list[Record] = list(rows)

    def log(self, name: str, value: Any, *, step: int, epoch: int) -> None:
        """Append one row. Tensors/NumPy scalars are converted to Python numbers."""
        if hasattr(value, "item"):
            value = value.item()
        with self._lock:
            self._rows.append(Record(int(step), int(epoch), str(name), value))

    def since(self, cursor: int = 0) -> tuple[list[Record], int]:
        """Rows appended after ``cursor`` and the new cursor to pass next time."""
        with self._lock:
            rows = self._rows[cursor:]
            return rows, cursor + len(rows)

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    @property
    def rows(self) -> list[Record]:
        """A copy of all rows."""
        with self._lock:
            return list(self._rows)

    def names(self) -> list[str]:
        """Distinct metric names, in order of first appearance."""
        return list(dict.fromkeys(r.name for r in self.rows))

    def series(self, name: str) -> tuple[list[int], list[Any]]:
        """(steps, values) of one metric."""
        rows = [r for r in self.rows if r.name == name]
        return [r.step for r in rows], [r.value for r in rows]

    def last(self, name: str, default: Any = None) -> Any:
        """The latest value of ``name`` (``default`` if never logged)."""
        for r in reversed(self.rows):
            if r.name == name:
                return r.value
        return default

    def to_list(self) -> list[dict]:
        """Rows as plain dicts (JSON-ready)."""
        return [asdict(r) for r in self.rows]

    @classmethod
    def from_list(cls, rows: Iterable[dict]) -> "Recorder":
        """Rebuild a Recorder from :meth:`to_list` output (used when resuming a checkpoint)."""
        return cls(Record(**r) for r in rows)

    def restore(self, rows: Iterable[dict]) -> None:
        """Replace all rows with ``rows`` (from :meth:`to_list`); used only when resuming a checkpoint."""
        restored = [Record(**r) for r in rows]
        with self._lock:
            self._rows = restored

    def save_json(self, path: str | Path) -> None:
        """Write all rows to ``path`` atomically."""
        atomic_write_text(path, json.dumps(self.to_list()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Recorder) and self.rows == other.rows
