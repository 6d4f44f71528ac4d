"""Trainer overhead vs a plain PyTorch loop: same model, data, seed and number of steps.

Prints the median time of each over several alternating repeats and their ratio (target <= 1.05).
The Trainer run includes everything it does per step: knob boundary, events, Recorder rows,
loss finiteness check, per-epoch validation (the plain loop does the same validation).
Run: python benchmarks/trainer_overhead.py [--epochs 3] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from dsopt import Trainer, evaluate, seed_everything
from dsopt.data.tasks import make_task

import report


def plain(task, epochs: int, seed: int) -> float:
    seed_everything(seed)
    model = task.make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    task.train_loader.generator.manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for inputs, y in task.train_loader:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(**inputs), y)
            loss.backward()
            opt.step()
        evaluate(model, task.val_loader, F.cross_entropy, torch.device("cpu"))
    return time.perf_counter() - t0, [p.detach().clone() for p in model.parameters()]


def with_trainer(task, epochs: int, seed: int) -> float:
    seed_everything(seed)
    model = task.make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    task.train_loader.generator.manual_seed(seed)
    t0 = time.perf_counter()
    Trainer(model, opt, F.cross_entropy, task.train_loader, task.val_loader, max_epochs=epochs, progress=False).fit()
    return time.perf_counter() - t0, [p.detach().clone() for p in model.parameters()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits")
    ap.add_argument("--scale", default="workshop")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = make_task(args.task, scale=args.scale, seed=0)
    plain(task, 1, 0), with_trainer(task, 1, 0)  # warm-up
    tp, tt = [], []
    for _ in range(args.repeats):
        a, wa = plain(task, args.epochs, 0)
        b, wb = with_trainer(task, args.epochs, 0)
        tp.append(a)
        tt.append(b)
    same = all(torch.equal(x, y) for x, y in zip(wa, wb))
    mp, mt = statistics.median(tp), statistics.median(tt)
    steps = args.epochs * len(task.train_loader)
    print(f"task={args.task} scale={args.scale} epochs={args.epochs} steps={steps} threads={args.threads} repeats={args.repeats}")
    print(f"plain loop : {mp:.3f} s  ({1000 * mp / steps:.2f} ms/step)")
    print(f"Trainer    : {mt:.3f} s  ({1000 * mt / steps:.2f} ms/step)")
    print(f"identical final weights: {same}")
    print(f"overhead ratio Trainer / plain = {mt / mp:.3f}  (target <= 1.05)")
    report.record("trainer_overhead", f"Trainer / plain loop ({args.task})",
                  baseline=(mp, "s", f"plain loop, median of {args.repeats}"),
                  measured=(mt, "s", f"Trainer, median of {args.repeats}"),
                  ratio=mt / mp, target="<= 1.05", repeats=[b / a for a, b in zip(tp, tt)])


if __name__ == "__main__":
    main()
