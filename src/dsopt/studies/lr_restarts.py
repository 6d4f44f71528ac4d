"""Chapter 01's controlled measurement: schedules compared on real tasks, same budget, many seeds.

Every schedule gets the same model, data, optimizer (AdamW), epoch budget and seeds; only the
learning-rate curve differs. Per run we keep the validation-accuracy curve and the final test
accuracy; per task we report epochs to reach 95 % of the best validation accuracy any schedule
reached with that seed, the final validation and test accuracy, as mean +- sd over seeds and per
seed. The verdict (:mod:`dsopt.studies.lr_restarts_verdict`) pairs schedules seed by seed
through :mod:`dsopt.stats`. Finished runs are cached as JSON (atomic writes), so an interrupted
comparison resumes where it stopped.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from dsopt.core.controls import replay_callback
from dsopt.core.seeding import seed_everything
from dsopt.core.trainer import Trainer, evaluate
from dsopt.data.tasks import make_task
from dsopt.lr import Constant, CosineRestarts, OneCycleCosine, Schedule
from dsopt.stats import format_mean_sd, mean_sd
from dsopt.studies.jobs import cache_key, run_jobs
from dsopt.studies.study import Study
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


def build_trainer(task, schedule: Schedule | Mapping[str, Any], *, epochs: int, seed: int,
                  weight_decay: float = 0.01, device: str | None = None, callbacks: Sequence = ()) -> Trainer:
    """The chapter's run on ``task``: a fresh seeded model, AdamW, ``schedule`` stepped per batch.

    ``schedule`` is a Schedule or flat parameters (then its knobs are live Controls). Everything
    random is seeded from ``seed`` here (global RNGs, the loader's shuffling generator, the model's
    initial weights), so the same call gives the same run whatever ran before in the process.
    """
    from dsopt.lr import LRScheduleCallback, schedule_from_params

    seed_everything(seed)
    generator = getattr(task.train_loader, "generator", None)
    if generator is not None:
        generator.manual_seed(seed)
    model = task.make_model()
    first_lr = (schedule if isinstance(schedule, Schedule) else schedule_from_params(schedule))(0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=first_lr, weight_decay=weight_decay)
    return Trainer(model, opt, torch.nn.functional.cross_entropy, task.train_loader, task.val_loader,
                   max_epochs=epochs, callbacks=[LRScheduleCallback(schedule, per="batch"), *callbacks],
                   device=device, progress=False)


#: Epochs of the live run in JupyterLab (the panel's budget knob starts here): long enough to steer for
#: a few minutes at each scale. Headless runs use the notebook's ``live_epochs``.
INTERACTIVE_EPOCHS = {"tiny": 200, "workshop": 60, "full": 60}


def live_trainer(task, params: Mapping[str, Any], *, epochs: int, seed: int, control_schedule=()) -> Trainer:
    """The live run of the chapter's panel: :func:`build_trainer` with the schedule's flat ``params``
    as knobs, replaying ``control_schedule`` (an exported session) at the steps it was applied.

    The panel calls it again (same task and seed) for Restart; ``dsopt run 01 -p control_schedule``
    builds the same run headless, so an exported session replays to the same Recorder history.
    """
    return build_trainer(task, dict(params), epochs=epochs, seed=seed,
                         callbacks=[replay_callback(list(control_schedule or []))])


def _run_one(task_name, schedule, *, epochs, seed, scale, weight_decay, device) -> dict:
    task = make_task(task_name, scale=scale, seed=seed)
    trainer = build_trainer(task, schedule, epochs=epochs, seed=seed, weight_decay=weight_decay, device=device)
    rec = trainer.fit()
    test = evaluate(trainer.model, task.test_loader, trainer.loss_fn, trainer.device)
    return {
        "val_accuracy": rec.series("val_accuracy")[1],
        "val_loss": rec.series("val_loss")[1],
        "test_accuracy": test["accuracy"],
        "n_test": len(task.test_loader.dataset),  # an accuracy's resolution is 1 / n_test
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


def summarize(runs: list[dict], fraction: float = 0.95) -> list[dict]:
    """One row per (task, schedule): epochs to ``fraction`` x best val accuracy, final val and test accuracy.

    The reference ("best") is the highest validation accuracy any schedule reached with the same task
    and seed, so every schedule is measured against the same bar. A run that never reaches the bar
    counts as budget + 1 epochs (a lower bound); ``reached_95`` counts the seeds that did. Each row keeps
    its per-seed values (``seeds`` and ``per_seed``) so a verdict can pair schedules seed by seed and be
    recomputed from the table alone.
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
            per_seed = {
                "epochs_to_95": [float(budget + 1 if e is None else e) for e in reach],
                "val_acc_final": [float(r["val_accuracy"][-1]) for r in sel],
                "test_acc": [float(r["test_accuracy"]) for r in sel],
            }
            row = {"task": task, "schedule": label, "n_seeds": len(sel), "budget": budget, "n_test": sel[0].get("n_test"),
                   "reached_95": sum(e is not None for e in reach), "seeds": [r["seed"] for r in sel],
                   "lr_at_end": float(np.mean([r["lr_end"] for r in sel])), "per_seed": per_seed}
            for name, values in per_seed.items():
                row[name], row[f"{name}_sd"] = mean_sd(values)
            rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """The comparison table as Markdown (mean +- sd over seeds; accuracies in %).

    "censored": some seeds never reached the bar within the budget; they count as budget + 1.
    """
    out = ["| task | schedule | epochs to 95 % of best | reached | final val. accuracy (%) | test accuracy (%) | LR at end |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        e = format_mean_sd(r["epochs_to_95"], r["epochs_to_95_sd"], digits=1)
        e += "" if r["reached_95"] == r["n_seeds"] else " (censored)"
        out.append(f"| {r['task']} | {r['schedule']} | {e} | {r['reached_95']}/{r['n_seeds']} | "
                   f"{format_mean_sd(r['val_acc_final'], r['val_acc_final_sd'], scale=100, digits=1)} | "
                   f"{format_mean_sd(r['test_acc'], r['test_acc_sd'], scale=100, digits=1)} | {r['lr_at_end']:.2e} |")
    return "\n".join(out)


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


# ----------------------------------------------------------------------------- the chapter as a Study
class LRRestartsStudy(Study):
    """Chapter 01: cosine warm restarts vs constant and one-cycle schedules, same budget, paired seeds."""

    id = "01"
    runs = (run_one,)
    depends_on = ("dsopt.core", "dsopt.data", "dsopt.models", "dsopt.metrics", "dsopt.lr", "dsopt.util.threads",
                  "dsopt.util.validation", "dsopt.studies.lr_restarts")

    def schedules(self, params: Mapping[str, Any]) -> dict[str, Schedule]:
        """The four schedules compared, from the chapter's parameters."""
        p = self.parameters(params)
        return study_schedules(p["epochs"], p["base_lr"], (p["article_T_0"], p["article_T_mult"]))

    def grid(self, params: Mapping[str, Any]) -> list:
        p = self.parameters(params)
        return [(t, label, s) for t in p["tasks"].split(",") for label in self.schedules(p) for s in self.seeds(p)]

    def measure(self, params: Mapping[str, Any], *, cache_dir=None, progress: bool = True, workers=None) -> dict:
        p = self.parameters(params)
        out = compare_schedules(p["tasks"].split(","), self.schedules(p), epochs=p["epochs"], seeds=self.seeds(p),
                                scale=p["scale"], cache_dir=cache_dir, workers=workers, progress=progress)
        return {**out, "params": p}

    summarize_runs, format_table = staticmethod(summarize), staticmethod(format_table)

    def compute(self, summary: dict, *, alpha: float = 0.05) -> dict:
        from dsopt.studies.lr_restarts_verdict import compute_verdict

        p = summary["params"]
        return compute_verdict(summary["table"], epochs=p["epochs"], article=(p["article_T_0"], p["article_T_mult"]),
                               alpha=alpha)

    def render(self, verdict: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
        from dsopt.studies.lr_restarts_verdict import render_verdict

        return render_verdict(verdict, provenance=provenance, fmt=fmt)

    def claim_verdicts(self, verdict: dict) -> dict:
        from dsopt.studies.lr_restarts_verdict import claim_verdicts

        return claim_verdicts(verdict)

    def live(self, params: Mapping[str, Any], *, task=None):
        """Fresh seeded runs of the article's schedule on digits, replaying ``control_schedule``."""
        p = self.parameters(params)
        task = task if task is not None else make_task("digits", scale=p["scale"], seed=p["seed"])
        article = {"base_lr": p["base_lr"], "T_0": p["article_T_0"], "T_mult": p["article_T_mult"]}
        return functools.partial(live_trainer, task, article, seed=p["seed"])


STUDY = LRRestartsStudy()
