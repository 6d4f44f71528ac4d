"""Chapter 06's controlled measurement: 1 vs N workers, DDP vs Horovod, same model and global batch.

Every arm trains the same MLP (dropout 0) on digits with the same seeded global batches, SGD
with momentum and the learning rate scaled linearly with the global batch (Goyal et al. 2017:
``lr = base_lr * global_batch / reference_batch``) after a linear warmup from ``base_lr``. With N
workers each rank takes its contiguous slice of every global batch, so the optimisation is the same
as one process's (the gradient-equivalence test shows it to 1e-6): only the time changes. Per run we
measure, inside the workers,

* ``step_s``: wall time per training step (median over the run), throughput = global batch / step_s;
* ``compute_s``: forward + backward + update of the local slice with NO communication (timed on a
  copy of the model before training), so ``1 - compute_s / step_s`` is the exposed communication share;
* ``allreduce_s``: a timed all-reduce of the whole gradient (the backend's own collective);
* the validation accuracy after every epoch and the training time to reach ``target_accuracy``.

Runs go through :func:`dsopt.studies.jobs.run_jobs` (cached JSON per run, resumable), one at a time
and interleaved (seed by seed, arm by arm) so that a shared machine's load drifts over all arms alike;
``os.getloadavg()`` is stored with every run.
"""
from __future__ import annotations

import copy
import functools
import os
import statistics
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from dsopt.studies.jobs import cache_key, run_jobs
from dsopt.studies.study import DATA, TRAINING, Study
from dsopt.util.validation import check_choice, check_number

ARMS_BACKENDS = ("ddp", "horovod")
#: Hidden layers of the study's MLP per scale (workshop: ~300k parameters, 1.2 MB of fp32 gradients).
_SIZES = {"tiny": (128,), "workshop": (512, 512), "full": (2048, 2048)}


def goyal_lr(base_lr: float, global_batch: int, reference_batch: int) -> float:
    """Linear scaling rule: ``base_lr * global_batch / reference_batch``."""
    return float(base_lr) * int(global_batch) / int(reference_batch)


def make_schedule(base_lr: float, global_batch: int, reference_batch: int, warmup_epochs: float):
    """Goyal et al.'s gradual warmup: from ``base_lr`` linearly to the scaled rate over ``warmup_epochs``."""
    from dsopt.lr import Constant, Warmup

    peak = goyal_lr(base_lr, global_batch, reference_batch)
    if warmup_epochs <= 0 or peak <= base_lr:
        return Constant(peak)
    return Warmup(Constant(peak), warmup=warmup_epochs, start_factor=base_lr / peak)


def study_model(scale: str, seed: int):
    """An MLP over the 64 pixels of a digit (dropout 0): SGD trains it to > 90 % in a few epochs, which a
    small transformer on 16 patches does not (it needs AdamW and ~20 epochs; chapter 01)."""
    import torch

    from dsopt.models import TabularMLP

    class PixelMLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = TabularMLP(64, 10, hidden=_SIZES[scale], dropout=0.0)

        def forward(self, patches):
            return self.mlp(patches.flatten(1))

    torch.manual_seed(seed)
    return PixelMLP()


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times))


def time_allreduce(numel: int, repeats: int = 10) -> float:
    """Median seconds of one all-reduce of ``numel`` float32 values in the running job (after a barrier)."""
    import torch

    from dsopt.distributed import runtime

    buf = torch.ones(int(numel))
    runtime.allreduce_sum_(buf)  # warm-up (connection set-up)

    def once():
        runtime.barrier()
        t0 = time.perf_counter()
        runtime.allreduce_sum_(buf)
        return time.perf_counter() - t0

    return float(statistics.median(once() for _ in range(repeats)))


def allreduce_timings(sizes: list[int], repeats: int = 10) -> list[dict]:
    """Worker function: timed all-reduces at several message sizes (float32 elements) for calibration."""
    from dsopt.distributed import runtime

    return [{"n": runtime.world_size(), "bytes": 4 * int(s), "seconds": time_allreduce(s, repeats)} for s in sizes]


