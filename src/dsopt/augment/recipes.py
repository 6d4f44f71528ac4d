"""The augmentation recipes of chapter 03, each built from textattack 0.3.11's own pieces, offline.

=================== ==========================================================================
``embedding_swap``   textattack's ``WordSwapEmbedding`` over dsopt's domain MiniLM embedding, with
                     ``EmbeddingAugmenter``'s constraints (stopwords kept, each word swapped once,
                     word cosine >= ``min_cos_sim``), driven by :class:`~dsopt.augment.swap.FastWordSwap`.
                     The closest real equivalent of the article's "WordEmbeddingAugmenter".
``wordnet_swap``     textattack's ``WordSwapWordNet`` (``WordNetAugmenter``'s transformation and
                     constraints), same driver.
``synonym_insertion`` textattack's ``SynonymInsertionAugmenter`` as is (``WordInsertionRandomSynonym``:
                     a WordNet synonym of a random word inserted at a random place) -- the real
                     "insert" that the article's ``action="insert"`` asks for.
``eda``              textattack's ``EasyDataAugmenter`` as is (Wei & Zou 2019: synonym swap, random
                     deletion, random swap, random insertion; one of them per augmentation).
=================== ==========================================================================

``build_augmenter(recipe, ...)`` returns an object with ``augment_one(text, seed) -> (text | None, op)``.
The seed is used for that one augmentation only: textattack draws from Python's global ``random``,
so the stock augmenters run inside :func:`seeded` (which restores every global RNG afterwards).

Seeding alone does not make textattack reproducible across processes: its WordNet transformations
return ``list(set(...))`` of candidate words and ``EasyDataAugmenter`` shuffles ``list(set(...))`` of
sentences, and the order of a set of strings changes with Python's per-process hash seed. dsopt sorts
those lists (:func:`deterministic`, :class:`SortedEDA`) before textattack draws from them -- the same
draw, made reproducible -- so a stored or cached augmentation is what any process would compute.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import threading
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np

from dsopt.augment.offline import check_nltk_data, import_textattack, no_downloads
from dsopt.util.validation import ParameterError, check_choice, check_number

RECIPES = ("embedding_swap", "wordnet_swap", "synonym_insertion", "eda")
WORDNET_RECIPES = ("wordnet_swap", "synonym_insertion", "eda")


@dataclass(frozen=True)
class Recipe:
    """A recipe and its knobs (validated). ``max_candidates``/``min_cos_sim`` matter for ``embedding_swap``.

    ``pct_words_to_swap``: share of words changed per augmentation (textattack's name; at least one
    word). Defaults are textattack's: ``EmbeddingAugmenter`` uses 50 candidates and cosine >= 0.8, all
    its recipes change 10 % of the words.
    """

    name: str
    pct_words_to_swap: float = 0.1
    max_candidates: int = 50
    min_cos_sim: float = 0.8

    def __post_init__(self):
        check_choice("recipe", self.name, RECIPES)
        check_number("pct_words_to_swap", self.pct_words_to_swap, low=0.0, high=1.0, low_inclusive=False)
        check_number("max_candidates", self.max_candidates, low=1, high=1000, integer=True)
        check_number("min_cos_sim", self.min_cos_sim, low=-1.0, high=1.0)

    @property
    def needs_wordnet(self) -> bool:
        return self.name in WORDNET_RECIPES

    @property
    def needs_embedding(self) -> bool:
        return self.name == "embedding_swap"

    def key(self, embedding_fingerprint: str | None = None) -> str:
        """What the augmentations depend on, as a string (cache key part); the embedding for embedding_swap."""
        d = {"name": self.name, "pct": round(float(self.pct_words_to_swap), 6), "textattack": "0.3.11", "v": 2}
        if self.needs_embedding:
            if embedding_fingerprint is None:
                raise ParameterError("embedding", "embedding_swap needs a DomainEmbedding")
            d.update(max_candidates=int(self.max_candidates), min_cos_sim=round(float(self.min_cos_sim), 6),
                     embedding=embedding_fingerprint)
        return json.dumps(d, sort_keys=True)

    def label(self) -> str:
        extra = f", {self.max_candidates} cand., cos>={self.min_cos_sim:g}" if self.needs_embedding else ""
        return f"{self.name} ({100 * self.pct_words_to_swap:g} % of words{extra})"

    def to_dict(self) -> dict:
        return asdict(self)


#: textattack draws from the process-wide ``random``: one augmentation at a time, whatever the thread.
_GLOBAL_RNG = threading.RLock()


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python's and NumPy's global RNGs for one call, restore them afterwards; one thread at a time.

    textattack's augmenters draw from ``random`` (none of them touches torch's RNG, which is left alone so
    that a model training on another thread keeps its own stream of dropout masks).
    """
    with _GLOBAL_RNG:
        saved = (random.getstate(), np.random.get_state())
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])


def _sorted_result(fn):
    def wrapper(*args, **kwargs):
        return sorted(fn(*args, **kwargs))

    return wrapper


