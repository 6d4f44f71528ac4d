"""Chapter 03: augmented sentences per second, dsopt's embedding swap vs textattack's stock search, as a ratio.

Both sides use the same transformation (textattack's ``WordSwapEmbedding``, 50 candidates, over the
same domain MiniLM embedding of Symptom2Disease's training vocabulary), the same constraints
(``RepeatModification``, ``StopwordModification``, ``WordEmbeddingDistance(min_cos_sim=0.8)`` -- what
``EmbeddingAugmenter`` uses, with its GloVe swapped for the domain embedding), 10 % of the words, one
augmentation per call, driven the same way: the same sentences, one call per (sentence, k), each seeded
with the same derived seed. Baseline: textattack's ``Augmenter`` (it builds every candidate sentence
and checks every constraint on each, for every swapped word). dsopt: ``AugmentationPipeline`` with
``FastWordSwap`` (replacement lists computed once per word, in one pass over each batch, and kept;
one ``AttackedText`` per augmentation), no disk cache (a second pass from the disk cache is reported
apart). Target: ratio >= 10. Also: the similarity filter's cost per sentence (MiniLM embedding of
original + augmentation, batched, no cache; and with every vector cached). Medians over repeats,
alternating sides so machine load hits both alike; ``uptime`` printed before and after.
Run: python benchmarks/augmentation.py [--sentences 30] [--n 2] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time

import report


def load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"loadavg {os.getloadavg()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=30, help="training sentences augmented per timing")
    ap.add_argument("--n", type=int, default=2, help="augmentations per sentence")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import importlib.util

    if importlib.util.find_spec("textattack") is None:
        report.skip("augmentation", "textattack is not installed (the baseline side)")

    import torch

    torch.set_num_threads(args.threads)
    print("load before:", load())
    from dsopt.augment import AugmentationPipeline, Recipe, SimilarityFilter
    from dsopt.augment.encode import MiniLMVectors
    from dsopt.augment.pipeline import derive_seed
    from dsopt.augment.recipes import seeded
    from dsopt.data import load_splits
    from dsopt.data.nltk import ensure_nltk_data
    from dsopt.studies.augmentation.measure import domain_embedding, setup

    nltk_data = ensure_nltk_data()
    s = setup(nltk_data=nltk_data, cache_dir=None)
    embedding = domain_embedding(s)
    texts = load_splits("symptom2disease", seed=0).train.texts[: args.sentences]
    recipe = Recipe("embedding_swap", pct_words_to_swap=0.1, max_candidates=50, min_cos_sim=0.8)

    from textattack.augmentation import Augmenter  # after setup(): textattack is imported offline by then
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.transformations import WordSwapEmbedding

    def stock_run() -> tuple[float, int]:
        ta = embedding.to_textattack()  # fresh: textattack's per-embedding distance caches start empty too
        aug = Augmenter(WordSwapEmbedding(max_candidates=50, embedding=ta),
                        [RepeatModification(), StopwordModification(), WordEmbeddingDistance(embedding=ta, min_cos_sim=0.8)],
                        pct_words_to_swap=0.1, transformations_per_example=1)
        key = recipe.key(embedding.fingerprint_)
        made = 0
        t0 = time.perf_counter()
        for text in texts:
            for k in range(args.n):
                with seeded(derive_seed(0, key, text, k, 0)):
                    made += bool([t for t in aug.augment(text) if t != text])
        return time.perf_counter() - t0, made

    def dsopt_run(cache_dir=None) -> tuple[float, int]:
        pipe = AugmentationPipeline(recipe, nltk_data=nltk_data, embedding=embedding, cache_dir=cache_dir)
        pipe.augmenter  # built outside the timing, like the stock Augmenter's constructor is
        t0 = time.perf_counter()
        rows = pipe.raw(texts, args.n, seed=0)
        return time.perf_counter() - t0, sum(it["text"] is not None for row in rows for it in row)

    times = {"textattack Augmenter": [], "dsopt FastWordSwap": []}
    made = {}
    for r in range(args.repeats):
        order = list(times) if r % 2 == 0 else list(times)[::-1]
        for side in order:
            dt, m = stock_run() if side.startswith("textattack") else dsopt_run()
            times[side].append(dt)
            made[side] = m
    with tempfile.TemporaryDirectory() as tmp:
        dsopt_run(tmp)
        cached = statistics.median(dsopt_run(tmp)[0] for _ in range(args.repeats))
    n_aug = len(texts) * args.n
    print(f"sentences={len(texts)} augmentations/sentence={args.n} candidates=50 min_cos_sim=0.8 pct=0.1 "
          f"threads={args.threads} repeats={args.repeats} vocabulary={len(embedding)} words")
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, m in med.items():
        print(f"  {k:24s} {n_aug / m:9.1f} augmented sentences/s  ({1000 * m / n_aug:8.2f} ms each; "
              f"{made[k]} of {n_aug} calls changed the sentence)")
    print(f"  dsopt, from its disk cache {n_aug / cached:9.1f} augmented sentences/s")
    ratio = med["textattack Augmenter"] / med["dsopt FastWordSwap"]
    print(f"  ratio dsopt / textattack = {ratio:.1f}x  (target >= 10x)")
    report.record("augmentation", "augmented sentences/s, dsopt / textattack",
                  baseline=(n_aug / med["textattack Augmenter"], "sentences/s", f"textattack Augmenter, median of {args.repeats}"),
                  measured=(n_aug / med["dsopt FastWordSwap"], "sentences/s", f"dsopt FastWordSwap, median of {args.repeats}"),
                  ratio=ratio, target=">= 10",
                  repeats=[a / b for a, b in zip(times["textattack Augmenter"], times["dsopt FastWordSwap"])])

    # the similarity filter: one batched MiniLM pass over originals + augmentations
    pipe = AugmentationPipeline(recipe, nltk_data=nltk_data, embedding=embedding)
    rows = pipe.raw(texts, args.n, seed=0)
    pairs = [(t, it["text"]) for t, row in zip(texts, rows) for it in row if it["text"]]
    cold = []
    for _ in range(args.repeats):
        f = SimilarityFilter(MiniLMVectors(None), 0.8)
        t0 = time.perf_counter()
        f.scores([a for a, _ in pairs], [b for _, b in pairs])
        cold.append(time.perf_counter() - t0)
    warm_f = SimilarityFilter(MiniLMVectors(None), 0.8)
    warm_f.scores([a for a, _ in pairs], [b for _, b in pairs])
    t0 = time.perf_counter()
    warm_f.scores([a for a, _ in pairs], [b for _, b in pairs])
    warm = time.perf_counter() - t0
    print(f"  similarity filter: {1000 * statistics.median(cold) / len(pairs):.2f} ms per augmented sentence "
          f"(MiniLM, batched, nothing cached; {len(pairs)} pairs), {1000 * warm / len(pairs):.3f} ms with the vectors cached")
    print("load after:", load())


if __name__ == "__main__":
    main()
