"""What chapter 02 measures on the first seed's fine-tuned MiniLM once the comparison has trained it.

The comparison (:func:`~dsopt.studies.attention_pruning.measure.compare_methods`) runs in the job
runner's worker processes; this second step needs the model itself (importance maps to draw, the
article's rule applied inside it, the cost model, latency timed on this machine), so it runs in the
calling process. As one function it can run after the comparison in the background (a notebook with
a frontend: dsopt_widgets' ``BackgroundJob.then``) or right after it (headless).
"""
from __future__ import annotations

from typing import Sequence

from dsopt.pruning import article_rule, model_cost
from dsopt.studies.attention_pruning.fixtures import trained_minilm_classifier
from dsopt.studies.attention_pruning.measure import (
    accuracy,
    cost_rows,
    importances_for,
    latency_rows,
    majority_share,
    verdict_heads,
)


def measure_classifier(study: dict, *, methods: Sequence[str], seed: int = 0, scale: str = "workshop",
                       finetune_epochs: int = 1, finetune_lr: float = 3e-5, article_threshold: float = 0.1,
                       latency_batch_sizes: Sequence[int] = (1, 32), latency_lengths: Sequence[int] = (32, 128),
                       latency_repeats: int = 5, threads: int | None = 1, device: str | None = "cpu",
                       cache_dir: str | None = None) -> dict:
    """Importance maps, the article's rule, cost model and latency on seed ``seed``'s fine-tuned MiniLM.

    ``study`` is :func:`compare_methods`'s result (its first run's head sets are the ones timed). The
    classifier comes from ``cache_dir`` (the comparison trained and stored it). Latencies are timed
    with ``threads`` torch threads in this process: a person using the notebook meanwhile adds noise,
    so clean timings come from a headless run (``dsopt run 02``).
    """
    clf = trained_minilm_classifier(scale=scale, seed=seed, epochs=finetune_epochs, lr=finetune_lr,
                                    cache_dir=cache_dir, device=device, progress=False)
    importances = importances_for(clf.model, list(methods), clf.val_batches, n_random_seeds=1, seed=seed)
    with article_rule(clf.model, article_threshold) as rule_log:
        article_accuracy = accuracy(clf.model, clf.test_batches)
    timed = verdict_heads(study["runs"][0], study["table"])  # the first seed's model: this classifier
    every_head = {i: list(range(a.n_heads_original)) for i, a in enumerate(clf.model.attention_layers())}
    costs = cost_rows(clf.model, {**timed, "every head": every_head}, 1, latency_lengths)
    latency = latency_rows(clf.model, timed, latency_batch_sizes, latency_lengths, repeats=latency_repeats,
                           threads=threads, progress=False) if timed else []
    return {
        "study": study, "classifier": clf, "info": clf.info, "importances": importances,
        "article_accuracy": article_accuracy, "rows_kept": rule_log.kept_fraction,
        "majority_share": majority_share(clf.test_batches), "timed": timed, "costs": costs,
        "share": {r["length"]: r["attention_share"] for r in costs},
        "model_costs": {T: model_cost(clf.model, 1, T) for T in latency_lengths}, "latency": latency,
    }
