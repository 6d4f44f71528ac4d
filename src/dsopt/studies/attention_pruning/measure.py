"""Chapter 02's controlled measurement: accuracy vs heads removed per method and seed, cost, latency.

:func:`compare_methods` runs cached, resumable jobs through :func:`dsopt.studies.jobs.run_jobs`: MiniLM
is fine-tuned on Financial PhraseBank once per seed (:func:`train_seed`); every method ranks that model's
heads on the validation batches (``random`` draws one ranking from the seed) and for each fraction the
heads it ranks lowest are removed structurally from a copy (same outputs as masking, and faster to
evaluate) and its VALIDATION accuracy measured (:func:`sweep_method`). Choices are made there
(:func:`choices`); the test split is read once, for the chosen cells (:func:`test_heads`).
:func:`summarize` pairs everything over seeds. Costs come from the cost model; latencies are measured,
baseline and pruned model interleaved in the same run, every repeat kept.
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


#: Version of the run files of this study (bump when a job's output changes).
STUDY_VERSION = 2


def _classifier(seed, scale, finetune_epochs, finetune_lr, model_cache_dir, device):
    from dsopt.studies.attention_pruning.fixtures import trained_minilm_classifier

    return trained_minilm_classifier(scale=scale, seed=seed, epochs=finetune_epochs, lr=finetune_lr,
                                     cache_dir=model_cache_dir, device=device, progress=False)


def train_seed(seed: int, *, scale: str = "workshop", finetune_epochs: int = 1, finetune_lr: float = 3e-5,
               model_cache_dir: str | None = None, device: str | None = "cpu", threads: int | None = 1) -> dict:
    """Fine-tune MiniLM with ``seed`` (weights cached in ``model_cache_dir``); its unpruned accuracies (JSON-safe)."""
    with torch_threads(threads):
        clf = _classifier(seed, scale, finetune_epochs, finetune_lr, model_cache_dir, device)
        baseline = {"val_accuracy": accuracy(clf.model, clf.val_batches),
                    "test_accuracy": accuracy(clf.model, clf.test_batches)}
    info = {k: v for k, v in clf.info.items() if k not in ("cache_file", "cached")}
    return {"seed": seed, "baseline": baseline, "classifier": info}


def sweep_method(seed: int, method: str, *, fractions: Sequence[float], scale: str = "workshop",
                 finetune_epochs: int = 1, finetune_lr: float = 3e-5, model_cache_dir: str | None = None,
                 device: str | None = "cpu", threads: int | None = 1) -> dict:
    """One method on seed ``seed``'s model: ranked on validation, each fraction removed, VALIDATION accuracy.

    ``random`` draws one ranking seeded by ``seed``, so the random baseline has one draw per model. The
    test split is not touched here: it is read only for the choices (:func:`test_heads`).
    """
    with torch_threads(threads):
        clf = _classifier(seed, scale, finetune_epochs, finetune_lr, model_cache_dir, device)
        imps = importances_for(clf.model, [method], clf.val_batches, n_random_seeds=1, seed=seed)
        rows = accuracy_sweep(clf.model, {"val": clf.val_batches}, imps, fractions, progress=False)
    for r in rows:
        r.pop("seed")
        r["heads"] = {str(layer): list(hs) for layer, hs in r["heads"].items()}
    return {"seed": seed, "method": method, "rows": rows}


def test_heads(seed: int, head_sets: Sequence[Mapping], *, scale: str = "workshop", finetune_epochs: int = 1,
               finetune_lr: float = 3e-5, model_cache_dir: str | None = None, device: str | None = "cpu",
               threads: int | None = 1) -> dict:
    """Test accuracy of seed ``seed``'s model with each head set removed (the choices made on validation)."""
    with torch_threads(threads):
        clf = _classifier(seed, scale, finetune_epochs, finetune_lr, model_cache_dir, device)
        acc = [accuracy(pruned_copy(clf.model, {int(k): list(v) for k, v in heads.items()}), clf.test_batches)
               for heads in head_sets]
    return {"seed": seed, "test_accuracy": acc}


def choices(table: list[dict], kept: float = 0.98) -> list[tuple[str, float]]:
    """The (method, fraction) cells whose test accuracy is reported: per method its largest fraction keeping
    ``kept`` of the validation accuracy, and for the best method with none, its smallest fraction."""
    per = largest_fraction_kept(table, kept)
    cells = [(m, f) for m, f in per.items() if f > 0]
    best, f_best = best_method(table, kept)
    if f_best == 0:
        cells.append((best, min(r["fraction"] for r in table if r["method"] == best)))
    return cells


