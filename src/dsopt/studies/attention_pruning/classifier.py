"""What chapter 02 measures on the first seed's fine-tuned MiniLM once the comparison has chosen its head sets.

The comparison (:func:`~dsopt.studies.attention_pruning.measure.compare_methods`) trains and sweeps the
seeds' models; this second step measures the first seed's model itself: importance maps to draw, the
article's rule applied inside it, the cost model, and latency timed on this machine. It is two cached,
stored jobs like the comparison's (``run_jobs``), so a notebook that finds its runs stored needs neither the
fine-tuned weights (90 MB, minutes to train) nor minutes of timing:

- :func:`first_model_measures`: deterministic results (spot-checked like every stored run);
- :func:`first_model_latency`: the timings (``verify=False``: a timing is a fact about the machine that
  made it; the run file records which, and the chapter prints it).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence

from dsopt.pruning import article_rule, model_cost
from dsopt.pruning.cost import Cost
from dsopt.studies.attention_pruning.measure import (
    STUDY_VERSION,
    _classifier,
    accuracy,
    cost_rows,
    importances_for,
    latency_rows,
    majority_share,
    verdict_heads,
)
from dsopt.util.threads import torch_threads


def _head_sets(timed: Mapping[str, Mapping]) -> dict[str, dict[int, list[int]]]:
    """Head sets with integer layer keys (a run file's JSON keys are strings)."""
    return {label: {int(layer): list(heads) for layer, heads in hs.items()} for label, hs in timed.items()}


def first_model_measures(seed: int, timed: Mapping[str, Mapping], *, methods: Sequence[str],
                         article_threshold: float, lengths: Sequence[int], scale: str = "workshop",
                         finetune_epochs: int = 1, finetune_lr: float = 3e-5, model_cache_dir: str | None = None,
                         device: str | None = "cpu", threads: int | None = 1) -> dict:
    """Importance maps, the article's rule and the cost model on seed ``seed``'s fine-tuned MiniLM (JSON-safe).

    ``timed`` are the head sets the comparison chose (label -> layer -> heads); the cost rows add "every head".
    """
    with torch_threads(threads):
        clf = _classifier(seed, scale, finetune_epochs, finetune_lr, model_cache_dir, device)
        importances = importances_for(clf.model, list(methods), clf.val_batches, n_random_seeds=1, seed=seed)
        with article_rule(clf.model, article_threshold) as rule_log:
            article_accuracy = accuracy(clf.model, clf.test_batches)
        every_head = {i: list(range(a.n_heads_original)) for i, a in enumerate(clf.model.attention_layers())}
        costs = cost_rows(clf.model, {**_head_sets(timed), "every head": every_head}, 1, lengths)
        model_costs = [model_cost(clf.model, 1, T).as_dict() for T in lengths]
    info = {k: v for k, v in clf.info.items() if k not in ("cache_file", "cached")}  # where it was loaded: not a result
    return {
        "info": info, "article_accuracy": article_accuracy, "rows_kept": rule_log.kept_fraction,
        # one layer x head grid per method (``random``: its one draw, seeded by ``seed``)
        "importances": {k: (v[0] if isinstance(v, list) else v).tolist() for k, v in importances.items()},
        "majority_share": majority_share(clf.test_batches), "costs": costs, "model_costs": model_costs,
    }


def first_model_latency(seed: int, timed: Mapping[str, Mapping], *, batch_sizes: Sequence[int],
                        lengths: Sequence[int], repeats: int, scale: str = "workshop", finetune_epochs: int = 1,
                        finetune_lr: float = 3e-5, model_cache_dir: str | None = None, device: str | None = "cpu",
                        threads: int | None = 1) -> dict:
    """Latency of seed ``seed``'s model and of each head set in ``timed`` removed, timed here (see latency_rows)."""
    clf = _classifier(seed, scale, finetune_epochs, finetune_lr, model_cache_dir, device)
    return {"latency": latency_rows(clf.model, _head_sets(timed), batch_sizes, lengths, repeats=repeats,
                                    threads=threads, progress=False)}


def measure_classifier(study: dict, *, methods: Sequence[str], seed: int = 0, scale: str = "workshop",
                       finetune_epochs: int = 1, finetune_lr: float = 3e-5, article_threshold: float = 0.1,
                       latency_batch_sizes: Sequence[int] = (1, 32), latency_lengths: Sequence[int] = (32, 128),
                       latency_repeats: int = 5, threads: int | None = 1, device: str | None = "cpu",
                       cache_dir: str | None = None, progress: bool = False) -> dict:
    """Importance maps, the article's rule, cost model and latency on seed ``seed``'s fine-tuned MiniLM.

    ``study`` is :func:`compare_methods`'s result (its first run's head sets are the ones timed). Both jobs
    come from ``cache_dir`` or the stored runs when they hold them; otherwise the classifier comes from
    ``cache_dir`` (the comparison trained and stored it) and they run in this process. Latencies are timed
    with ``threads`` torch threads: a person using the notebook meanwhile adds noise, so clean timings come
    from a headless run (``dsopt run 02``).
    """
    from dsopt.studies.jobs import cache_key, run_jobs

    timed = verdict_heads(study["runs"][0], study["table"])  # the first seed's model: this classifier
    model = {"scale": scale, "finetune_epochs": finetune_epochs, "finetune_lr": finetune_lr}
    common = {**model, "model_cache_dir": str(cache_dir) if cache_dir else None, "device": device,
              "threads": threads}
    lengths = [int(t) for t in latency_lengths]
    run = {"cache_dir": cache_dir, "progress": progress, "workers": 1}
    measures = {"methods": list(methods), "article_threshold": float(article_threshold), "lengths": lengths}
    measured = run_jobs([seed], first_model_measures, lambda s: ((s, timed), {**common, **measures}),
                        key=lambda s: cache_key("pruning_first_model", STUDY_VERSION, s, model, timed, measures),
                        desc="first model: importances, rule, costs", **run)[seed]
    latency = {"batch_sizes": [int(b) for b in latency_batch_sizes], "lengths": lengths,
               "repeats": int(latency_repeats)}
    timing = run_jobs([seed], first_model_latency, lambda s: ((s, timed), {**common, **latency}),
                      key=lambda s: cache_key("pruning_latency", STUDY_VERSION, s, model, timed, latency,
                                              threads, device),
                      desc="first model: latency", verify=False, **run)[seed] if timed else {"latency": []}
    costs = measured["costs"]
    fields = Cost.__dataclass_fields__
    return {
        "study": study, "info": measured["info"], "importances": measured["importances"],
        "article_accuracy": measured["article_accuracy"], "rows_kept": measured["rows_kept"],
        "majority_share": measured["majority_share"], "timed": timed, "costs": costs,
        "share": {r["length"]: r["attention_share"] for r in costs},
        "model_costs": {c["length"]: Cost(**{k: c[k] for k in fields}) for c in measured["model_costs"]},
        "latency": timing["latency"],
    }
