"""Chapter 02's controlled measurement: accuracy vs heads removed per method and seed, cost, latency.

One job per seed (:func:`run_seed`, run cached and resumable through :func:`dsopt.studies.jobs.run_jobs`
by :func:`compare_methods`): MiniLM is fine-tuned on Financial PhraseBank with that seed, every method
ranks its heads on the validation batches (``random`` draws one ranking from the seed), and for each
fraction the heads it ranks lowest are removed structurally from a copy (same outputs as masking, and
faster to evaluate); the pruned copy's accuracy is measured on validation (for choices) and on test
(reported). :func:`summarize` pairs them over seeds. Costs come from the cost model; latencies are
measured, baseline and pruned model interleaved in the same run, every repeat kept.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dsopt.core.trainer import evaluate
from dsopt.pruning.cost import model_cost, reduction
from dsopt.pruning.heads import HeadSet, count_heads, grid_shape
from dsopt.pruning.latency import compare_latency
from dsopt.pruning.removal import pruned_copy
from dsopt.pruning.selection import select_heads
from dsopt.stats import format_mean_sd, mean_sd
from dsopt.util.threads import torch_threads
from dsopt.util.validation import ParameterError, check_number


def accuracy(model, batches) -> float:
    """Accuracy of ``model`` over ``(inputs, targets)`` batches (eval mode, no grad)."""
    return evaluate(model, batches, F.cross_entropy, next(model.parameters()).device)["accuracy"]


def accuracy_sweep(model, batches, importances: Mapping[str, torch.Tensor | Sequence[torch.Tensor]],
                   fractions: Sequence[float], *, per_layer: bool = False, progress: bool = True) -> list[dict]:
    """One row per (method, seed index, fraction): heads removed and accuracy of the pruned copy.

    ``importances[method]`` is a grid, or a list of grids (one per seed, e.g. for ``random``).
    ``batches``: one list (rows get ``accuracy``) or a mapping split -> batches (rows get
    ``{split}_accuracy`` for each, e.g. ``val_accuracy`` and ``test_accuracy`` from one pruned copy).
    """
    fractions = [float(check_number("fractions", f, low=0.0, high=1.0)) for f in fractions]
    jobs = []
    for method, imp in importances.items():
        grids = [imp] if isinstance(imp, torch.Tensor) else list(imp)
        jobs += [(method, s, g, f) for s, g in enumerate(grids) for f in fractions]
    total = math.prod(grid_shape(model))
    rows = []
    for method, s, grid, f in tqdm(jobs, desc="pruned models", disable=not progress):
        heads = select_heads(grid, fraction=f, per_layer=per_layer)
        pruned = pruned_copy(model, heads)
        acc = ({f"{split}_accuracy": accuracy(pruned, b) for split, b in batches.items()}
               if isinstance(batches, Mapping) else {"accuracy": accuracy(pruned, batches)})
        rows.append({"method": method, "seed": s, "fraction": f, "heads_removed": count_heads(heads),
                     "heads_total": total, **acc, "heads": heads})
        del pruned
    return rows


#: Version of the per-seed run files (bump when run_seed's output changes).
STUDY_VERSION = 1


def run_seed(seed: int, *, methods: Sequence[str], fractions: Sequence[float], scale: str = "workshop",
             finetune_epochs: int = 1, finetune_lr: float = 3e-5, model_cache_dir: str | None = None,
             device: str | None = "cpu", threads: int | None = 1) -> dict:
    """One fine-tuned MiniLM (``seed``): every method's pruned copies, validation and test accuracy (JSON-safe).

    ``random`` draws one ranking seeded by ``seed``, so the random baseline has as many draws as there are
    models. The fine-tuned weights are cached in ``model_cache_dir`` (see ``trained_minilm_classifier``).
    """
    from dsopt.studies.attention_pruning.fixtures import trained_minilm_classifier

    with torch_threads(threads):
        clf = trained_minilm_classifier(scale=scale, seed=seed, epochs=finetune_epochs, lr=finetune_lr,
                                        cache_dir=model_cache_dir, device=device, progress=False)
        imps = importances_for(clf.model, methods, clf.val_batches, n_random_seeds=1, seed=seed)
        rows = accuracy_sweep(clf.model, {"val": clf.val_batches, "test": clf.test_batches}, imps, fractions,
                              progress=False)
        baseline = {"val_accuracy": accuracy(clf.model, clf.val_batches),
                    "test_accuracy": accuracy(clf.model, clf.test_batches)}
    info = {k: v for k, v in clf.info.items() if k != "cache_file"}
    for r in rows:
        r.pop("seed")
        r["heads"] = {str(layer): list(hs) for layer, hs in r["heads"].items()}
    return {"seed": seed, "baseline": baseline, "classifier": info, "rows": rows}


def compare_methods(seeds: Sequence[int], *, methods: Sequence[str], fractions: Sequence[float],
                    scale: str = "workshop", finetune_epochs: int = 1, finetune_lr: float = 3e-5,
                    cache_dir: str | None = None, workers: int | None = None, progress: bool = True) -> dict:
    """:func:`run_seed` for every seed through ``run_jobs`` (cached per seed, resumable, ``workers`` processes).

    Returns ``{"runs": [per-seed results], "table": summarize(runs)}``.
    """
    from dsopt.studies.jobs import cache_key, run_jobs

    if not seeds or not methods or not fractions:
        raise ParameterError("seeds", "seeds, methods and fractions must all be non-empty")
    kwargs = {"methods": list(methods), "fractions": [float(f) for f in fractions], "scale": scale,
              "finetune_epochs": finetune_epochs, "finetune_lr": finetune_lr,
              "model_cache_dir": str(cache_dir) if cache_dir else None}
    settings = {k: v for k, v in kwargs.items() if k != "model_cache_dir"}
    done = run_jobs(list(seeds), run_seed, lambda s: ((s,), kwargs),
                    key=lambda s: cache_key("pruning_study", STUDY_VERSION, s, settings),
                    cache_dir=cache_dir, workers=workers, progress=progress, desc="fine-tuned models")
    runs = [done[s] for s in seeds]
    return {"runs": runs, "table": summarize(runs)}


def summarize(runs: list[dict]) -> list[dict]:
    """One row per (method, fraction) over the seeds' models, paired by seed.

    ``accuracy``/``accuracy_sd``: test accuracy mean and sd over seeds; ``val_accuracy``/``val_accuracy_sd``
    the same on validation; ``kept`` and ``val_kept``: mean pruned accuracy / mean unpruned accuracy of the
    same models; ``seeds`` and ``per_seed`` keep every seed's pruned and unpruned accuracies (a verdict
    pairs them and can be recomputed from the table alone).
    """
    if not runs:
        raise ParameterError("runs", "summarize needs at least one seed's run")
    seeds = [r["seed"] for r in runs]
    base_val = [r["baseline"]["val_accuracy"] for r in runs]
    base_test = [r["baseline"]["test_accuracy"] for r in runs]
    out = []
    first = runs[0]["rows"]
    for method in dict.fromkeys(r["method"] for r in first):
        for f in sorted({r["fraction"] for r in first if r["method"] == method}):
            cells = [next(x for x in run["rows"] if x["method"] == method and x["fraction"] == f) for run in runs]
            per_seed = {"val_accuracy": [c["val_accuracy"] for c in cells],
                        "test_accuracy": [c["test_accuracy"] for c in cells],
                        "baseline_val_accuracy": base_val, "baseline_test_accuracy": base_test}
            row = {"method": method, "fraction": f, "heads_removed": cells[0]["heads_removed"],
                   "heads_total": cells[0]["heads_total"], "n_seeds": len(runs), "seeds": seeds, "per_seed": per_seed}
            row["accuracy"], row["accuracy_sd"] = mean_sd(per_seed["test_accuracy"])
            row["val_accuracy"], row["val_accuracy_sd"] = mean_sd(per_seed["val_accuracy"])
            row["kept"] = row["accuracy"] / float(np.mean(base_test))
            row["val_kept"] = row["val_accuracy"] / float(np.mean(base_val))
            out.append(row)
    return out


def baseline_accuracy(table: list[dict], split: str = "test") -> float:
    """Mean unpruned accuracy over the table's seeds (``split`` "test" or "val")."""
    return float(np.mean(table[0]["per_seed"][f"baseline_{split}_accuracy"]))


