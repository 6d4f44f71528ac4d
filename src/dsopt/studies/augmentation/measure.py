"""Chapter 03's controlled measurement: augmentation vs none, by training-set size, learner and seed.

For every seed, a training set of k examples per class is drawn from the fixed train split (nested:
the 2-per-class set is inside the 5-per-class set of the same seed; another seed draws other
examples). Every arm at that (seed, size) trains the same learner from the same initial weights on
the same originals; the arms differ only in the augmentations added: none, or each recipe with 1 or
3 augmentations per example that pass the MiniLM similarity filter. The model (epoch, or the probe's
C) is chosen on the fixed validation split; macro-F1 is measured once on the fixed test split.

Everything expensive is a job of :func:`dsopt.studies.jobs.run_jobs` (cached, resumable, stored
beside the notebook, spawned workers with one torch thread each):

1. ``augment_job`` per (seed, size, recipe): the subset's augmentations (up to the largest count
   asked for) with their MiniLM similarity to the original -- the threshold is applied afterwards,
   so moving it recomputes nothing;
2. ``probe_job`` per (seed, size, arm): the MiniLM linear probe;
3. ``train_transformer`` (and ``finetune_minilm`` at scale "full") per (seed, size, arm).

MiniLM vectors are shared between processes through a disk cache (``CACHE/vectors``), so a sentence
embedded for the filter is not embedded again for the probe.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from dsopt.augment.recipes import RECIPES, Recipe
from dsopt.studies.augmentation.learners import LEARNERS, finetune_minilm, probe, train_transformer
from dsopt.studies.jobs import cache_key, run_jobs
from dsopt.util.validation import ParameterError, check_choice, check_number

FULL = "full"  # the whole train split as a "size"
#: What each scale runs (``dsopt run 03 -p scale full`` for the complete grid, meant for a GPU).
GRIDS = {
    "tiny": {"sizes": (2,), "recipes": ("embedding_swap",), "n_augs": (3,), "learners": ("probe", "transformer"),
             "epochs": 3, "min_steps": 0},
    "workshop": {"sizes": (2, 5, 10), "recipes": ("embedding_swap", "wordnet_swap"), "n_augs": (3,),
                 "learners": ("probe", "transformer"), "epochs": 20, "min_steps": 240},
    "full": {"sizes": (2, 5, 10, 20, FULL), "recipes": RECIPES, "n_augs": (1, 3),
             "learners": ("probe", "transformer", "finetune"), "epochs": 30, "min_steps": 400, "finetune_epochs": 10},
}
BASELINE = "none"
DATASETS = ("symptom2disease", "sst2")


def arm_label(recipe: str | None, n_aug: int = 0) -> str:
    """``"none"`` or ``"embedding_swap x3"``."""
    return BASELINE if recipe is None else f"{recipe} x{n_aug}"


def draw_subset(y: np.ndarray, per_class: int | str, seed: int) -> np.ndarray:
    """Indices of ``per_class`` examples of every class (all rows for ``"full"``), drawn with ``seed``.

    Nested by construction: each class's rows are permuted once per seed and the first k are taken.
    A class with fewer rows than k gives all of its rows.
    """
    y = np.asarray(y)
    if per_class == FULL:
        return np.arange(len(y))
    k = check_number("size", per_class, low=1, integer=True)
    rng = np.random.default_rng([int(seed), 3])
    out = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        out.append(rows[rng.permutation(len(rows))[:k]])
    return np.sort(np.concatenate(out))


# -- worker-side state: one MiniLM and one textattack per process ----------------------------------
_VECTORS: dict[str, object] = {}


def vectors_for(cache_dir: str | os.PathLike | None):
    """The process's :class:`~dsopt.augment.encode.MiniLMVectors` for ``cache_dir`` (built once)."""
    from dsopt.augment.encode import MiniLMVectors

    key = str(cache_dir)
    if key not in _VECTORS:
        _VECTORS[key] = MiniLMVectors(cache_dir)
    return _VECTORS[key]


def stopwords(nltk_data) -> frozenset:
    """textattack's stopword list (NLTK's English stopwords), after the offline import."""
    from dsopt.augment.offline import import_textattack

    import_textattack(nltk_data)
    import nltk

    return frozenset(nltk.corpus.stopwords.words("english"))