def train_worker(*, scale: str = "workshop", seed: int = 0, epochs: int = 8, global_batch: int = 128,
                 base_lr: float = 0.05, reference_batch: int = 32, warmup_epochs: float = 2.0,
                 momentum: float = 0.9, target_accuracy: float = 0.9, bucket_cap_mb: float | None = None,
                 compute_repeats: int = 10) -> dict:
    """Train in a launched job (any world size, either backend); return this rank's measurements.

    World size 1 runs the plain model (no DDP wrapper, no Horovod optimizer): the honest baseline.
    """
    import torch

    from dsopt.core.callbacks import Callback
    from dsopt.core.seeding import seed_everything
    from dsopt.core.trainer import Trainer, evaluate
    from dsopt.data.tasks import make_task
    from dsopt.distributed import runtime
    from dsopt.lr import LRScheduleCallback

    world, rank = runtime.world_size(), runtime.rank()
    seed_everything(seed)
    task = make_task("digits", scale=scale, seed=seed, batch_size=global_batch)
    if global_batch % world:
        raise ValueError(f"global_batch {global_batch} must be divisible by the {world} workers")
    local = global_batch // world
    model = study_model(scale, seed)
    loss_fn = torch.nn.functional.cross_entropy

    # Compute alone: the local slice's forward + backward + update, no communication, on a copy.
    probe = copy.deepcopy(model)
    popt = torch.optim.SGD(probe.parameters(), lr=0.0, momentum=momentum)
    xb, yb = next(iter(task.train_loader.__class__(task.train_loader.dataset, batch_size=local,
                                                   collate_fn=task.train_loader.collate_fn)))

    def compute_step():
        popt.zero_grad(set_to_none=True)
        loss_fn(probe(**xb), yb).backward()
        popt.step()

    compute_step()
    compute_s = _median_time(compute_step, compute_repeats)
    numel = sum(p.numel() for p in model.parameters())
    allreduce_s = time_allreduce(numel) if world > 1 else 0.0

    schedule = make_schedule(base_lr, global_batch, reference_batch, warmup_epochs)
    if world > 1:
        model = runtime.wrap_model(model, bucket_cap_mb=bucket_cap_mb)
    opt = torch.optim.SGD(model.parameters(), lr=schedule(0.0), momentum=momentum)
    if world > 1:
        opt = runtime.wrap_optimizer(opt, model)
    rec = runtime.recorder()

    class StepTimer(Callback):
        """Wall time per step, local throughput and the exposed-communication share, live."""

        def __init__(self):
            self.t0 = 0.0
            self.times: list[float] = []

        def batch_start(self, state):
            self.t0 = time.perf_counter()

        def batch_end(self, state):
            dt = time.perf_counter() - self.t0
            if not self.times:
                runtime.mark("first_step")
            self.times.append(dt)
            state.log("step_s", dt)
            state.log("samples_per_s", local / dt)
            state.log("comm_share", max(0.0, 1.0 - compute_s / dt) if world > 1 else 0.0)

    timer = StepTimer()
    trainer = Trainer(model, opt, loss_fn, runtime.ShardedLoader(task.train_loader, drop_last=True), task.val_loader,
                      max_epochs=epochs, callbacks=[LRScheduleCallback(schedule, per="batch"), timer],
                      recorder=rec, device=runtime.device(), progress=False)
    # the run's budget, so the kernel's job handle knows its progress (DistributedJob.state)
    rec.log("max_epochs", epochs, step=0, epoch=0)
    rec.log("batches_per_epoch", trainer.state.batches_per_epoch, step=0, epoch=0)
    t_fit = time.perf_counter()
    trainer.fit()
    fit_s = time.perf_counter() - t_fit
    val = rec.series("val_accuracy")[1]
    cum = np.cumsum(trainer.epoch_times).tolist()
    reach = next((cum[i] for i, v in enumerate(val) if v >= target_accuracy), None)
    inner = getattr(model, "module", model)
    test = evaluate(inner, task.test_loader, loss_fn, runtime.device())
    steady = timer.times[len(timer.times) // 10:] or timer.times  # drop the first 10 % (warm-up)
    return {
        "rank": rank, "world": world, "backend": runtime.backend(), "seed": seed,
        "val_accuracy": val, "epoch_train_s": trainer.epoch_times, "time_to_target_s": reach,
        "step_s": float(statistics.median(steady)), "compute_s": compute_s, "allreduce_s": allreduce_s,
        "grad_bytes": 4 * numel, "global_batch": global_batch, "local_batch": local,
        "throughput": global_batch / float(statistics.median(steady)), "fit_s": fit_s,
        "test_accuracy": test["accuracy"], "final_val_accuracy": val[-1], "threads": torch.get_num_threads(),
        "n_val": len(task.val_loader.dataset), "n_test": len(task.test_loader.dataset),  # accuracy resolution 1/n
        "lr_peak": goyal_lr(base_lr, global_batch, reference_batch),
    }


# -- the study driver (runs in the kernel / a script) ---------------------------------------------------
def run_arm(backend: str, n: int, seed: int, cfg: dict, timeout: float = 1800.0, device: str = "cpu") -> dict:
    """One run: ``n`` workers (``backend``; n=1 is the plain single process) on ``seed``; rank 0's result."""
    from dsopt.distributed.launcher import launch

    load_before = os.getloadavg()[0]
    t0 = time.time()
    env = {}
    if cfg.get("fusion_threshold_mb") is not None:
        env["HOROVOD_FUSION_THRESHOLD"] = str(int(float(cfg["fusion_threshold_mb"]) * 1024 * 1024))
    kwargs = {k: v for k, v in cfg.items() if k != "fusion_threshold_mb"}
    res = launch("dsopt.studies.distributed:train_worker", n, "ddp" if n == 1 else backend,
                 kwargs=dict(kwargs, seed=seed), timeout=timeout, echo=False, env=env, device=device)
    r0 = res.results[0]
    finals = [r["final_val_accuracy"] for r in res.results]
    return {**r0, "arm": arm_label(backend, n), "n": n, "ranks_agree": max(finals) - min(finals) < 1e-9,
            "launch_wall_s": time.time() - t0, "load_before": load_before, "load_after": os.getloadavg()[0]}


def arm_label(backend: str, n: int) -> str:
    return "1 worker" if n == 1 else f"{n} x {backend}"


def scaling_study(*, workers: int = 2, backends: tuple[str, ...] = ARMS_BACKENDS, seeds: list[int] = (0, 1, 2),
                  scale: str = "workshop", epochs: int = 8, global_batch: int = 128, base_lr: float = 0.05,
                  reference_batch: int = 32, warmup_epochs: float = 2.0, target_accuracy: float = 0.9,
                  bucket_cap_mb: float | None = None, fusion_threshold_mb: float | None = None,
                  cache_dir: str | Path | None = None, progress: bool = True, device: str = "cpu",
                  timeout: float = 1800.0) -> dict:
    """Run every (arm, seed), interleaved; return ``{"runs": [...], "table": [...], "config": {...}}``."""
    workers = check_number("workers", workers, low=2, high=1024, integer=True)
    scale = check_choice("scale", scale, list(_SIZES))
    for b in backends:
        check_choice("backends", b, list(ARMS_BACKENDS))
    check_number("global_batch", global_batch, low=workers, integer=True)
    if global_batch % workers:
        from dsopt.util.validation import ParameterError

        raise ParameterError("global_batch", f"global_batch must be a multiple of workers={workers}; got {global_batch}")
    cfg = dict(scale=scale, epochs=epochs, global_batch=global_batch, base_lr=base_lr, reference_batch=reference_batch,
               warmup_epochs=warmup_epochs, target_accuracy=target_accuracy, bucket_cap_mb=bucket_cap_mb,
               fusion_threshold_mb=fusion_threshold_mb)
    arms = [("ddp", 1)] + [(b, workers) for b in backends]
    jobs = [(b, n, s) for s in seeds for b, n in arms]  # interleaved: seed by seed, every arm
    done = run_jobs(jobs, run_arm, lambda job: ((job[0], job[1], job[2], cfg), {"timeout": timeout, "device": device}),
                    key=lambda job: cache_key("distributed_study", job, cfg, device), cache_dir=cache_dir, workers=1,
                    progress=progress, desc="distributed runs", verify=False)  # timings: not reproducible numbers
    runs = [done[j] for j in jobs]
    return {"runs": runs, "table": summarize(runs), "config": {**cfg, "workers": workers, "seeds": list(seeds)}}


def _ms(values) -> tuple[float, float]:
    a = np.asarray([v for v in values if v is not None], dtype=float)
    if a.size == 0:
        return float("nan"), float("nan")
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def summarize(runs: list[dict]) -> list[dict]:
    """One row per arm: throughput, time to target, speedup and efficiency (paired by seed), compute vs
    communication, accuracy and the check that it equals the 1-worker accuracy."""
    base = {r["seed"]: r for r in runs if r["n"] == 1}
    rows = []
    for arm in dict.fromkeys(r["arm"] for r in runs):
        sel = [r for r in runs if r["arm"] == arm]
        n = sel[0]["n"]
        thr = _ms(r["throughput"] for r in sel)
        ttt = _ms(r["time_to_target_s"] for r in sel)
        speed_by = {str(r["seed"]): base[r["seed"]]["step_s"] / r["step_s"] for r in sel if r["seed"] in base}
        ttt_by = {str(r["seed"]): base[r["seed"]]["time_to_target_s"] / r["time_to_target_s"] for r in sel
                  if r["seed"] in base and r["time_to_target_s"] and base[r["seed"]]["time_to_target_s"]}
        acc_by = {str(r["seed"]): r["final_val_accuracy"] - base[r["seed"]]["final_val_accuracy"]
                  for r in sel if r["seed"] in base}
        speed, ttt_speed, acc_diff = list(speed_by.values()), list(ttt_by.values()), list(acc_by.values())
        comm = [max(0.0, 1.0 - r["compute_s"] / r["step_s"]) for r in sel] if n > 1 else [0.0] * len(sel)
        rows.append({
            "arm": arm, "n": n, "backend": sel[0]["backend"] if n > 1 else "none", "n_seeds": len(sel),
            "throughput": thr[0], "throughput_sd": thr[1],
            "step_ms": 1000 * _ms(r["step_s"] for r in sel)[0], "compute_ms": 1000 * _ms(r["compute_s"] for r in sel)[0],
            "allreduce_ms": 1000 * _ms(r["allreduce_s"] for r in sel)[0], "comm_share": _ms(comm)[0],
            "time_to_target_s": ttt[0], "time_to_target_sd": ttt[1],
            "reached": f"{sum(r['time_to_target_s'] is not None for r in sel)}/{len(sel)}",
            "speedup": _ms(speed)[0], "speedup_sd": _ms(speed)[1], "efficiency": _ms(speed)[0] / n,
            "speedup_by_seed": speed_by, "ttt_speedup": _ms(ttt_speed)[0], "ttt_speedup_by_seed": ttt_by,
            "acc_diff_by_seed": acc_by, "throughput_by_seed": {str(r["seed"]): r["throughput"] for r in sel},
            "final_val_acc": _ms(r["final_val_accuracy"] for r in sel)[0],
            "test_acc": _ms(r["test_accuracy"] for r in sel)[0],
            "max_abs_acc_diff_vs_1": float(np.max(np.abs(acc_diff))) if acc_diff else float("nan"),
            "ranks_agree": all(r["ranks_agree"] for r in sel), "n_val": sel[0].get("n_val"),
            "load": _ms([r["load_before"] for r in sel] + [r["load_after"] for r in sel])[0],
        })
    return rows


def calibration_runs(backends: tuple[str, ...] = ARMS_BACKENDS, workers: int = 2,
                     sizes: tuple[int, ...] = (256, 4096, 65536, 262144, 1048576), repeats: int = 10,
                     cache_dir: str | Path | None = None, device: str = "cpu") -> dict[str, list[dict]]:
    """Timed all-reduces at several sizes per backend (cached): the data the cost model is fitted to."""
    done = run_jobs(list(backends), _calibrate_one, lambda b: ((b, workers, list(sizes), repeats, device), {}),
                    key=lambda b: cache_key("allreduce_calibration", b, workers, list(sizes), repeats, device),
                    cache_dir=cache_dir, workers=1, progress=False, verify=False)
    return {b: done[b]["points"] for b in backends}


def _calibrate_one(backend: str, workers: int, sizes: list[int], repeats: int, device: str = "cpu") -> dict:
    from dsopt.distributed.launcher import launch

    res = launch("dsopt.studies.distributed:allreduce_timings", workers, backend,
                 kwargs={"sizes": sizes, "repeats": repeats}, timeout=600, echo=False, device=device)
    return {"points": res.results[0], "load": os.getloadavg()[0]}


# ----------------------------------------------------------------------------- the chapter as a Study
class DistributedStudy(Study):
    """Chapter 06: one worker vs N workers (DDP, Horovod), same global batch, interleaved seeds; all-reduce fits."""

    id = "06"
    runs = (run_arm, _calibrate_one)
    # dsopt.distributed without its notebook magic (magic.py: the %%distributed cell's own text; no run uses it)
    depends_on = (*TRAINING, *DATA, "dsopt.models", "dsopt.lr", "dsopt.distributed.__init__",
                  "dsopt.distributed.cost_model", "dsopt.distributed.doctor", "dsopt.distributed.equivalence",
                  "dsopt.distributed.hvdrun", "dsopt.distributed.launcher", "dsopt.distributed.runtime",
                  "dsopt.distributed.supervisor", "dsopt.distributed.worker", "dsopt.studies.distributed")

    @staticmethod
    def train_kwargs(p: Mapping[str, Any]) -> dict:
        """The training settings every arm shares (also the ``%%distributed`` demo cell's)."""
        return {k: p[k] for k in ("scale", "epochs", "global_batch", "base_lr", "reference_batch", "warmup_epochs",
                                  "target_accuracy")}

    def grid(self, params: Mapping[str, Any], *, backends: Sequence[str] = ("ddp",)) -> list:
        p = self.parameters(params)
        return [(b, n, s) for s in self.seeds(p) for b, n in [("ddp", 1)] + [(b, p["workers"]) for b in backends]]

    def measure(self, params: Mapping[str, Any], *, cache_dir=None, progress: bool = True,
                backends: Sequence[str] = ("ddp",), device: str = "cpu", workers: int | None = None) -> dict:
        p = self.parameters(params)
        out = scaling_study(workers=workers or p["workers"], backends=tuple(backends), seeds=self.seeds(p),
                            bucket_cap_mb=p["bucket_cap_mb"], fusion_threshold_mb=p["fusion_threshold_mb"],
                            cache_dir=cache_dir, progress=progress, device=device, timeout=p["timeout"],
                            **self.train_kwargs(p))
        return {**out, "params": p}

    summarize_runs = staticmethod(summarize)

    @staticmethod
    def format_table(rows: list[dict]) -> str:
        """The scaling table people read (:func:`dsopt.studies.distributed_verdict.format_table`)."""
        from dsopt.studies.distributed_verdict import format_table

        return format_table(rows)

    def compute(self, summary: dict, *, alpha: float = 0.05, device: str = "cpu") -> dict:
        """The verdict; ``device``: where the arms ran (what :meth:`measure` was given), the measured setting."""
        from dsopt.studies.distributed_verdict import compute_verdict

        return compute_verdict(summary["table"], alpha=alpha, device=device)

    def render(self, verdict: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
        from dsopt.studies.distributed_verdict import render_verdict

        return render_verdict(verdict, provenance=provenance, fmt=fmt)

    def claim_verdicts(self, verdict: dict) -> dict:
        from dsopt.studies.distributed_verdict import claim_verdicts

        return claim_verdicts(verdict)

    @staticmethod
    def verdict_json(verdict: dict) -> dict:
        """The verdict as it goes into the metrics JSON."""
        from dsopt.studies.distributed_verdict import verdict_json

        return verdict_json(verdict)

    def calibration(self, params: Mapping[str, Any], backends: Sequence[str], *, workers: int = 2,
                    cache_dir=None, device: str = "cpu") -> dict:
        """All-reduce timings per backend at ``workers`` processes (the cost model's calibration points)."""
        return calibration_runs(tuple(backends), workers=workers, cache_dir=cache_dir, device=device)

    def live(self, params: Mapping[str, Any], *, device: str = "cpu", **overrides: Any):
        """Fresh launches of :func:`train_worker` on ``workers`` processes (each call: a running
        :class:`~dsopt.distributed.launcher.DistributedJob`, a run handle); ``overrides`` change its kwargs."""
        from dsopt.distributed.launcher import start

        p = self.parameters(params)
        kwargs = {**self.train_kwargs(p), "bucket_cap_mb": p["bucket_cap_mb"], **overrides}
        return functools.partial(start, "dsopt.studies.distributed:train_worker", p["workers"], p["backend"],
                                 kwargs=kwargs, timeout=p["timeout"], device=device, echo=False)


STUDY = DistributedStudy()
