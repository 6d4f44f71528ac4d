"""Chapter 02's controlled measurement: accuracy vs heads removed per method, cost, latency, verdict.

Every method ranks the same trained model's heads on the validation batches; for each fraction the
heads it ranks lowest are removed structurally from a copy (same outputs as masking, and faster to
evaluate) and test accuracy is measured. ``random`` runs with several seeds. The baseline (nothing
removed) is measured once. Costs come from the cost model; latencies are measured, baseline and
pruned model interleaved in the same run, and compared with the cost model's FLOPs reduction.
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
from dsopt.util.validation import check_number


def accuracy(model, batches) -> float:
    """Accuracy of ``model`` over ``(inputs, targets)`` batches (eval mode, no grad)."""
    return evaluate(model, batches, F.cross_entropy, next(model.parameters()).device)["accuracy"]


def accuracy_sweep(model, batches, importances: Mapping[str, torch.Tensor | Sequence[torch.Tensor]],
                   fractions: Sequence[float], *, per_layer: bool = False, progress: bool = True) -> list[dict]:
    """One row per (method, seed index, fraction): heads removed and test accuracy of the pruned copy.

    ``importances[method]`` is a grid, or a list of grids (one per seed, e.g. for ``random``).
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
        rows.append({"method": method, "seed": s, "fraction": f, "heads_removed": count_heads(heads),
                     "heads_total": total, "accuracy": accuracy(pruned, batches), "heads": heads})
        del pruned
    return rows


def summarize(rows: list[dict], baseline_accuracy: float) -> list[dict]:
    """Mean +- sd over seeds per (method, fraction); ``kept`` = accuracy / baseline accuracy."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        for f in sorted({r["fraction"] for r in rows if r["method"] == method}):
            sel = [r for r in rows if r["method"] == method and r["fraction"] == f]
            acc = np.array([r["accuracy"] for r in sel])
            out.append({"method": method, "fraction": f, "heads_removed": sel[0]["heads_removed"],
                        "heads_total": sel[0]["heads_total"], "n_seeds": len(sel),
                        "accuracy": float(acc.mean()), "accuracy_sd": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                        "kept": float(acc.mean() / baseline_accuracy)})
    return out


def format_table(table: list[dict], baseline_accuracy: float) -> str:
    """Accuracy vs heads removed as Markdown: one column per method (mean +- sd for several seeds)."""
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
            sd = f" +- {100 * r['accuracy_sd']:.1f}" if r["n_seeds"] > 1 else ""
            parts.append(f"{100 * r['accuracy']:.1f}{sd} ({100 * r['kept']:.1f} %)")
        out.append(f"| {any_row['heads_removed']}/{any_row['heads_total']} ({100 * f:.0f} %) | " + " | ".join(parts) + " |")
    return "\n".join(out)


def largest_fraction_kept(table: list[dict], kept: float = 0.98) -> dict[str, float]:
    """Per method: the largest measured fraction whose mean accuracy is >= ``kept`` x baseline (0 if none)."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in table):
        ok = [r["fraction"] for r in table if r["method"] == method and r["kept"] >= kept]
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

    The baseline and the pruned copies are timed interleaved in the same run. ``ratio`` = measured
    latency reduction / the cost model's whole-model FLOPs reduction (1.0 = as fast as FLOPs promise).
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


def best_method(table: list[dict], kept: float = 0.98) -> tuple[str, float]:
    """(method, fraction): the method that removes the largest measured fraction with mean accuracy
    >= ``kept`` x baseline (ties: higher accuracy kept there). Fraction 0 when none does."""
    per = largest_fraction_kept(table, kept)
    at = {(r["method"], r["fraction"]): r["kept"] for r in table}
    m = max(per, key=lambda k: (per[k], at.get((k, per[k]), 0.0)))
    return m, per[m]


def verdict_heads(rows: list[dict], table: list[dict], kept: float = 0.98) -> dict[str, HeadSet]:
    """Head sets worth timing: ``best`` (the best method at its largest fraction keeping ``kept``) and
    ``largest`` (the same method at the largest measured fraction), when they remove any head."""
    method, f = best_method(table, kept)
    f_max = max(r["fraction"] for r in rows if r["method"] == method)
    pick = {r["fraction"]: r["heads"] for r in rows if r["method"] == method and r["seed"] == 0}
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