def augment_texts(texts: Sequence[str], recipe: dict, n: int, seed: int, *, nltk_data: str,
                  vectors_dir: str | None = None, cache_dir: str | None = None, progress: bool = False):
    """``n`` augmentations per text (scored, unfiltered) and the pipeline; the domain embedding comes
    from ``texts`` themselves (the training set: nothing outside it)."""
    from dsopt.augment.embedding import DomainEmbedding
    from dsopt.augment.pipeline import AugmentationPipeline, SimilarityFilter

    recipe = Recipe(**recipe)
    vectors = vectors_for(vectors_dir)
    embedding = None
    if recipe.needs_embedding:
        embedding = DomainEmbedding.from_texts(texts, vectors.words, k=recipe.max_candidates,
                                               stopwords=stopwords(nltk_data))
    pipe = AugmentationPipeline(recipe, nltk_data=nltk_data, embedding=embedding, filter=SimilarityFilter(vectors, -1.0),
                                cache_dir=cache_dir)
    return pipe.augment(list(texts), n, seed, progress=progress), pipe


def augment_job(texts: list[str], recipe: dict, n: int, seed: int, *, nltk_data: str, vectors_dir: str | None = None,
                cache_dir: str | None = None) -> dict:
    """Run function: the augmentations of a training subset with their similarity (JSON)."""
    rows, pipe = augment_texts(texts, recipe, n, seed, nltk_data=nltk_data, vectors_dir=vectors_dir, cache_dir=cache_dir)
    return {"items": [[{"text": a.text, "op": a.op, "similarity": a.similarity} for a in row] for row in rows],
            "vocabulary": len(pipe.embedding) if pipe.embedding is not None else None}


def probe_job(train_texts: list[str], train_y: list[int], val_texts: list[str], val_y: list[int],
              test_texts: list[str], test_y: list[int], *, vectors_dir: str | None = None) -> dict:
    """Run function: the MiniLM linear probe on one training set (embeddings from the shared cache)."""
    v = vectors_for(vectors_dir)
    return probe(v.sentences(train_texts), train_y, v.sentences(val_texts), val_y, v.sentences(test_texts), test_y)


def learn_job(learner: str, *args, **kwargs) -> dict:
    """Run function of every learner (one worker pool serves the probe and the trained models)."""
    fn = {"probe": probe_job, "transformer": train_transformer, "finetune": finetune_minilm}[learner]
    return fn(*args, **kwargs)


@dataclass
class Setup:
    """What every arm shares: the fixed split, the NLTK data folder, the cache folder."""

    dataset: str
    splits: object
    nltk_data: Path
    cache_dir: Path | None

    @property
    def class_names(self) -> list[str]:
        return list(self.splits.train.class_names)

    def sub(self, name: str) -> str | None:
        return str(self.cache_dir / name) if self.cache_dir is not None else None


def setup(dataset: str = "symptom2disease", *, nltk_data, cache_dir=None) -> Setup:
    """The fixed split (``load_splits(dataset, seed=0)``) and where the caches go."""
    from dsopt.data import load_splits

    check_choice("dataset", dataset, DATASETS)
    return Setup(dataset, load_splits(dataset, seed=0), Path(nltk_data), Path(cache_dir) if cache_dir else None)


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, default=lambda x: np.asarray(x).tolist()).encode()).hexdigest()[:16]


def _grid(scale, sizes, recipes, n_augs, learners, epochs, seeds) -> dict:
    check_choice("scale", scale, tuple(GRIDS))
    g = GRIDS[scale]
    sizes = list(g["sizes"] if sizes is None else sizes)
    recipes = list(g["recipes"] if recipes is None else recipes)
    n_augs = sorted(int(check_number("n_augs", n, low=1, high=10, integer=True))
                    for n in (g["n_augs"] if n_augs is None else n_augs))
    learners = list(g["learners"] if learners is None else learners)
    epochs = int(g["epochs"] if epochs is None else check_number("epochs", epochs, low=1, integer=True))
    seeds = [int(check_number("seeds", x, low=0, integer=True)) for x in seeds]
    for r in recipes:
        check_choice("recipes", r, RECIPES)
    for lrn in learners:
        check_choice("learners", lrn, LEARNERS)
    for size in sizes:
        if size != FULL:
            check_number("sizes", size, low=1, integer=True)
    if not sizes or not learners or not seeds or (recipes and not n_augs):
        raise ParameterError("sizes", "sizes, learners, seeds (and n_augs with recipes) must not be empty")
    return {"sizes": sizes, "recipes": recipes, "n_augs": n_augs, "learners": learners, "epochs": epochs, "seeds": seeds,
            "min_steps": int(g.get("min_steps", 0)), "finetune_epochs": int(g.get("finetune_epochs", 10))}


