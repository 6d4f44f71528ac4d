"""Chapter 04's controlled measurement: loss-weighting schemes on imbalanced real tasks.

Every scheme gets the same task, model, AdamW settings, epoch budget, seeds and model selection;
only the per-sample loss weights differ. The weighted loss only trains: the epoch kept is the one
with the best validation PR-AUC of the model's plain predictions, and everything reported comes
from :func:`dsopt.metrics.binary.binary_report` on the test split, every recall with its operating point
(threshold 0.5, precision >= 0.8, false-positive rate <= 1 %). Each setting is measured at the
data's natural class ratio and at a fraud-like ratio made by subsampling the minority class of
the TRAIN split (validation and test keep the natural ratio). Runs are cached as JSON (atomic
writes), so an interrupted comparison resumes where it stopped.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from dsopt.metrics.binary import binary_report
from dsopt.stats import format_mean_sd, mean_sd
from dsopt.studies.jobs import cache_key, run_jobs
from dsopt.studies.study import DATA, TRAINING, Study
from dsopt.util.threads import torch_threads
from dsopt.util.validation import ParameterError, check_number
from dsopt.weighting import (
    article_weight_range,
    class_balanced_class_weights,
    inverse_frequency_class_weights,
    make_scheme,
)

__all__ = ["THRESHOLD", "PRECISION_TARGET", "FPR_TARGET", "ULB_FRAUD_COUNTS", "study_schemes", "build_trainer",
           "live_trainer", "INTERACTIVE_EPOCHS", "run_one", "compare_schemes", "summarize", "format_table",
           "article_vs_imbalance", "ratio_label", "task_epochs"]

#: Operating points of every reported recall (and the file format version of cached runs).
THRESHOLD, PRECISION_TARGET, FPR_TARGET = 0.5, 0.8, 0.01
STUDY_VERSION = 1
#: ULB credit-card fraud set (Kaggle "mlg-ulb/creditcardfraud"): 284,807 transactions, 492 frauds.
ULB_FRAUD_COUNTS = (284_807 - 492, 492)
METRICS = ("roc_auc", "pr_auc", "recall_at_threshold", "recall_at_precision", "recall_at_fpr",
           "balanced_accuracy", "precision_at_threshold")


def study_schemes(*, article_readings: Sequence[str] = ("probability", "logit"), gamma: float = 2.0,
                  alpha: float | None = 0.25, beta: float = 0.9999) -> dict[str, tuple[str, dict]]:
    """The compared schemes: ``label -> (scheme name, params)``.

    Focal uses the paper's best gamma=2, alpha=0.25 (alpha goes to the rare class 1, as in Lin et al.).
    Class-balanced uses beta=0.9999: with a few thousand examples per class, beta=0.999 saturates both
    effective numbers near 1/(1-beta)=1,000 and gives almost uniform weights, while 0.9999 sits between
    uniform and inverse frequency at both the natural and a 100:1 ratio (Cui et al. tried 0.9-0.9999).
    """
    out = {"unweighted": ("none", {})}
    for reading in article_readings:
        out[f"article ({reading})"] = ("article", {"confidence": reading})
    out[f"focal (gamma={gamma:g}, alpha={alpha})"] = ("focal", {"gamma": gamma, "alpha": alpha})
    out[f"class-balanced (beta={beta:g})"] = ("class_balanced", {"beta": beta})
    out["inverse frequency"] = ("inverse_frequency", {})
    for name, params in out.values():
        make_scheme(name, **params)  # validate now, not in a worker
    return out


def ratio_label(ratio: float | None) -> str:
    """``None`` -> "natural", 100 -> "100:1"."""
    return "natural" if ratio is None else f"{ratio:g}:1"


# ----------------------------------------------------------------------------- one run
@functools.lru_cache(maxsize=8)
def _task(name: str, scale: str, seed: int, ratio: float | None):
    from dsopt.data.tasks import make_task

    return make_task(name, scale=scale, seed=seed, imbalance_ratio=ratio)


def run_one(task: str, scheme: str, params: Mapping[str, Any] | None = None, *, epochs: int, seed: int,
            scale: str = "workshop", imbalance_ratio: float | None = None, lr: float = 1e-3,
            weight_decay: float = 0.01, threads: int | None = 1, device: str | None = None) -> dict:
    """Train ``task`` with ``WeightedLoss(scheme, params)``; return curves and the test report.

    The epoch kept is the best by validation PR-AUC of the plain predictions (never the weighted
    loss). ``threads``: torch CPU threads for this run (restored afterwards); one is fastest for
    these small models and keeps results independent of the number of workers.
    """
    with torch_threads(threads):
        return _run_one(task, scheme, dict(params or {}), epochs=epochs, seed=seed, scale=scale,
                        ratio=imbalance_ratio, lr=lr, weight_decay=weight_decay, device=device)


def build_trainer(task, scheme: str, params: Mapping[str, Any] | None = None, *, epochs: int, seed: int,
                  lr: float = 1e-3, weight_decay: float = 0.01, keep_best: str | None = None,
                  device: str | None = None, callbacks: Sequence = ()):
    """The chapter's run on ``task``: a fresh seeded model, AdamW, the loss weighted by ``scheme``.

    The scheme and its parameters are live knobs (a :class:`~dsopt.weighting.WeightingCallback`);
    validation recall per class, PR-AUC and ROC-AUC are recorded every epoch (``keep_best`` keeps the
    best epoch's weights by that metric). Global RNGs, the loader's shuffling generator and the
    initial weights are all seeded from ``seed`` here, so the same call gives the same run.
    """
    from dsopt.core.seeding import seed_everything
    from dsopt.core.trainer import Trainer
    from dsopt.metrics.per_class import ClassMetricsCallback
    from dsopt.weighting import WeightedLoss, WeightingCallback

    epochs = check_number("epochs", epochs, low=1, integer=True)
    seed_everything(seed)
    task.train_loader.generator.manual_seed(seed)  # a cached task replays the same batch order
    model = task.make_model()
    loss = WeightedLoss(class_counts=task.class_counts)
    weighting = WeightingCallback(loss, task.class_counts, scheme=scheme, **dict(params or {}))
    metrics = ClassMetricsCallback(task.val_loader, positive=1, keep_best=keep_best)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return Trainer(model, opt, loss, task.train_loader, None, max_epochs=epochs,
                   callbacks=[weighting, metrics, *callbacks], device=device, progress=False)


#: Epochs of the live run in JupyterLab (the panel's budget knob starts here): long enough to steer for
#: a few minutes at each scale. Headless runs use the notebook's ``live_epochs``.
INTERACTIVE_EPOCHS = {"tiny": 200, "workshop": 40, "full": 40}


def live_trainer(task, scheme: str = "article", params: Mapping[str, Any] | None = None, *, epochs: int, seed: int,
                 control_schedule=()):
    """The live run of the chapter's panel: :func:`build_trainer` with ``scheme`` in force, replaying
    ``control_schedule`` (an exported session) at the steps it was applied.

    The panel calls it again (same task and seed) for Restart; ``dsopt run 04 -p control_schedule``
    builds the same run headless, so an exported session replays to the same Recorder history.
    """
    from dsopt.core.controls import replay_callback

    return build_trainer(task, scheme, params, epochs=epochs, seed=seed,
                         callbacks=[replay_callback(list(control_schedule or []))])


def _run_one(task_name, scheme, params, *, epochs, seed, scale, ratio, lr, weight_decay, device) -> dict:
    from dsopt.metrics.per_class import ClassMetricsCallback, predict_proba

    t0 = time.perf_counter()
    task = _task(task_name, scale, seed, None if ratio is None else float(ratio))
    trainer = build_trainer(task, scheme, params, epochs=epochs, seed=seed, lr=lr, weight_decay=weight_decay,
                            keep_best="pr_auc", device=device)
    metrics = next(c for c in trainer.callbacks if isinstance(c, ClassMetricsCallback))
    rec = trainer.fit()
    best_epoch = metrics.restore_best(trainer.model)
    y, probs = predict_proba(trainer.model, task.test_loader, trainer.device)
    report = binary_report(y, probs[:, 1], threshold=THRESHOLD, precision_target=PRECISION_TARGET,
                           fpr_target=FPR_TARGET)
    weights = {str(c): rec.last(f"weight_mean/class_{c}") for c in range(task.n_classes)}
    return {
        "scheme_name": scheme, "params": params, "train_counts": task.class_counts,
        "train_ratio": task.class_counts[0] / task.class_counts[1],
        "imbalance": {k: v for k, v in task.meta.items() if k != "feature_names"},
        "best_epoch": best_epoch, "epochs": epochs,
        "val_pr_auc": rec.series("val_pr_auc")[1], "val_recall_minority": rec.series("val_recall/class_1")[1],
        "val_ce_loss": rec.series("val_ce_loss")[1], "weight_mean_last_epoch": weights,
        "test": report, "seconds": time.perf_counter() - t0,
    }


# ----------------------------------------------------------------------------- the comparison
def task_epochs(epochs: int | Mapping[str, int], tasks: Sequence[str]) -> dict[str, int]:
    """The epoch budget of each task: one number for all, or a mapping that must name every task."""
    if isinstance(epochs, Mapping):
        missing = [t for t in tasks if t not in epochs]
        if missing:
            raise ParameterError("epochs", f"epochs has no budget for {', '.join(missing)}; give one per task "
                                           f"({', '.join(tasks)}) or a single number")
        return {t: check_number(f"epochs[{t!r}]", epochs[t], low=1, integer=True) for t in tasks}
    e = check_number("epochs", epochs, low=1, integer=True)
    return {t: e for t in tasks}


def compare_schemes(tasks: Sequence[str], schemes: Mapping[str, tuple[str, dict]], *, ratios: Sequence[float | None],
                    epochs: int | Mapping[str, int], seeds: Sequence[int], scale: str = "workshop",
                    cache_dir: str | Path | None = None, workers: int | None = None, progress: bool = True) -> dict:
    """Run every (task, ratio, scheme, seed); return ``{"runs": [...], "table": summarize(runs)}``.

    ``epochs``: one budget for every task, or a mapping task -> budget (see :func:`task_epochs`).

    Runs already in ``cache_dir`` are read, not rerun; each finished run is written there at once
    (atomically), so an interrupted comparison loses at most the runs in flight. ``workers`` spawned
    processes (default: one per CPU core, at most 4) run jobs in parallel with one torch thread each;
    results do not depend on ``workers``.
    """
    if not tasks or not schemes or not ratios or not seeds:
        raise ParameterError("tasks", "tasks, schemes, ratios and seeds must all be non-empty")
    budget = task_epochs(epochs, tasks)
    jobs = [(t, r, label, s) for t in tasks for r in ratios for label in schemes for s in seeds]
    packed = sorted(jobs, key=lambda j: j[0] == "credit_card_default")  # the slower text runs first: better packing

    def call(job):
        task, ratio, label, seed = job
        name, params = schemes[label]
        return (task, name, params), dict(epochs=budget[task], seed=seed, scale=scale, imbalance_ratio=ratio)

    done = run_jobs(
        packed, run_one, call,
        key=lambda job: cache_key("weighting_study", STUDY_VERSION, job, schemes[job[2]], budget[job[0]], scale),
        cache_dir=cache_dir, workers=workers, progress=progress,
    )
    runs = [{"task": t, "ratio": r, "ratio_label": ratio_label(r), "scheme": label, "seed": s, **done[(t, r, label, s)]}
            for t, r, label, s in jobs]
    return {"runs": runs, "table": summarize(runs)}


# ----------------------------------------------------------------------------- table and verdict
def summarize(runs: list[dict]) -> list[dict]:
    """One row per (task, ratio, scheme): mean and sd over seeds of every test metric in :data:`METRICS`.

    Also: ``train_ratio`` (majority : minority kept in the train split), ``test_prevalence``,
    ``precision_reached`` (the number of seeds where some threshold reached precision >= 0.8; the others
    count as recall 0), the selected epoch (1-based, mean), the validation PR-AUC at that epoch
    (``val_pr_auc``, what "best scheme" is chosen on) and, under ``seeds``/``per_seed``, every metric seed by
    seed so the verdict can pair schemes and be recomputed from the table alone.
    """
    rows = []
    keys = list(dict.fromkeys((r["task"], r["ratio_label"], r["scheme"]) for r in runs))
    for task, rl, label in keys:
        sel = [r for r in runs if (r["task"], r["ratio_label"], r["scheme"]) == (task, rl, label)]
        per_seed = {m: [float(r["test"][m]) for r in sel] for m in METRICS}
        per_seed["val_pr_auc"] = [float(r["val_pr_auc"][r["best_epoch"]]) for r in sel]
        row = {"task": task, "ratio": sel[0]["ratio"], "ratio_label": rl, "scheme": label, "n_seeds": len(sel),
               "train_ratio": sel[0]["train_ratio"], "train_minority": sel[0]["train_counts"][1],
               "test_prevalence": sel[0]["test"]["prevalence"], "epochs": sel[0].get("epochs"),
               "precision_reached": sum(bool(r["test"]["precision_target_reached"]) for r in sel),
               "best_epoch": float(np.mean([r["best_epoch"] + 1 for r in sel])),
               "seeds": [r["seed"] for r in sel], "per_seed": per_seed}
        for m, values in per_seed.items():
            row[m], row[f"{m}_sd"] = mean_sd(values)
        rows.append(row)
    return rows


def _ms(row: dict, m: str, digits: int = 3) -> str:
    return format_mean_sd(row[m], row[f"{m}_sd"], digits=digits)


def format_table(rows: list[dict]) -> str:
    """The comparison as Markdown: mean +- sd over seeds, every recall with its operating point."""
    out = [f"| task | train ratio | epochs | scheme | val. PR-AUC | ROC-AUC | PR-AUC | recall @ threshold {THRESHOLD:g} | "
           f"recall @ precision >= {PRECISION_TARGET:g} | recall @ FPR <= {100 * FPR_TARGET:g} % | "
           f"balanced acc. @ {THRESHOLD:g} |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        prec = _ms(r, "recall_at_precision") + ("" if r["precision_reached"] == r["n_seeds"]
                                                 else f" ({r['precision_reached']}/{r['n_seeds']} reached)")
        out.append(f"| {r['task']} | {r['ratio_label']} ({r['train_ratio']:.1f}:1) | {r['epochs']} | {r['scheme']} | "
                   f"{_ms(r, 'val_pr_auc')} | {_ms(r, 'roc_auc')} | {_ms(r, 'pr_auc')} | {_ms(r, 'recall_at_threshold')} | "
                   f"{prec} | {_ms(r, 'recall_at_fpr')} | {_ms(r, 'balanced_accuracy')} |")
    return "\n".join(out)


# ----------------------------------------------------------------------------- the article's range vs an imbalance
def article_vs_imbalance(counts: Sequence[int] = ULB_FRAUD_COUNTS, *, beta: float = 0.9999) -> dict:
    """What the article's factor can do against an imbalance ``counts = (majority, minority)``.

    Returns the factor's range for two classes under both readings of "confidence", the largest
    tilt it can give one sample over another (high / low), and the per-class weights (and tilt,
    minority / majority) of inverse frequency and of class-balanced weighting with ``beta``. To give
    the minority class the same total weight as the majority, a minority sample needs
    ``majority / minority`` times a majority sample's weight.
    """
    n_maj, n_min = (int(c) for c in counts)
    inv = inverse_frequency_class_weights([n_maj, n_min])
    cb = class_balanced_class_weights([n_maj, n_min], beta)
    lo_p, hi_p = article_weight_range("probability", 2)
    lo_l, hi_l = article_weight_range("logit", 2)
    out = {
        "counts": [n_maj, n_min], "ratio": n_maj / n_min,
        "article_probability": [lo_p, hi_p], "article_probability_tilt": hi_p / lo_p,
        "article_logit": [lo_l, hi_l], "article_logit_tilt_bound": hi_l / lo_l,
        "inverse_frequency": inv.tolist(), "inverse_frequency_tilt": float(inv[1] / inv[0]),
        "beta": beta, "class_balanced": cb.tolist(), "class_balanced_tilt": float(cb[1] / cb[0]),
    }
    out["text"] = "\n".join([
        f"imbalance {n_maj:,} : {n_min:,} = {out['ratio']:.0f}:1",
        f"article, confidence = probability: factor in [{lo_p:.3f}, {hi_p:.3f}] -> at most {out['article_probability_tilt']:.3f}x "
        f"between any two samples",
        f"article, confidence = logit:       factor in ({lo_l:.1f}, {hi_l:.1f}) -> less than {out['article_logit_tilt_bound']:.1f}x",
        "  (label-agnostic: at equal confidence a minority sample gets exactly the weight of a majority one)",
        f"inverse frequency: minority {inv[1]:.1f}, majority {inv[0]:.3f} -> {out['inverse_frequency_tilt']:.0f}x",
        f"class-balanced (beta={beta:g}): minority {cb[1]:.3f}, majority {cb[0]:.4f} -> {out['class_balanced_tilt']:.0f}x",
    ])
    return out


# ----------------------------------------------------------------------------- the chapter as a Study
class DynamicWeightingStudy(Study):
    """Chapter 04: loss-weighting schemes on imbalanced data (natural and fraud-like ratios), paired seeds."""

    id = "04"
    runs = (run_one,)
    depends_on = (*TRAINING, *DATA, "dsopt.models", "dsopt.metrics", "dsopt.weighting",
                  "dsopt.studies.dynamic_weighting")

    def _setup(self, params: Mapping[str, Any]) -> tuple[dict, list[str], list]:
        p = self.parameters(params)
        tasks = p["tasks"].split(",")
        return p, tasks, [None, p["imbalance_ratio"]]

    def grid(self, params: Mapping[str, Any]) -> list:
        p, tasks, ratios = self._setup(params)
        return [(t, r, label, s) for t in tasks for r in ratios for label in study_schemes() for s in self.seeds(p)]

    def measure(self, params: Mapping[str, Any], *, cache_dir=None, progress: bool = True, workers=None) -> dict:
        p, tasks, ratios = self._setup(params)
        out = compare_schemes(tasks, study_schemes(), ratios=ratios, epochs=task_epochs(p["epochs"], tasks),
                              seeds=self.seeds(p), scale=p["scale"], cache_dir=cache_dir, workers=workers,
                              progress=progress)
        return {**out, "params": p}

    summarize_runs, format_table = staticmethod(summarize), staticmethod(format_table)

    def summarize(self, results: dict) -> dict:
        """The comparison table (:func:`summarize`), each row with its test split's counts from the runs' test
        reports: ``n_test`` and ``n_test_positive`` (a recall's resolution is 1 / minority test examples), None
        where a run does not state them or the seeds' runs disagree."""
        runs = results["runs"]
        table = self.summarize_runs(runs)
        for row in table:
            sel = [r for r in runs if (r["task"], r["ratio_label"], r["scheme"]) ==
                   (row["task"], row["ratio_label"], row["scheme"])]
            for key, field in (("n_test", "n"), ("n_test_positive", "n_positive")):
                values = {r["test"].get(field) for r in sel}
                row[key] = int(values.pop()) if len(values) == 1 and None not in values else None
        return {"table": table, "params": results["params"]}

    def compute(self, summary: dict, *, alpha: float = 0.05) -> dict:
        """The verdict per claim and (task, ratio) setting
        (:func:`~dsopt.studies.dynamic_weighting_verdict.compute_verdict`), Holm at level 1 - ``alpha``."""
        from dsopt.studies.dynamic_weighting_verdict import compute_verdict

        return compute_verdict(summary["table"], alpha=alpha)

    def render(self, verdict: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
        """The verdict as Markdown, HTML or terminal text (``fmt="text"``: no Markdown at all)."""
        from dsopt.studies.dynamic_weighting_verdict import render_verdict

        return render_verdict(verdict, provenance=provenance, fmt=fmt)

    def claim_verdicts(self, verdict: dict) -> dict:
        """``{"recall / TASK / RATIO": Verdict, "auc / TASK / RATIO": Verdict}`` (what decide mode stops on)."""
        from dsopt.studies.dynamic_weighting_verdict import claim_verdicts

        return claim_verdicts(verdict)

    def live(self, params: Mapping[str, Any], *, task=None):
        """Fresh seeded runs of the article's rule on credit default at the fraud-like ratio."""
        p = self.parameters(params)
        if task is None:
            task = _task("credit_card_default", p["scale"], p["seed"], p["imbalance_ratio"])
        return functools.partial(live_trainer, task, "article", seed=p["seed"])


STUDY = DynamicWeightingStudy()
