"""Chapter 01's controlled measurement: schedules compared on real tasks, same budget, many seeds.

Every schedule gets the same model, data, optimizer (AdamW), epoch budget and seeds; only the
learning-rate curve differs. Per run we keep the validation-accuracy curve and the final test
accuracy; per task we report epochs to reach 95 % of the best validation accuracy any schedule
reached with that seed, and final test accuracy, as mean +- sd over seeds. Finished runs are
cached as JSON (atomic writes), so an interrupted comparison resumes where it stopped.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from dsopt.core.seeding import seed_everything
from dsopt.core.trainer import Trainer, evaluate
from dsopt.data.tasks import make_task
from dsopt.lr import Constant, CosineRestarts, OneCycleCosine, Schedule, restart_positions
from dsopt.studies.jobs import cache_key, run_jobs
from dsopt.util.threads import torch_threads
from dsopt.util.validation import check_number


def aligned_restarts(epochs: int, *, max_T_mult: int = 4, max_cycles: int = 4) -> tuple[int, int]:
    """A (T_0, T_mult) whose last cycle ends exactly at the budget, with at least two cycles.

    Prefers T_mult = 2 (the article's), then other growing cycles (T_mult > 2), then equal cycles
    (T_mult = 1); within each, fewer cycles first. E.g. 20 -> (5, 3) (restart at 5, end at 20),
    12 -> (4, 2), 21 -> (7, 2). Falls back to one restart halfway.
    """
    epochs = check_number("epochs", epochs, low=2, integer=True)
    order = sorted(((m, c) for m in range(1, max_T_mult + 1) for c in range(2, max_cycles + 1)),
                   key=lambda mc: (mc[0] != 2, mc[0] == 1, mc[1], mc[0]))
    for T_mult, cycles in order:
        span = sum(T_mult**i for i in range(cycles))  # epochs covered by `cycles` cycles, in T_0 units
        if epochs % span == 0:
            return epochs // span, T_mult
    return max(1, epochs // 2), 1


def study_schedules(epochs: int, base_lr: float, article: tuple[int, int] = (5, 2)) -> dict[str, Schedule]:
    """The four schedules of the comparison, keyed by a readable label."""
    a0, am = article
    b0, bm = aligned_restarts(epochs)
    return {
        "constant": Constant(base_lr),
        "one cosine cycle": OneCycleCosine(base_lr, epochs),
        f"restarts T_0={a0}, T_mult={am} (article)": CosineRestarts(base_lr, a0, am),
        f"restarts T_0={b0}, T_mult={bm} (aligned)": CosineRestarts(base_lr, b0, bm),
    }


def run_one(task_name: str, schedule: Schedule, *, epochs: int, seed: int, scale: str = "workshop",
            weight_decay: float = 0.01, device: str | None = None, threads: int | None = 1) -> dict:
    """Train one model with ``schedule`` (stepped per batch, fractional epochs); return its curves.

    ``threads``: torch CPU threads for this run (restored afterwards). One thread is both fastest
    for these small models and independent of the machine's core count, so results do not change
    with ``workers``.
    """
    with torch_threads(threads):
        return _run_one(task_name, schedule, epochs=epochs, seed=seed, scale=scale,
                        weight_decay=weight_decay, device=device)


def _run_one(task_name, schedule, *, epochs, seed, scale, weight_decay, device) -> dict:
    from dsopt.lr import LRScheduleCallback

    seed_everything(seed)
    task = make_task(task_name, scale=scale, seed=seed)
    model = task.make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=schedule(0.0), weight_decay=weight_decay)
    loss = torch.nn.functional.cross_entropy
    trainer = Trainer(model, opt, loss, task.train_loader, task.val_loader, max_epochs=epochs,
                      callbacks=[LRScheduleCallback(schedule, per="batch")], device=device, progress=False)
    rec = trainer.fit()
    test = evaluate(trainer.model, task.test_loader, loss, trainer.device)
    return {
        "val_accuracy": rec.series("val_accuracy")[1],
        "val_loss": rec.series("val_loss")[1],
        "test_accuracy": test["accuracy"],
        "lr_end": rec.last("lr"),
    }


def epochs_to_reach(curve: list[float], target: float) -> int | None:
    """First epoch (1-based) whose validation accuracy is >= ``target``; None if never."""
    for i, v in enumerate(curve):
        if v >= target:
            return i + 1
    return None


def compare_schedules(tasks: list[str], schedules: Mapping[str, Schedule], *, epochs: int, seeds: list[int],
                      scale: str = "workshop", cache_dir: str | Path | None = None, workers: int | None = None,
                      progress: bool = True) -> dict:
    """Run every (task, schedule, seed); return ``{"runs": [...], "table": [...]}``.

    Cached, resumable and parallel through :func:`dsopt.studies.jobs.run_jobs` (``workers`` spawned
    processes, one torch thread each; results do not depend on ``workers``).
    """
    jobs = [(t, label, s) for t in tasks for label in schedules for s in seeds]
    done = run_jobs(
        jobs, run_one,
        lambda job: ((job[0], schedules[job[1]]), dict(epochs=epochs, seed=job[2], scale=scale)),
        key=lambda job: cache_key("lr_study", job, repr(schedules[job[1]]), epochs, scale),
        cache_dir=cache_dir, workers=workers, progress=progress,
    )
    runs = [{"task": t, "schedule": label, "seed": s, **done[(t, label, s)]} for t, label, s in jobs]
    return {"runs": runs, "table": summarize(runs)}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def summarize(runs: list[dict], fraction: float = 0.95) -> list[dict]:
    """One row per (task, schedule): epochs to ``fraction`` x best val accuracy and test accuracy.

    The reference ("best") is the highest validation accuracy any schedule reached with the same
    task and seed, so every schedule is measured against the same bar.
    """
    best = {}
    for r in runs:
        k = (r["task"], r["seed"])
        best[k] = max(best.get(k, 0.0), max(r["val_accuracy"]))
    rows = []
    for task in dict.fromkeys(r["task"] for r in runs):
        for label in dict.fromkeys(r["schedule"] for r in runs if r["task"] == task):
            sel = [r for r in runs if r["task"] == task and r["schedule"] == label]
            reach = [epochs_to_reach(r["val_accuracy"], fraction * best[(task, r["seed"])]) for r in sel]
            budget = len(sel[0]["val_accuracy"])
            reached = [e for e in reach if e is not None]
            # A run that never reaches the bar counts as budget + 1 (a lower bound), flagged by `reached`.
            e_mean, e_sd = _mean_sd([budget + 1 if e is None else e for e in reach])
            t_mean, t_sd = _mean_sd([r["test_accuracy"] for r in sel])
            rows.append({
                "task": task, "schedule": label, "n_seeds": len(sel), "budget": budget,
                "epochs_to_95": e_mean, "epochs_to_95_sd": e_sd, "reached_95": f"{len(reached)}/{len(sel)}",
                "test_acc": t_mean, "test_acc_sd": t_sd,
                "lr_at_end": float(np.mean([r["lr_end"] for r in sel])),
            })
    return rows


def format_table(rows: list[dict]) -> str:
    """The comparison table as Markdown (mean +- sd; test accuracy in %).

    "censored": some seeds never reached the bar within the budget; they count as budget + 1.
    """
    out = ["| task | schedule | epochs to 95 % of best | reached | test accuracy (%) | LR at end |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        e = f"{r['epochs_to_95']:.1f} +- {r['epochs_to_95_sd']:.1f}" + ("" if r["reached_95"].split("/")[0] == r["reached_95"].split("/")[1] else " (censored)")
        out.append(f"| {r['task']} | {r['schedule']} | {e} | {r['reached_95']} | "
                   f"{100 * r['test_acc']:.1f} +- {100 * r['test_acc_sd']:.1f} | {r['lr_at_end']:.2e} |")
    return "\n".join(out)


def verdict(rows: list[dict], *, article_label_part: str = "(article)", baseline: str = "constant",
            epochs: int, article: tuple[int, int] = (5, 2)) -> dict:
    """A plain verdict on "30 % faster convergence, +2 to +5 points", computed from ``rows``.

    Compares the article's restarts with the constant-LR baseline per task: relative change in
    epochs-to-95 % (negative = faster) and the test-accuracy difference in points. Says whether the
    claim holds where it was measured, and where the article's restarts fall in the budget.
    """
    restarts = restart_positions({"base_lr": 1e-3, "T_0": article[0], "T_mult": article[1]}, epochs + 1e-9)
    per_task = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        by = {r["schedule"]: r for r in rows if r["task"] == task}
        art = next(r for label, r in by.items() if article_label_part in label)
        base = by[baseline]
        best_other = max((r for r in by.values()), key=lambda r: r["test_acc"])
        speed = (art["epochs_to_95"] - base["epochs_to_95"]) / base["epochs_to_95"] if base["epochs_to_95"] else math.nan
        gain = 100 * (art["test_acc"] - base["test_acc"])
        noise = 100 * math.hypot(art["test_acc_sd"], base["test_acc_sd"])
        per_task[task] = {
            "speedup_vs_constant": -speed, "points_vs_constant": gain, "points_noise": noise,
            "best_schedule": best_other["schedule"],
            "claim_speed_holds": bool(-speed >= 0.30),
            "claim_accuracy_holds": bool(2.0 <= gain and gain > noise),
        }
    lines = []
    for task, v in per_task.items():
        lines.append(
            f"{task}: the article's restarts reach 95 % of the best validation accuracy "
            f"{abs(100 * v['speedup_vs_constant']):.0f} % {'sooner' if v['speedup_vs_constant'] >= 0 else 'later'} than a constant LR "
            f"and end {v['points_vs_constant']:+.1f} points (seed noise +- {v['points_noise']:.1f}) on test accuracy; "
            f"best schedule here: {v['best_schedule']}. "
            f"'30 % faster': {'holds' if v['claim_speed_holds'] else 'not supported'}; "
            f"'+2 to +5 points': {'holds' if v['claim_accuracy_holds'] else 'not supported'}."
        )
    mid = restarts and (restarts[-1] < epochs)
    lines.append(
        f"With T_0={article[0]}, T_mult={article[1]} stepped per epoch the restarts fall at epochs "
        f"{', '.join(f'{r:g}' for r in restarts) or 'none'} inside a {epochs}-epoch budget"
        + (f", so training ends mid-cycle, {epochs - restarts[-1]:g} epochs after the last restart." if mid else ".")
    )
    return {"per_task": per_task, "restarts_in_budget": restarts, "text": "\n".join(lines)}


def per_batch_pitfall(T_0: int = 5, T_mult: int = 2, iters_per_epoch: int = 20, epochs: int = 20,
                      base_lr: float = 1e-3) -> dict[str, np.ndarray]:
    """torch's CosineAnnealingWarmRestarts stepped per batch: without vs with the fractional epoch.

    Returns the learning rate at every iteration for both, plus the epoch axis. Without the
    fraction ``T_0`` counts iterations: the schedule restarts every ``T_0`` batches.
    """
    out = {}
    for mode in ("no_fraction", "fractional"):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=T_0, T_mult=T_mult)
        lrs = []
        for e in range(epochs):
            for i in range(iters_per_epoch):
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step() if mode == "no_fraction" else sched.step(e + (i + 1) / iters_per_epoch)
        out[mode] = np.asarray(lrs)
    out["epoch"] = np.arange(epochs * iters_per_epoch) / iters_per_epoch
    return out