def deterministic(transformation):
    """Make a textattack transformation's candidate lists independent of the hash seed (sorted), in place."""
    subs = getattr(transformation, "transformations", None)  # CompositeTransformation
    for t in subs or [transformation]:
        for name in ("_get_replacement_words", "_get_synonyms"):
            fn = getattr(t, name, None)
            if fn is not None and not getattr(fn, "_dsopt_sorted", False):
                wrapped = _sorted_result(fn)
                wrapped._dsopt_sorted = True
                setattr(t, name, wrapped)
    return transformation


def _sorted_eda_class():
    from textattack.augmentation.recipes import EasyDataAugmenter

    class SortedEDA(EasyDataAugmenter):
        """textattack's ``EasyDataAugmenter`` with the union of its four results sorted before the shuffle
        (textattack shuffles ``list(set(...))``, whose order depends on the hash seed); otherwise identical."""

        def augment(self, text):
            augmented = []
            for aug in (self.synonym_replacement, self.random_deletion, self.random_swap, self.random_insertion):
                augmented += aug.augment(text)
            augmented = sorted(set(augmented))
            random.shuffle(augmented)
            return augmented[: self.transformations_per_example]

    return SortedEDA


class _Stock:
    """A stock textattack augmenter used for one augmentation at a time (``transformations_per_example=1``)."""

    def __init__(self, augmenter, op: str):
        self.augmenter = augmenter
        self.op = op

    def augment_one(self, text: str, seed: int) -> tuple[str | None, str]:
        with seeded(seed):
            out = self.augmenter.augment(text)
        out = [t for t in out if t != text]
        return (out[0] if out else None), self.op


class _Fast:
    """A :class:`~dsopt.augment.swap.FastWordSwap` with a per-call ``random.Random(seed)``."""

    def __init__(self, swap, op: str):
        self.swap = swap
        self.op = op

    def augment_one(self, text: str, seed: int) -> tuple[str | None, str]:
        out, _ = self.swap.augment_one(text, random.Random(seed))
        return out, self.op

    def prefetch(self, texts) -> None:
        self.swap.prefetch(texts)


def build_augmenter(recipe: Recipe, *, nltk_data: str | os.PathLike, embedding=None):
    """The augmenter of ``recipe`` (``embedding``: a :class:`~dsopt.augment.embedding.DomainEmbedding`).

    ``nltk_data``: the NLTK data folder (``dsopt.data.nltk.ensure_nltk_data()``; ``dsopt data nltk``).
    WordNet recipes check that WordNet is there and say how to install it when it is not.
    """
    if not isinstance(recipe, Recipe):
        raise ParameterError("recipe", f"recipe must be a dsopt.augment.Recipe; got {recipe!r}")
    check_nltk_data(nltk_data, wordnet=recipe.needs_wordnet)
    import_textattack(nltk_data)
    from textattack.constraints.pre_transformation import StopwordModification

    from dsopt.augment.swap import FastWordSwap

    pct = float(recipe.pct_words_to_swap)
    with no_downloads():
        if recipe.name == "embedding_swap":
            from textattack.transformations import WordSwapEmbedding

            if embedding is None:
                raise ParameterError("embedding", "embedding_swap needs a DomainEmbedding (see DomainEmbedding.from_texts)")
            transformation = deterministic(WordSwapEmbedding(max_candidates=int(recipe.max_candidates),
                                                             embedding=embedding.to_textattack()))
            accept = _cosine_accept(embedding, float(recipe.min_cos_sim))
            return _Fast(FastWordSwap(transformation, [StopwordModification()], pct, accept=accept), "swap")
        if recipe.name == "wordnet_swap":
            from textattack.transformations import WordSwapWordNet

            return _Fast(FastWordSwap(deterministic(WordSwapWordNet()), [StopwordModification()], pct), "swap")
        from textattack.augmentation.recipes import SynonymInsertionAugmenter

        if recipe.name == "synonym_insertion":
            aug = SynonymInsertionAugmenter(pct_words_to_swap=pct, transformations_per_example=1)
            deterministic(aug.transformation)
            return _Stock(aug, "insert")
        eda = _sorted_eda_class()(pct_words_to_swap=pct, transformations_per_example=1)
        for sub in (eda.synonym_replacement, eda.random_deletion, eda.random_swap, eda.random_insertion):
            deterministic(sub.transformation)
        return _Stock(eda, "eda")


def _cosine_accept(embedding, min_cos_sim: float):
    """``WordEmbeddingDistance(min_cos_sim)``'s test (lower-cased; unknown words pass), from ``nn_sim_``."""
    sims: dict[tuple[str, str], float] = {}
    for i, w in enumerate(embedding.words_):
        for j, s in zip(embedding.nn_[i, 1:], embedding.nn_sim_[i, 1:]):
            sims[(w, embedding.words_[j])] = float(s)

    def accept(word: str, replacement: str) -> bool:
        a, b = word.lower(), replacement.lower()
        if a not in embedding.index_ or b not in embedding.index_:
            return True
        s = sims.get((a, b))
        if s is None:
            s = float(embedding.vectors_[embedding.index_[a]] @ embedding.vectors_[embedding.index_[b]])
        return s >= min_cos_sim

    return accept
