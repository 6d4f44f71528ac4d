"""Chapter 01 speed targets, each as a ratio against a baseline measured in the same run.

1. Preview of a 100,000-step schedule (vectorised, dsopt) vs stepping torch's
   CosineAnnealingWarmRestarts through the same 100,000 steps (target: >= 100x faster).
2. The LR panel's update latency from a slider value change to the updated preview figure
   (Python side: validation, preview, plotly batch_update), median over many changes (target < 50 ms).
Run: python benchmarks/lr_schedule.py
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from dsopt.lr import CosineRestarts
from dsopt_widgets import LRPanel

import report

STEPS = 100_000


def torch_steps(T_0: int, T_mult: int, steps_per_epoch: int) -> np.ndarray:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=T_0, T_mult=T_mult)
    out = np.empty(STEPS)
    for i in range(STEPS):
        out[i] = opt.param_groups[0]["lr"]
        sched.step((i + 1) / steps_per_epoch)
    return out


def main() -> None:
    spe = 100  # steps per epoch: 1,000 epochs in all
    t = np.arange(STEPS) / spe
    sched = CosineRestarts(1e-3, 5, 2)
    t0 = time.perf_counter()
    ref = torch_steps(5, 2, spe)
    t_torch = time.perf_counter() - t0
    reps = []
    for _ in range(5):
        t0 = time.perf_counter()
        ours = sched.preview(t)
        reps.append(time.perf_counter() - t0)
    t_ours = statistics.median(reps)
    print(f"schedule of {STEPS:,} steps: torch stepping {t_torch * 1000:.1f} ms, dsopt preview {t_ours * 1000:.2f} ms "
          f"(max |difference| {np.abs(ours - ref).max():.1e})")
    print(f"preview speed-up = {t_torch / t_ours:.0f}x  (target >= 100x)")
    report.record("lr_schedule", "schedule preview speed-up, torch / dsopt",
                  baseline=(t_torch * 1000, "ms", f"stepping torch's scheduler {STEPS:,} steps, once"),
                  measured=(t_ours * 1000, "ms", f"dsopt preview, median of {len(reps)}"),
                  ratio=t_torch / t_ours, target=">= 100", repeats=[t_torch / r for r in reps],
                  note="baseline timed once: the interval covers the preview's noise only")

    panel = LRPanel(params={"base_lr": 1e-3, "T_0": 5, "T_mult": 2}, horizon=200)
    lat = []
    for i in range(60):
        panel.sliders["T_0"].value = 2 + i % 20
        lat.append(panel.last_update_ms)
    print(f"panel update latency (value change -> figure updated, {len(lat)} changes): "
          f"median {statistics.median(lat):.1f} ms, max {max(lat):.1f} ms  (target < 50 ms)")
    report.record("lr_schedule", "LR panel update latency (absolute, ms)", baseline=None,
                  measured=(statistics.median(lat), "ms", f"median of {len(lat)} slider changes"),
                  ratio=statistics.median(lat), target="< 50", repeats=lat,
                  note="absolute budget, no baseline: ratio = latency in ms; interval on the mean latency")


if __name__ == "__main__":
    main()
