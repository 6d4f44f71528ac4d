"""Augment a list of texts: seeded per augmentation, batched, cached on disk, filtered by similarity.

Every augmentation has its own seed, derived from (seed, recipe, text, k, attempt). So the output of a
text never depends on which other texts were augmented with it, in which batch or order, or on what
the cache already held: same seed, same output. The k-th augmentation of a text is the same whether
1 or 3 were asked for, which makes "1 per example" a prefix of "3 per example".

The similarity filter (:class:`SimilarityFilter`) keeps an augmentation only if the cosine similarity
of its all-MiniLM-L6-v2 embedding to the original's is >= ``threshold``; it is applied after the
cache, so moving the threshold never re-augments anything.
"""
from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from dsopt.augment.recipes import Recipe, build_augmenter
from dsopt.augment.store import AugmentationCache
from dsopt.util.validation import ParameterError, check_number

MAX_ATTEMPTS = 4  # draws per augmentation before giving up (no new distinct sentence)


def derive_seed(*parts) -> int:
    """A 63-bit seed from ``parts`` (stable across processes and machines)."""
    return int(hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:15], 16)


def changed_tokens(original: str, augmented: str) -> tuple[list[tuple[str, bool]], int]:
    """Whitespace tokens of ``augmented`` flagged True where they differ from ``original``; + tokens deleted."""
    a, b = original.split(), augmented.split()
    flags = [False] * len(b)
    deleted = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag in ("replace", "insert"):
            for j in range(j1, j2):
                flags[j] = True
        if tag in ("replace", "delete"):
            deleted += max(0, (i2 - i1) - (j2 - j1))
    return list(zip(b, flags)), deleted


@dataclass
class Augmentation:
    """One augmentation of ``original``: its text (None if none could be made), rank ``k``, similarity, kept."""

    original: str
    text: str | None
    k: int
    op: str
    similarity: float | None = None
    kept: bool = True
    tokens: list[tuple[str, bool]] = field(default_factory=list, repr=False)
    deleted: int = 0