def run_study(s: Setup, *, scale: str = "workshop", seeds: Sequence[int] = (0, 1, 2), sizes=None, recipes=None,
              n_augs=None, learners=None, epochs: int | None = None, threshold: float = 0.8,
              pct_words_to_swap: float = 0.1, workers: int | None = None, progress: bool = True) -> dict:
    """Run the grid; return ``{"runs", "table", "augmentation", "examples", "grid"}`` (JSON-safe).

    Defaults come from :data:`GRIDS` for ``scale``. Every run row has learner, size, seed, arm, recipe,
    n_aug, the training-set size used, augmentations made/kept and ``test_macro_f1``.
    """
    from dsopt.studies.augmentation.summary import summarize

    g = _grid(scale, sizes, recipes, n_augs, learners, epochs, seeds)
    threshold = float(check_number("threshold", threshold, low=-1.0, high=1.0))
    train, val, test = s.splits
    subsets = {(seed, size): draw_subset(train.y, size, seed) for seed in g["seeds"] for size in g["sizes"]}

    # 1. augmentations per (seed, size, recipe), scored; kept = similarity >= threshold
    aug_jobs = [(seed, size, r) for (seed, size) in subsets for r in g["recipes"]]
    n_max = max(g["n_augs"]) if g["n_augs"] else 0

    def aug_call(job):
        seed, size, r = job
        texts = [train.texts[i] for i in subsets[(seed, size)]]
        recipe = Recipe(r, pct_words_to_swap=pct_words_to_swap).to_dict()
        return (texts, recipe, n_max, seed), {"nltk_data": str(s.nltk_data), "vectors_dir": s.sub("vectors"),
                                               "cache_dir": s.sub("augment")}

    def aug_key(job):
        seed, size, r = job
        return cache_key("augmentation/augment", s.dataset, seed, size, r, pct_words_to_swap, n_max,
                         _digest([train.texts[i] for i in subsets[(seed, size)]]))

    if workers is None and scale == "tiny":
        workers = 1  # a handful of short jobs: in this process, no worker start-up (imports, MiniLM) to pay
    augmented = run_jobs(aug_jobs, augment_job, aug_call, key=aug_key, cache_dir=s.sub("runs"), workers=workers,
                         progress=progress, desc="augment") if aug_jobs else {}

    arms, aug_rows = [], []
    for (seed, size), idx in subsets.items():
        texts, y = [train.texts[i] for i in idx], [int(v) for v in train.y[idx]]
        arms.append({"seed": seed, "size": size, "arm": BASELINE, "recipe": None, "n_aug": 0, "texts": texts, "y": y,
                     "n_originals": len(texts), "made": 0, "kept": 0})
        for r in g["recipes"]:
            items = augmented[(seed, size, r)]["items"]
            sims = [it["similarity"] for row in items for it in row if it["text"] is not None]
            aug_rows.append({"seed": seed, "size": size, "recipe": r, "originals": len(texts),
                             "made": len(sims), "kept": int(sum(x >= threshold for x in sims)),
                             "similarity_mean": float(np.mean(sims)) if sims else None,
                             "similarities": [round(float(x), 4) for x in sims],
                             "vocabulary": augmented[(seed, size, r)]["vocabulary"]})
            for n in g["n_augs"]:
                t2, y2, made, kept = list(texts), list(y), 0, 0
                for label, row in zip(y, items):
                    for it in row[:n]:
                        if it["text"] is None:
                            continue
                        made += 1
                        if it["similarity"] >= threshold:
                            kept += 1
                            t2.append(it["text"])
                            y2.append(label)
                arms.append({"seed": seed, "size": size, "arm": arm_label(r, n), "recipe": r, "n_aug": n,
                             "texts": t2, "y": y2, "n_originals": len(texts), "made": made, "kept": kept})

    runs = _learner_runs(s, arms, g, scale=scale, workers=workers, progress=progress)
    grid = {"dataset": s.dataset, "scale": scale, **g, "threshold": threshold, "pct_words_to_swap": pct_words_to_swap,
            "n_train_split": len(train), "n_val": len(val), "n_test": len(test), "n_classes": len(s.class_names)}
    return {"runs": runs, "table": summarize(runs), "augmentation": aug_rows, "grid": grid,
            "examples": _examples(train, subsets, augmented, g, threshold)}