def compare_methods(seeds: Sequence[int], *, methods: Sequence[str], fractions: Sequence[float],
                    scale: str = "workshop", finetune_epochs: int = 1, finetune_lr: float = 3e-5, kept: float = 0.98,
                    cache_dir: str | None = None, workers: int | None = None, progress: bool = True) -> dict:
    """Every method on every seed's fine-tuned model, selection on validation, test read for the choices only.

    Three rounds of cached, resumable jobs (``run_jobs``, ``workers`` processes): :func:`train_seed` per seed,
    :func:`sweep_method` per (seed, method) (validation accuracy at every fraction; small jobs that keep
    every worker busy), then :func:`test_heads` per seed for the cells :func:`choices` picks on validation.
    Returns ``{"runs": [per seed: baseline, classifier, rows], "table": summarize(runs), "choices": [...]}``.
    """
    from dsopt.studies.jobs import cache_key, run_jobs

    if not seeds or not methods or not fractions:
        raise ParameterError("seeds", "seeds, methods and fractions must all be non-empty")
    model = {"scale": scale, "finetune_epochs": finetune_epochs, "finetune_lr": finetune_lr}
    common = {**model, "model_cache_dir": str(cache_dir) if cache_dir else None}
    fractions = [float(f) for f in fractions]
    seeds, methods = list(seeds), list(methods)
    run = {"cache_dir": cache_dir, "workers": workers, "progress": progress}
    trained = run_jobs(seeds, train_seed, lambda s: ((s,), common),
                       key=lambda s: cache_key("pruning_train", STUDY_VERSION, s, model), desc="fine-tuned models", **run)
    sweeps = run_jobs([(s, m) for s in seeds for m in methods], sweep_method,
                      lambda j: (j, {**common, "fractions": fractions}),
                      key=lambda j: cache_key("pruning_sweep", STUDY_VERSION, j, model, fractions),
                      desc="pruned models (validation)", **run)
    runs = [{**trained[s], "rows": [r for m in methods for r in sweeps[(s, m)]["rows"]]} for s in seeds]
    picked = choices(summarize(runs), kept)

    def heads(s):
        return [next(r["heads"] for r in sweeps[(s, m)]["rows"] if r["fraction"] == f) for m, f in picked]

    tested = run_jobs(seeds, test_heads, lambda s: ((s, heads(s)), common),
                      key=lambda s: cache_key("pruning_test", STUDY_VERSION, s, model, heads(s)),
                      desc="chosen pruned models (test)", **run) if picked else {}
    for r in runs:
        for (m, f), acc in zip(picked, tested[r["seed"]]["test_accuracy"] if picked else []):
            next(x for x in r["rows"] if x["method"] == m and x["fraction"] == f)["test_accuracy"] = acc
    return {"runs": runs, "table": summarize(runs), "choices": [[m, f] for m, f in picked]}


def summarize(runs: list[dict]) -> list[dict]:
    """One row per (method, fraction) over the seeds' models, paired by seed.

    ``val_accuracy``/``val_accuracy_sd``: validation accuracy mean and sd over seeds, ``val_kept`` = mean
    pruned / mean unpruned validation accuracy of the same models (what choices are made on). Cells chosen on
    validation also carry the test split (``tested``): ``accuracy``/``accuracy_sd`` and ``kept``. ``seeds`` and
    ``per_seed`` keep every seed's values, so a verdict pairs them and can be recomputed from the table alone.
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
                        "baseline_val_accuracy": base_val, "baseline_test_accuracy": base_test}
            row = {"method": method, "fraction": f, "heads_removed": cells[0]["heads_removed"],
                   "heads_total": cells[0]["heads_total"], "n_seeds": len(runs), "seeds": seeds, "per_seed": per_seed,
                   "tested": all("test_accuracy" in c for c in cells)}
            row["val_accuracy"], row["val_accuracy_sd"] = mean_sd(per_seed["val_accuracy"])
            row["val_kept"] = row["val_accuracy"] / float(np.mean(base_val))
            if row["tested"]:
                per_seed["test_accuracy"] = [c["test_accuracy"] for c in cells]
                row["accuracy"], row["accuracy_sd"] = mean_sd(per_seed["test_accuracy"])
                row["kept"] = row["accuracy"] / float(np.mean(base_test))
            out.append(row)
    return out


def baseline_accuracy(table: list[dict], split: str = "val") -> float:
    """Mean unpruned accuracy over the table's seeds (``split`` "val" or "test")."""
    return float(np.mean(table[0]["per_seed"][f"baseline_{split}_accuracy"]))


def format_table(table: list[dict], baseline_accuracy: float) -> str:
    """Validation accuracy vs heads removed as Markdown: one column per method (mean +- sd over seeds) with the
    share of the unpruned validation accuracy kept; cells chosen on validation add their test share kept."""
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
            test = f"; **test {100 * r['kept']:.1f} %**" if r.get("tested") else ""
            parts.append(format_mean_sd(r["val_accuracy"], r["val_accuracy_sd"], scale=100, digits=1)
                         + f" ({100 * r['val_kept']:.1f} %{test})")
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
    """Head sets worth timing, from one seed's ``run`` (``compare_methods(...)["runs"][i]``): ``best`` (the method chosen on
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
