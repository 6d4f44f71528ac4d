"""A domain word embedding for textattack's embedding swap, built offline from the training vocabulary.

textattack's ``EmbeddingAugmenter`` swaps words for their nearest neighbours in counter-fitted GloVe,
which it downloads at first use. dsopt builds the embedding from the words of the training texts
instead, with all-MiniLM-L6-v2 (the encoder dsopt ships) as the word-vector source, and hands
textattack a ``textattack.shared.WordEmbedding`` with a precomputed nearest-neighbour matrix
(``nn_matrix``: textattack's on-the-fly path is both slow and broken when it is None). Neighbours come
only from the domain vocabulary, so "fever" can become "temperature" or "chills" but never a word the
training data never used.
"""
from __future__ import annotations

import hashlib
import re
from typing import Callable, Iterable, Sequence

import numpy as np

from dsopt.util.validation import ParameterError, check_number

_WORD = re.compile(r"^[a-z][a-z'-]*[a-z]$")


def vocabulary(texts: Iterable[str], *, stopwords: Iterable[str] = (), min_count: int = 1,
               split: Callable[[str], list[str]] | None = None) -> list[str]:
    """Sorted lower-case words of ``texts`` (letters, inner ' or -; >= 2 chars), without ``stopwords``.

    ``split`` turns a text into words (default: textattack's ``words_from_text``, the tokenisation its
    swaps use, so every vocabulary word is a word textattack can replace; textattack must have been
    imported offline first, with :func:`dsopt.augment.offline.import_textattack`).
    """
    import sys

    min_count = check_number("min_count", min_count, low=1, integer=True)
    if split is None:
        if "textattack" not in sys.modules:
            raise RuntimeError("vocabulary() splits words as textattack does: call "
                               "dsopt.augment.import_textattack(nltk_data) first (it needs the NLTK stopwords), "
                               "or pass split=")
        from textattack.shared.utils import words_from_text as split
    stop = {w.lower() for w in stopwords}
    counts: dict[str, int] = {}
    for text in texts:
        for w in split(text):
            w = w.lower()
            if _WORD.match(w) and w not in stop:
                counts[w] = counts.get(w, 0) + 1
    return sorted(w for w, c in counts.items() if c >= min_count)


class DomainEmbedding:
    """Unit word vectors of a vocabulary and their ``k`` nearest neighbours by cosine similarity.

    Attributes (scikit-learn style, set by the constructor): ``words_`` [V], ``vectors_`` [V, D] float32,
    ``nn_`` [V, k+1] int (column 0 is the word itself, as textattack's ``nn_matrix`` expects),
    ``nn_sim_`` [V, k+1] cosine similarities of those neighbours, ``fingerprint_`` (vocabulary + source).
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray, *, k: int = 50, source: str = "custom"):
        words = list(words)
        if len(words) < 2 or len(set(words)) != len(words):
            raise ParameterError("words", f"words must be >= 2 distinct words; got {len(words)} ({len(set(words))} distinct)")
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(words):
            raise ParameterError("vectors", f"vectors must be [{len(words)}, dim]; got {vectors.shape}")
        self.k = check_number("k", k, low=1, integer=True)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.words_ = words
        self.vectors_ = vectors / np.maximum(norms, 1e-12)
        self.index_ = {w: i for i, w in enumerate(words)}
        self.nn_, self.nn_sim_ = nearest_neighbours(self.vectors_, min(self.k, len(words) - 1))
        self.fingerprint_ = hashlib.sha256(("\n".join(words) + "\0" + source).encode()).hexdigest()[:16]

    @classmethod
    def from_texts(cls, texts: Iterable[str], word_vectors: Callable[[list[str]], np.ndarray], *, k: int = 50,
                   stopwords: Iterable[str] = (), min_count: int = 1, source: str = "minilm") -> "DomainEmbedding":
        """Vocabulary of ``texts`` -> vectors from ``word_vectors(words)`` (e.g. ``MiniLMVectors.words``)."""
        words = vocabulary(texts, stopwords=stopwords, min_count=min_count)
        return cls(words, word_vectors(words), k=k, source=source)

    def __len__(self) -> int:
        return len(self.words_)

    def neighbours(self, word: str, topn: int | None = None, min_cos_sim: float = -1.0) -> list[tuple[str, float]]:
        """Up to ``topn`` nearest words of ``word`` (lower-cased) with similarity >= ``min_cos_sim``."""
        i = self.index_.get(word.lower())
        if i is None:
            return []
        topn = self.nn_.shape[1] - 1 if topn is None else topn
        return [(self.words_[j], float(s)) for j, s in zip(self.nn_[i, 1:topn + 1], self.nn_sim_[i, 1:topn + 1])
                if s >= min_cos_sim]

    def to_textattack(self):
        """This embedding as ``textattack.shared.WordEmbedding`` (with ``nn_matrix``: never None)."""
        from textattack.shared import WordEmbedding

        return WordEmbedding(self.vectors_, dict(self.index_), dict(enumerate(self.words_)), self.nn_)


def nearest_neighbours(vectors: np.ndarray, k: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Indices [V, k+1] and cosine similarities of each unit row's nearest rows (itself first), blockwise."""
    import torch

    v = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    idx, sims = [], []
    for start in range(0, len(v), block):
        s = v[start:start + block] @ v.T
        rows = torch.arange(start, min(start + block, len(v)))
        s[torch.arange(len(rows)), rows] = float("inf")  # the word itself first, whatever ties exist
        top = s.topk(k + 1, dim=1)
        vals = top.values.clone()
        vals[:, 0] = 1.0
        idx.append(top.indices.numpy())
        sims.append(vals.numpy())
    return np.concatenate(idx).astype(np.int64), np.concatenate(sims).astype(np.float32)
