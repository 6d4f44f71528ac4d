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
"""
from __future__ import annotations

import contextlib
import json
import os
import random
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
        d = {"name": self.name, "pct": round(float(self.pct_words_to_swap), 6), "textattack": "0.3.11", "v": 1}
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


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's global RNGs for one call; restore their states afterwards."""
    import torch

    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


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
            transformation = WordSwapEmbedding(max_candidates=int(recipe.max_candidates),
                                               embedding=embedding.to_textattack())
            accept = _cosine_accept(embedding, float(recipe.min_cos_sim))
            return _Fast(FastWordSwap(transformation, [StopwordModification()], pct, accept=accept), "swap")
        if recipe.name == "wordnet_swap":
            from textattack.transformations import WordSwapWordNet

            return _Fast(FastWordSwap(WordSwapWordNet(), [StopwordModification()], pct), "swap")
        from textattack.augmentation.recipes import EasyDataAugmenter, SynonymInsertionAugmenter

        if recipe.name == "synonym_insertion":
            return _Stock(SynonymInsertionAugmenter(pct_words_to_swap=pct, transformations_per_example=1), "insert")
        return _Stock(EasyDataAugmenter(pct_words_to_swap=pct, transformations_per_example=1), "eda")


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
