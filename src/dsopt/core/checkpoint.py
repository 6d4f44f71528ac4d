"""Checkpoints: everything needed to resume a run bit for bit, written atomically.

A checkpoint is taken at a step boundary (before ``batch_start`` of the next batch). It stores
model and optimizer state, the position (epoch, batch_index, step), the Recorder rows, the
Controls values and history, each callback's state keyed by the callback's name, each module's
train/eval mode, and two RNG snapshots: the one taken just before the epoch's DataLoader iterator
was created (to rebuild the same batch order) and the one at the boundary itself (dropout and
anything else drawn later).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from dsopt.util.atomic import atomic_open

FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus a format version) to ``path`` atomically; return the path."""
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        torch.save({"format_version": FORMAT_VERSION, **payload}, fh)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Uses ``weights_only=False`` because RNG snapshots are not plain tensors: only load
    checkpoints you (or dsopt) wrote.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"checkpoint {path} has format version {version!r}; this dsopt reads {FORMAT_VERSION}")
    return payload
