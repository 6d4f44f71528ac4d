"""Disk caches of the augmentation pipeline: augmented sentences (JSON) and vectors (NumPy shards).

:class:`AugmentationCache` keeps one JSON file per (text, recipe, seed): the augmentations drawn so
far, in order, so asking for 3 after 1 reuses the first and draws two more. :class:`VectorStore`
keeps vectors (sentence embeddings, word vectors) by string key in append-only ``.npz`` shards.
Both write atomically (temporary file + rename); an entry that cannot be read, or that does not
belong to its key, counts as missing and is recomputed and overwritten.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import uuid
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from dsopt.util.atomic import atomic_write_bytes, atomic_write_text


def text_key(*parts) -> str:
    """SHA-256 (hex) of the JSON of ``parts``: the cache key of a text under a recipe and seed."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class AugmentationCache:
    """``root/ab/<key>.json`` per (text, recipe key, seed): ``{"key", "text", "recipe", "seed", "items"}``.

    ``items`` are the augmentations in the order they were drawn: ``{"text": str | None, "changed":
    [word indices], "op": str}`` (``text`` None when no augmentation could be made).
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.hits = self.misses = self.corrupt = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, text: str, recipe: str, seed: int) -> list[dict]:
        """The cached items of (text, recipe, seed), or ``[]`` (missing or unreadable: recomputed)."""
        key = text_key(text, recipe, seed)
        path = self.path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            ok = (isinstance(entry, dict) and entry.get("key") == key and entry.get("text") == text
                  and isinstance(entry.get("items"), list)
                  and all(isinstance(i, dict) and "text" in i and "changed" in i for i in entry["items"]))
        except FileNotFoundError:
            self.misses += 1
            return []
        except (OSError, ValueError, UnicodeDecodeError):
            ok = False
        if not ok:
            self.corrupt += 1
            return []
        self.hits += 1
        return entry["items"]

    def put(self, text: str, recipe: str, seed: int, items: Sequence[dict]) -> None:
        key = text_key(text, recipe, seed)
        entry = {"key": key, "text": text, "recipe": recipe, "seed": seed, "items": list(items)}
        atomic_write_text(self.path(key), json.dumps(entry, ensure_ascii=False))


class VectorStore:
    """Vectors by string key, persisted as append-only ``.npz`` shards in ``root`` (None: memory only).

    Shards are read once when the store opens; a shard that cannot be read is ignored (its vectors
    are computed again). ``put_many`` writes one new shard atomically. Thread-safe.
    """

    def __init__(self, root: str | os.PathLike | None, dim: int | None = None):
        self.root = Path(root) if root is not None else None
        self.dim = dim
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.skipped_shards = 0
        self._seen: set[str] = set()
        self.refresh()

    def refresh(self) -> int:
        """Read shards written since the store opened (another process may share the folder); return how many."""
        if self.root is None or not self.root.is_dir():
            return 0
        new = [p for p in sorted(self.root.glob("*.npz")) if p.name not in self._seen]
        for shard in new:
            self._seen.add(shard.name)
            self._load(shard)
        return len(new)

    def _load(self, shard: Path) -> None:
        try:
            with np.load(shard, allow_pickle=False) as z:
                keys, vecs = list(z["keys"]), z["vectors"]
            if len(keys) != len(vecs) or (self.dim is not None and vecs.shape[1] != self.dim):
                raise ValueError("shape")
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            self.skipped_shards += 1
            return
        for k, v in zip(keys, vecs):
            self._vectors[str(k)] = v

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: str) -> bool:
        return key in self._vectors

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The vectors of ``keys`` that are stored (here, or in shards other processes wrote since)."""
        keys = list(keys)
        with self._lock:
            if any(k not in self._vectors for k in keys):
                self.refresh()
            return {k: self._vectors[k] for k in keys if k in self._vectors}

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if not len(keys):
            return
        with self._lock:
            for k, v in zip(keys, vectors):
                self._vectors[k] = v
        if self.root is not None:
            buf = io.BytesIO()
            np.savez(buf, keys=np.asarray(list(keys), dtype=str), vectors=vectors)
            name = f"{uuid.uuid4().hex}.npz"
            atomic_write_bytes(self.root / name, buf.getvalue())
            with self._lock:
                self._seen.add(name)
