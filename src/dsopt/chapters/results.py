"""Metrics a chapter records for its headless runs (the JSON that ``dsopt run`` writes)."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from dsopt.util.atomic import atomic_write_text


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy/torch scalars and arrays, tuples and paths to plain JSON types (NaN -> None)."""
    if hasattr(obj, "tolist"):
        obj = obj.tolist()
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_metrics(path: str | os.PathLike | None, metrics: dict) -> dict:
    """Write ``metrics`` as JSON to ``path`` atomically (no-op when ``path`` is empty); return them.

    Chapters call this with their ``metrics_path`` parameter, which ``dsopt run`` sets.
    """
    clean = to_jsonable(metrics)
    if path:
        atomic_write_text(path, json.dumps(clean, indent=2, sort_keys=True))
    return clean


def load_metrics(path: str | os.PathLike) -> dict:
    """Read a metrics JSON written by :func:`save_metrics`."""
    return json.loads(Path(path).read_text())
