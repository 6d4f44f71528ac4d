"""dsopt's driver for textattack word swaps: textattack's search, with candidate lists looked up once.

textattack's ``Augmenter`` makes one augmentation like this: while fewer than
``max(int(pct_words_to_swap * n_words), 1)`` words are swapped, build *every* candidate sentence (each
modifiable word x each replacement), run every constraint on every one of them, pick one at random.
With 50 embedding neighbours and 20 words that is ~1,000 ``AttackedText`` objects and ~1,000
constraint checks per swapped word, for every sentence, every time.

:class:`FastWordSwap` draws from exactly the same distribution -- a uniformly random (word index,
replacement) pair among those that pass, each index swapped at most once (``RepeatModification``),
stopwords left alone (``StopwordModification``), replacements that the word-embedding-distance
constraint would accept -- but computes each word's passing replacements once, keeps them in a
dictionary for every later sentence, and builds one ``AttackedText`` per augmentation. The word
swaps themselves are textattack's (``WordSwapEmbedding``, ``WordSwapWordNet``): dsopt only drives them.
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

from dsopt.util.validation import check_number


class FastWordSwap:
    """Augment with a textattack ``WordSwap`` transformation and pre-transformation constraints.

    Parameters
    ----------
    transformation: a textattack ``WordSwap`` (its ``_get_replacement_words(word)`` proposes words).
    constraints: textattack pre-transformation constraints (e.g. ``StopwordModification()``); a
        ``RepeatModification`` is implied (each word is swapped at most once per augmentation).
    pct_words_to_swap: share of the sentence's words to swap (at least one), as textattack's.
    accept: optional ``accept(word, replacement) -> bool`` applied to each proposed replacement (the
        word-embedding-distance check: the same test textattack's ``WordEmbeddingDistance`` makes).
    """

    def __init__(self, transformation, constraints: Sequence = (), pct_words_to_swap: float = 0.1,
                 accept: Callable[[str, str], bool] | None = None):
        self.transformation = transformation
        self.constraints = [c for c in constraints if type(c).__name__ != "RepeatModification"]
        self.pct_words_to_swap = check_number("pct_words_to_swap", pct_words_to_swap, low=0.0, high=1.0)
        self.accept = accept
        self._candidates: dict[str, list[str]] = {}
        self.lookups = 0  # replacement lists computed (cache misses)

    def candidates(self, word: str) -> list[str]:
        """Passing replacements of ``word`` (cached): proposed by the transformation, != word, accepted."""
        hit = self._candidates.get(word)
        if hit is None:
            self.lookups += 1
            proposed = self.transformation._get_replacement_words(word)
            hit = [r for r in dict.fromkeys(proposed)
                   if r != word and (self.accept is None or self.accept(word, r))]
            self._candidates[word] = hit
        return hit

    def prefetch(self, texts: Sequence[str]) -> None:
        """Look up the replacements of every word of ``texts`` at once (one pass over a batch)."""
        from textattack.shared import AttackedText

        for text in texts:
            for w in AttackedText(text).words:
                self.candidates(w)

    def augment_one(self, text: str, rng: random.Random) -> tuple[str | None, list[int]]:
        """One augmentation of ``text`` and the swapped word indices; ``(None, [])`` if nothing can change."""
        from textattack.shared import AttackedText

        at = AttackedText(text)
        words = at.words
        if not words:
            return None, []
        n_swap = max(int(self.pct_words_to_swap * len(words)), 1)
        allowed = set(range(len(words)))
        for c in self.constraints:
            allowed &= c(at, self.transformation)
        options = {i: self.candidates(words[i]) for i in sorted(allowed)}
        options = {i: c for i, c in options.items() if c}
        swapped: dict[int, str] = {}
        while len(swapped) < n_swap and options:
            # uniform over (index, replacement) pairs == index weighted by its number of replacements
            idx = list(options)
            i = rng.choices(idx, weights=[len(options[j]) for j in idx])[0]
            swapped[i] = rng.choice(options.pop(i))
        if not swapped:
            return None, []
        order = sorted(swapped)
        new = at.replace_words_at_indices(order, [swapped[i] for i in order])
        return new.printable_text(), order