class SimilarityFilter:
    """Keep an augmentation only if cos(MiniLM(original), MiniLM(augmented)) >= ``threshold``.

    ``vectors``: a :class:`~dsopt.augment.encode.MiniLMVectors` (cached, batched embeddings).
    """

    def __init__(self, vectors, threshold: float = 0.8):
        self.vectors = vectors
        self.threshold = float(check_number("threshold", threshold, low=-1.0, high=1.0))

    def scores(self, originals: Sequence[str], augmented: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each pair (one batched encoding of all distinct texts)."""
        if len(originals) != len(augmented):
            raise ParameterError("augmented", f"{len(augmented)} augmented texts for {len(originals)} originals")
        if not len(originals):
            return np.zeros(0, dtype=np.float32)
        distinct = list(dict.fromkeys([*originals, *augmented]))
        emb = dict(zip(distinct, self.vectors.sentences(distinct)))
        return np.array([float(emb[o] @ emb[a]) for o, a in zip(originals, augmented)], dtype=np.float32)

    def keep(self, originals: Sequence[str], augmented: Sequence[str]) -> np.ndarray:
        return self.scores(originals, augmented) >= self.threshold


class AugmentationPipeline:
    """Recipe + seed + cache + filter, for lists of texts.

    Parameters
    ----------
    recipe: a :class:`~dsopt.augment.recipes.Recipe`.
    nltk_data: the NLTK data folder (``dsopt.data.nltk.ensure_nltk_data()``).
    embedding: a :class:`~dsopt.augment.embedding.DomainEmbedding` (``embedding_swap`` only).
    filter: a :class:`SimilarityFilter`, or None (every augmentation kept, no similarity computed).
    cache_dir: folder of the augmentation cache (None: no disk cache).
    batch_size: texts augmented (and embedded) per batch.
    """

    def __init__(self, recipe: Recipe, *, nltk_data: str | os.PathLike, embedding=None,
                 filter: SimilarityFilter | None = None, cache_dir: str | os.PathLike | None = None,
                 batch_size: int = 64):
        self.recipe = recipe
        self.embedding = embedding
        self.filter = filter
        self.batch_size = check_number("batch_size", batch_size, low=1, integer=True)
        self.recipe_key = recipe.key(getattr(embedding, "fingerprint_", None))
        self.cache = AugmentationCache(Path(cache_dir)) if cache_dir is not None else None
        self._nltk_data = nltk_data
        self._augmenter = None
        self.generated = 0  # augmentations drawn (not from the cache)

    @property
    def augmenter(self):
        if self._augmenter is None:
            self._augmenter = build_augmenter(self.recipe, nltk_data=self._nltk_data, embedding=self.embedding)
        return self._augmenter

    def _draw(self, text: str, seed: int, k: int, previous: set) -> dict:
        for attempt in range(MAX_ATTEMPTS):
            out, op = self.augmenter.augment_one(text, derive_seed(seed, self.recipe_key, text, k, attempt))
            self.generated += 1
            if out is not None and out != text and out not in previous:
                return {"text": out, "op": op, "changed": [i for i, (_, c) in enumerate(changed_tokens(text, out)[0]) if c]}
        return {"text": None, "op": "none", "changed": []}

    def raw(self, texts: Sequence[str], n: int, seed: int, *, progress: bool = False) -> list[list[dict]]:
        """The first ``n`` augmentations of each text as cache items (drawn where missing, then cached)."""
        from tqdm.auto import tqdm

        n = check_number("n", n, low=0, high=100, integer=True)
        seed = check_number("seed", seed, low=0, integer=True)
        out: list[list[dict]] = []
        bar = tqdm(total=len(texts), desc=f"augment {self.recipe.name}", disable=not progress, leave=False)
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            cached = [self.cache.get(t, self.recipe_key, seed) if self.cache else [] for t in batch]
            todo = [t for t, c in zip(batch, cached) if len(c) < n]
            if todo and hasattr(self.augmenter, "prefetch"):
                self.augmenter.prefetch(todo)  # replacement lists of the whole batch in one pass
            for text, items in zip(batch, cached):
                items = list(items)
                if len(items) < n:
                    seen = {text} | {i["text"] for i in items if i["text"]}
                    for k in range(len(items), n):
                        item = self._draw(text, seed, k, seen)
                        items.append(item)
                        if item["text"]:
                            seen.add(item["text"])
                    if self.cache is not None:
                        self.cache.put(text, self.recipe_key, seed, items)
                out.append(items[:n])
            bar.update(len(batch))
        bar.close()
        return out

    def augment(self, texts: Sequence[str], n: int, seed: int, *, progress: bool = False) -> list[list[Augmentation]]:
        """``n`` augmentations per text (``text`` None where none could be made), scored and filtered."""
        raw = self.raw(texts, n, seed, progress=progress)
        result = [[Augmentation(t, it["text"], k, it["op"]) for k, it in enumerate(items)] for t, items in zip(texts, raw)]
        made = [a for row in result for a in row if a.text is not None]
        if self.filter is not None and made:
            sims = self.filter.scores([a.original for a in made], [a.text for a in made])
            for a, s in zip(made, sims):
                a.similarity = float(s)
                a.kept = bool(s >= self.filter.threshold)
        for row in result:
            for a in row:
                if a.text is None:
                    a.kept = False
                else:
                    a.tokens, a.deleted = changed_tokens(a.original, a.text)
        return result


def expand(texts: Sequence[str], labels: Sequence[int], augmentations: list[list[Augmentation]]
           ) -> tuple[list[str], list[int], dict]:
    """Originals followed by their kept augmentations (same label); plus counts (made, kept)."""
    out_t, out_y = list(texts), list(labels)
    made = kept = 0
    for y, row in zip(labels, augmentations):
        for a in row:
            made += a.text is not None
            if a.kept and a.text is not None:
                kept += 1
                out_t.append(a.text)
                out_y.append(int(y))
    return out_t, out_y, {"originals": len(texts), "made": made, "kept": kept}