def format_table(table: list[dict], baseline_accuracy: float) -> str:
    """Test accuracy vs heads removed as Markdown: one column per method (mean +- sd over seeds), with the
    share of the unpruned accuracy kept on test and, for the choices, on validation."""
    methods = list(dict.fromkeys(r["method"] for r in table))
    fractions = sorted({r["fraction"] for r in table})
    cell = {(r["method"], r["fraction"]): r for r in table}
    out = ["| heads removed | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods),
           "| 0 (baseline) | " + " | ".join(f"{100 * baseline_accuracy:.1f}" for _ in methods) + " |"]
    for f in fractions:
        any_row = next(cell[(m, f)] for m in methods if (m, f) in cell)
        parts = []
        for m in methods:
            r = cell.get((m, f))
            if r is None:
                parts.append("")
                continue
            kept = f" (test {100 * r['kept']:.1f} %" + (f", val {100 * r['val_kept']:.1f} %)" if "val_kept" in r else ")")
            parts.append(format_mean_sd(r["accuracy"], r["accuracy_sd"], scale=100, digits=1) + kept)
        out.append(f"| {any_row['heads_removed']}/{any_row['heads_total']} ({100 * f:.0f} %) | " + " | ".join(parts) + " |")
    return "\n".join(out)


def largest_fraction_kept(table: list[dict], kept: float = 0.98, key: str = "val_kept") -> dict[str, float]:
    """Per method: the largest measured fraction whose ``key`` (validation by default) is >= ``kept`` (0 if none)."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in table):
        ok = [r["fraction"] for r in table if r["method"] == method and r[key] >= kept]
        out[method] = max(ok, default=0.0)
    return out


def cost_rows(model, heads_by_label: Mapping[str, HeadSet], batch_size: int, lengths: Sequence[int]) -> list[dict]:
    """Cost-model reductions (params, attention and whole-model FLOPs) of each head set at each length."""
    rows = []
    for T in lengths:
        base = model_cost(model, batch_size, T)
        for label, heads in heads_by_label.items():
            after = model_cost(model, batch_size, T, prune=heads)
            rows.append({"label": label, "length": T, "batch_size": batch_size, "heads_removed": count_heads(heads),
                         "heads_left": after.heads, "attention_share": base.attention_flops / base.total_flops,
                         **{f"{k}_cut": v for k, v in reduction(base, after).items()}})
    return rows


def latency_rows(model, heads_by_label: Mapping[str, HeadSet], batch_sizes: Sequence[int], lengths: Sequence[int],
                 *, repeats: int = 5, warmup: int = 2, threads: int | None = 1, progress: bool = True) -> list[dict]:
    """Measured latency of the model and of each pruned copy at every (batch size, length).

    The baseline and the pruned copies are timed interleaved in the same run; every repeat is kept
    (``baseline_times_ms``, ``pruned_times_ms``: repeat i of both was timed back to back, so they pair).
    ``ratio`` = measured median latency reduction / the cost model's whole-model FLOPs reduction.
    """
    models = {"baseline": model, **{label: pruned_copy(model, h) for label, h in heads_by_label.items()}}
    rows = []
    grid = [(b, t) for b in batch_sizes for t in lengths]
    for b, t in tqdm(grid, desc="latency", disable=not progress):
        lat = compare_latency(models, b, t, repeats=repeats, warmup=warmup, threads=threads)
        base_cost = model_cost(model, b, t)
        for label, heads in heads_by_label.items():
            flops_cut = reduction(base_cost, model_cost(model, b, t, prune=heads))["total_flops"]
            cut = 1.0 - lat[label].median_s / lat["baseline"].median_s
            rows.append({"label": label, "batch_size": b, "length": t, "heads_removed": count_heads(heads),
                         "baseline_ms": lat["baseline"].median_ms, "pruned_ms": lat[label].median_ms,
                         "baseline_times_ms": [1000 * x for x in lat["baseline"].times_s],
                         "pruned_times_ms": [1000 * x for x in lat[label].times_s],
                         "latency_cut": cut, "flops_cut": flops_cut,
                         "ratio": cut / flops_cut if flops_cut > 0 else float("nan"),
                         "threads": lat[label].threads, "repeats": repeats, "device": lat[label].device})
    return rows


def importances_for(model, methods: Sequence[str], batches, *, n_random_seeds: int = 3, seed: int = 0
                    ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """Importance grids per method on ``batches``; ``random`` gets ``n_random_seeds`` grids (seed, seed+1, ...).

    The attention-based methods share one recorded pass.
    """
    from dsopt.pruning.importance import attention_statistics, gradient_importance, random_importance

    out: dict = {}
    stats = None
    for m in methods:
        if m == "random":
            out[m] = [random_importance(model, seed + s) for s in range(n_random_seeds)]
        elif m == "gradient":
            out[m] = gradient_importance(model, batches)
        else:
            stats = stats if stats is not None else attention_statistics(model, batches)
            out[m] = stats[m]
    return out


def best_method(table: list[dict], kept: float = 0.98, key: str = "val_kept") -> tuple[str, float]:
    """(method, fraction) chosen on validation: the method that removes the largest measured fraction
    with ``key`` (validation accuracy kept) >= ``kept`` (ties: more kept there). Fraction 0 when none does."""
    per = largest_fraction_kept(table, kept, key)
    at = {(r["method"], r["fraction"]): r[key] for r in table}
    m = max(per, key=lambda k: (per[k], at.get((k, per[k]), 0.0)))
    return m, per[m]


def verdict_heads(run: dict, table: list[dict], kept: float = 0.98) -> dict[str, HeadSet]:
    """Head sets worth timing, from one seed's ``run`` (:func:`run_seed`): ``best`` (the method chosen on
    validation at its largest fraction keeping ``kept``) and ``largest`` (the same method at the largest
    measured fraction), when they remove any head."""
    method, f = best_method(table, kept)
    rows = run["rows"]
    f_max = max(r["fraction"] for r in rows if r["method"] == method)
    pick = {r["fraction"]: {int(k): list(v) for k, v in r["heads"].items()} for r in rows if r["method"] == method}
    out = {}
    if f > 0 and count_heads(pick[f]):
        out["best"] = pick[f]
    if f_max > f and count_heads(pick[f_max]):
        out["largest"] = pick[f_max]
    return out


def format_latency(rows: list[dict]) -> str:
    """Latency rows as Markdown: measured milliseconds, measured and cost-model reductions, their ratio."""
    out = ["| model | heads removed | batch x length | baseline (ms) | pruned (ms) | latency cut (measured) | "
           "FLOPs cut (cost model) | measured / ideal |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['label']} | {r['heads_removed']} | {r['batch_size']} x {r['length']} | {r['baseline_ms']:.1f} | "
                   f"{r['pruned_ms']:.1f} | {100 * r['latency_cut']:.1f} % | {100 * r['flops_cut']:.1f} % | "
                   f"{r['ratio']:.2f} |")
    return "\n".join(out)


def format_costs(rows: list[dict]) -> str:
    """Cost-model rows as Markdown (fractions removed)."""
    out = ["| head set | heads left | length | params cut | non-embedding params cut | attention FLOPs cut | "
           "whole-model FLOPs cut |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['label']} | {r['heads_left']} | {r['length']} | {100 * r['params_cut']:.1f} % | "
                   f"{100 * r['non_embedding_params_cut']:.1f} % | {100 * r['attention_flops_cut']:.1f} % | "
                   f"{100 * r['total_flops_cut']:.1f} % |")
    return "\n".join(out)


def majority_share(batches) -> float:
    """Accuracy of always answering the most frequent class of ``batches`` (the floor to compare with)."""
    y = torch.cat([t for _, t in batches])
    return float(torch.bincount(y).max()) / len(y)