def _examples(train, subsets, augmented, g, threshold, per_recipe: int = 2) -> list[dict]:
    """A few augmentations of the first seed's smallest subset, per recipe (for the notebook)."""
    out = []
    if not g["recipes"]:
        return out
    seed, size = g["seeds"][0], g["sizes"][0]
    idx = subsets[(seed, size)]
    for r in g["recipes"]:
        items = augmented[(seed, size, r)]["items"]
        for j in range(min(per_recipe, len(idx))):
            row = [dict(it, kept=it["text"] is not None and it["similarity"] >= threshold) for it in items[j]]
            out.append({"recipe": r, "original": train.texts[idx[j]], "augmentations": row})
    return out


def _meta(a: dict) -> dict:
    keys = ("seed", "size", "arm", "recipe", "n_aug", "n_originals", "made", "kept")
    return {**{k: a[k] for k in keys}, "n_train": len(a["texts"])}


def _learner_runs(s: Setup, arms: list[dict], g: dict, *, scale: str, workers: int | None,
                  progress: bool) -> list[dict]:
    from dsopt.studies.augmentation.learners import epochs_for

    learners = g["learners"]
    _, val, test = s.splits
    n_classes = len(s.class_names)
    fixed = (list(val.texts), val.y.tolist(), list(test.texts), test.y.tolist())
    fixed_digest = _digest(*fixed)
    jobs = [(lrn, j) for lrn in learners for j in range(len(arms))]

    def call(job):
        learner, j = job
        a = arms[j]
        if learner == "probe":
            return (learner, a["texts"], a["y"], *fixed), {"vectors_dir": s.sub("vectors")}
        kw = {"n_classes": n_classes, "n_originals": a["n_originals"], "seed": a["seed"],
              "epochs": g["finetune_epochs"] if learner == "finetune" else epochs_for(a["n_originals"], g["epochs"],
                                                                                      g["min_steps"])}
        if learner == "transformer":
            kw["scale"] = scale
        return (learner, a["texts"], a["y"], *fixed), kw

    def key(job):
        learner, j = job
        a = arms[j]
        trained = learner != "probe"
        budget = call(job)[1]["epochs"] if trained else None
        return cache_key("augmentation", learner, s.dataset, scale if trained else None, budget,
                         a["seed"], a["size"], a["arm"], _digest(a["texts"], a["y"]), fixed_digest)

    done = run_jobs(jobs, learn_job, call, key=key, cache_dir=s.sub("runs"), workers=workers, progress=progress,
                    desc="train and evaluate")
    return [{"learner": learner, **_meta(arms[j]), **done[(learner, j)]} for learner, j in jobs]


def domain_embedding(s: Setup, texts: Sequence[str] | None = None, k: int = 50):
    """The domain MiniLM embedding of ``texts`` (default: the whole train split), word vectors cached."""
    from dsopt.augment.embedding import DomainEmbedding

    texts = list(s.splits.train.texts if texts is None else texts)
    return DomainEmbedding.from_texts(texts, vectors_for(s.sub("vectors")).words, k=k, stopwords=stopwords(s.nltk_data))


def demo(s: Setup, texts: Sequence[str], recipes: Sequence[str] = RECIPES, *, n: int = 2, seed: int = 0,
         pct_words_to_swap: float = 0.1, threshold: float = 0.8, embedding=None) -> list[dict]:
    """Augmentations of known sentences with each recipe: ``[{"recipe", "original", "augmentations": [...]}]``.

    ``embedding`` (for ``embedding_swap``): default :func:`domain_embedding` of the train split.
    """
    from dsopt.augment.pipeline import AugmentationPipeline, SimilarityFilter

    out = []
    for r in recipes:
        recipe = Recipe(r, pct_words_to_swap=pct_words_to_swap)
        emb = None
        if recipe.needs_embedding:
            emb = embedding if embedding is not None else domain_embedding(s)
        pipe = AugmentationPipeline(recipe, nltk_data=str(s.nltk_data), embedding=emb,
                                    filter=SimilarityFilter(vectors_for(s.sub("vectors")), threshold),
                                    cache_dir=s.sub("augment"))
        for text, row in zip(texts, pipe.augment(list(texts), n, seed)):
            out.append({"recipe": r, "original": text, "augmentations": row})
    return out


def format_demo(rows: list[dict]) -> str:
    """Plain text: each augmentation with its changed words in [brackets], similarity (2 decimals), kept or not."""
    lines = []
    for row in rows:
        lines.append(f"{row['recipe']}: {row['original']}")
        for a in row["augmentations"]:
            if a.text is None:
                lines.append("   (no augmentation possible)")
                continue
            marked = " ".join(f"[{t}]" if c else t for t, c in a.tokens)
            lines.append(f"   {a.similarity:.2f} {'kept    ' if a.kept else 'filtered'} {marked}")
    return "\n".join(lines)
