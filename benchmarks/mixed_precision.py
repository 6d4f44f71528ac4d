"""Mixed precision on this machine: the machinery's overhead, and what bf16/fp16 do to step time and memory.

1. Overhead: the plain Trainer vs the Trainer with ``MixedPrecision("fp32")`` (everything it does per step in
   fp32 mode: knob sync, timing, gradient norm, four Recorder rows), same model, data, seed and steps, the two
   arms alternating in one process. Prints the ratio of medians (target <= 1.02) and checks both end with
   identical weights (fp32 mode changes nothing numerically).
2. The chapter's MLM pre-training step (scale ``workshop``) in fp32, bf16 and fp16, interleaved in one process
   (:func:`dsopt.studies.mixed_precision.speed_run`): step-time ratios to fp32, and the activation-memory and
   total-memory ratios (:func:`dsopt.studies.mixed_precision.memory_run`).

The machine is shared: every figure is a ratio within this run, printed with the load average.
Run: python benchmarks/mixed_precision.py [--repeats 7] [--epochs 2] [--scale workshop] [--device cpu]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from dsopt import Trainer, seed_everything
from dsopt.data.tasks import make_task
from dsopt.precision import MODES, MixedPrecision

import report


def _fit(task, epochs: int, precision: str | None) -> tuple[float, float, list]:
    seed_everything(0)
    model = task.make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    task.train_loader.generator.manual_seed(0)
    callbacks = [MixedPrecision(precision)] if precision else []
    t = Trainer(model, opt, F.cross_entropy, task.train_loader, None, max_epochs=epochs, callbacks=callbacks,
                progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    t.fit()
    return time.perf_counter() - t0, time.process_time() - c0, [p.detach().clone() for p in model.parameters()]


def overhead(task_name: str, scale: str, epochs: int, repeats: int) -> None:
    task = make_task(task_name, scale=scale, seed=0)
    _fit(task, 1, None), _fit(task, 1, "fp32")  # warm-up
    wall = {None: [], "fp32": []}
    cpu = {None: [], "fp32": []}
    weights = {}
    for r in range(repeats):
        for arm in ((None, "fp32") if r % 2 == 0 else ("fp32", None)):
            w, c, weights[arm] = _fit(task, epochs, arm)
            wall[arm].append(w)
            cpu[arm].append(c)
    same = all(torch.equal(a, b) for a, b in zip(weights[None], weights["fp32"]))
    steps = epochs * len(task.train_loader)
    print(f"[overhead] task={task_name} scale={scale} steps={steps} repeats={repeats} threads={torch.get_num_threads()}")
    for what, d in (("CPU time", cpu), ("wall time", wall)):
        a, b = statistics.median(d["fp32"]), statistics.median(d[None])
        print(f"  {what:9s}: plain Trainer {b:.3f} s ({1000 * b / steps:.2f} ms/step), + MixedPrecision('fp32') "
              f"{a:.3f} s -> ratio {a / b:.3f} (target <= 1.02); per repeat "
              + ", ".join(f"{x / y:.3f}" for x, y in zip(d["fp32"], d[None])))
        report.record("mixed_precision", f"MixedPrecision('fp32') / plain Trainer, {what} ({task_name})",
                      baseline=(b, "s", f"plain Trainer, {steps} steps, median of {repeats}"),
                      measured=(a, "s", f"+ MixedPrecision('fp32'), median of {repeats}"),
                      ratio=a / b, target="<= 1.02", repeats=[x / y for x, y in zip(d["fp32"], d[None])])
    print(f"  identical final weights: {same}   (CPU time of this process is the robust one on a shared machine)")
    per_step_us, plain_ms = machinery_cost(task), 1000 * statistics.median(cpu[None]) / steps
    print(f"  machinery alone: {per_step_us:.1f} us per step (knob sync, timer, gradient norm, Recorder rows) = "
          f"{100 * per_step_us / 1000 / plain_ms:.2f} % of a plain step's CPU time ({plain_ms:.2f} ms) -> "
          f"ratio {1 + per_step_us / 1000 / plain_ms:.3f}")


def machinery_cost(task, n: int = 2000) -> float:
    """CPU microseconds per step of what MixedPrecision('fp32') adds, timed on its own over ``n`` steps of a
    real run's state (the training work itself excluded): batch_start (knob sync, timer), the autocast
    context (a no-op in fp32), the gradient norm it computes after backward, and batch_end's Recorder rows."""
    seed_everything(0)
    model = task.make_model()
    mp = MixedPrecision("fp32")
    t = Trainer(model, torch.optim.AdamW(model.parameters(), lr=1e-3), F.cross_entropy, task.train_loader, None,
                max_epochs=1, callbacks=[mp], progress=False)
    t.fit()
    state = t.state
    inputs, targets = next(iter(task.train_loader))
    state.inputs, state.targets = inputs, targets
    state.loss = F.cross_entropy(model(**inputs), targets)
    state.loss.backward()
    c0 = time.process_time()
    for _ in range(n):
        mp.batch_start(state)
        with mp.forward_context(state):
            pass
        grads = [p.grad for g in state.optimizer.param_groups for p in g["params"] if p.grad is not None]
        float(torch.nn.utils.get_total_norm(grads))
        mp.batch_end(state)
    return 1e6 * (time.process_time() - c0) / n


def modes(scale: str, repeats: int, steps: int, device: str | None) -> None:
    from dsopt.studies.mixed_precision import memory_run, speed_run

    avail = [m for m in MODES]
    sp = speed_run(avail, scale=scale, repeats=repeats, steps=steps, device=device)
    mem = memory_run(avail, scale=scale, n_batches=4, device=device)
    base = sp["step_ms"]["fp32"]
    print(f"[modes] MLM pre-training step, scale={scale}, device={sp['device']}, cpu capability "
          f"{sp['cpu_capability']}, {sp['steps']} steps x {repeats} interleaved repeats, threads={sp['threads']}")
    for m in avail:
        ms = sp["step_ms"][m]
        ratios = [a / b for a, b in zip(ms, base)]
        mm, mf = mem["mean"][m], mem["mean"]["fp32"]
        peak = ""
        if mm.get("device_peak"):
            peak = f", device peak {mm['device_peak'] / 1e6:.1f} MB"
        print(f"  {m}: {statistics.median(ms):8.1f} ms/step; step-time ratio to fp32 {statistics.median(ratios):.2f} "
              f"(per repeat {min(ratios):.2f}-{max(ratios):.2f}); activations x{mm['activations'] / mf['activations']:.2f}"
              f", total memory x{mm['total'] / mf['total']:.2f} ({mm['total'] / 1e6:.1f} MB){peak}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits")
    ap.add_argument("--scale", default="workshop")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=8, help="steps per mode and repeat in the modes comparison")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default=None)
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--skip-modes", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f} (2-core machine shared by several people)")
    if not args.skip_overhead:
        overhead(args.task, args.scale, args.epochs, args.repeats)
    if not args.skip_modes:
        modes(args.scale, max(3, args.repeats // 2), args.steps, args.device)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
