"""The panel's "try it": the small transformer on one training-set size, with and without augmentation.

:func:`prepare` draws the size's subset for the seed (as the study does), augments it with the panel's
settings (domain embedding from the subset, the similarity filter at the threshold) and returns both
training sets; :func:`live_trainers` builds the two seeded runs (same originals, same initial weights,
same budget), not started, with the study's own wiring (:func:`~dsopt.studies.augmentation.learners.
transformer_trainer`). The panel starts them in the background and draws both validation curves.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dsopt.augment.recipes import Recipe
from dsopt.studies.augmentation.learners import test_loader, transformer_trainer
from dsopt.studies.augmentation.measure import FULL, Setup, augment_texts, draw_subset
from dsopt.util.validation import check_number

SIZES = (1, 2, 5, 10, 20, FULL)


@dataclass
class Prepared:
    """Both training sets of a "try it" run and what the augmentation did."""

    size: int | str
    seed: int
    settings: dict
    texts: list[str]
    y: list[int]
    aug_texts: list[str]
    aug_y: list[int]
    made: int
    kept: int
    examples: list = field(default_factory=list, repr=False)

    @property
    def n_originals(self) -> int:
        return len(self.texts)


def check_settings(recipe: str, pct_words_to_swap: float, n_aug: int, threshold: float, seed: int,
                   size: int | str = 5) -> dict:
    """Validated "try it" settings (ParameterError names the parameter and its range)."""
    r = Recipe(recipe, pct_words_to_swap=float(check_number("pct_words_to_swap", pct_words_to_swap, low=0.0,
                                                             high=1.0, low_inclusive=False)))
    if size != FULL:
        check_number("size", size, low=1, high=10_000, integer=True)
    return {"recipe": r.name, "pct_words_to_swap": r.pct_words_to_swap,
            "n_aug": int(check_number("n_aug", n_aug, low=1, high=10, integer=True)),
            "threshold": float(check_number("threshold", threshold, low=-1.0, high=1.0)),
            "seed": int(check_number("seed", seed, low=0, high=2**31 - 1, integer=True)), "size": size}


def prepare(s: Setup, *, size: int | str, seed: int, recipe: str, pct_words_to_swap: float, n_aug: int,
            threshold: float) -> Prepared:
    """The subset of ``size`` per class for ``seed`` and its filtered augmentations (cached on disk)."""
    settings = check_settings(recipe, pct_words_to_swap, n_aug, threshold, seed, size)
    train = s.splits.train
    idx = draw_subset(train.y, size, seed)
    texts, y = [train.texts[i] for i in idx], [int(v) for v in train.y[idx]]
    rows, _ = augment_texts(texts, Recipe(recipe, pct_words_to_swap=settings["pct_words_to_swap"]).to_dict(),
                            settings["n_aug"], seed, nltk_data=str(s.nltk_data), vectors_dir=s.sub("vectors"),
                            cache_dir=s.sub("augment"))
    aug_texts, aug_y, made, kept = list(texts), list(y), 0, 0
    for label, row in zip(y, rows):
        for a in row:
            if a.text is None:
                continue
            made += 1
            if a.similarity >= settings["threshold"]:
                kept += 1
                aug_texts.append(a.text)
                aug_y.append(label)
    return Prepared(size, seed, settings, texts, y, aug_texts, aug_y, made, kept, examples=rows[:3])


def live_trainers(s: Setup, p: Prepared, *, epochs: int, scale: str = "workshop"):
    """``(baseline, augmented)`` Trainers (not started) and their test loaders, seeded alike."""
    _, val, test = s.splits
    kw = {"n_classes": len(s.class_names), "n_originals": p.n_originals, "seed": p.seed, "scale": scale,
          "epochs": epochs}
    base, base_metrics, base_table = transformer_trainer(p.texts, p.y, val.texts, val.y, **kw)
    aug, aug_metrics, aug_table = transformer_trainer(p.aug_texts, p.aug_y, val.texts, val.y, **kw)
    return {"baseline": (base, base_metrics, test_loader(test.texts, test.y, base_table)),
            "augmented": (aug, aug_metrics, test_loader(test.texts, test.y, aug_table))}
