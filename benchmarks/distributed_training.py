"""Chapter 06 benchmarks, as ratios against baselines measured in the same run (interleaved, repeated).

1. Launcher cost: from the call of ``dsopt.distributed.launch`` (what a ``%%distributed`` cell does) to the
   first finished training step, against ``torchrun --standalone`` started from a shell with the same
   script. Target: ratio <= 1.2.
2. DDP's per-step overhead at N = 1 (``dsopt.distributed.runtime.wrap_model`` on a world of one, gloo) against
   the plain Trainer, same model and batches, in one process; torch's DDP with its defaults, with gradients as
   bucket views, and with the all-reduce of one rank skipped are printed beside it (where the time goes).
   Target: ratio <= 1.10. Then the step at N = ``--workers`` split into compute, exposed communication and the
   all-reduce alone (printed, no target).

Usage: ``python benchmarks/distributed_training.py [--repeats 5] [--workers 2]``. The machine's load average is
printed beside every figure: on a shared machine the absolute times move, the interleaved ratios less.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report

SCRIPT = r'''
import os, time, torch, torch.distributed as td
if not td.is_initialized():          # under torchrun: initialise here; under dsopt the bootstrap already did
    td.init_process_group("gloo")
torch.set_num_threads(1)
from dsopt.studies.distributed import study_model
model = torch.nn.parallel.DistributedDataParallel(study_model("workshop", 0))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(64, 16, 4), torch.randint(0, 10, (64,))
opt.zero_grad(); torch.nn.functional.cross_entropy(model(patches=x), y).backward(); opt.step()
with open(os.path.join(os.environ["BENCH_DIR"], f"rank{td.get_rank()}.first_step"), "w") as fh:
    fh.write(repr(time.time()))
'''


def _first_step(bench_dir: Path, n: int) -> float:
    return max(float((bench_dir / f"rank{r}.first_step").read_text()) for r in range(n))


def time_torchrun(script: Path, n: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        torchrun = str(Path(sys.executable).with_name("torchrun"))
        env = dict(os.environ, BENCH_DIR=d, OMP_NUM_THREADS="1")
        t0 = time.time()
        subprocess.run([torchrun, "--standalone", f"--nproc_per_node={n}", str(script)], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return _first_step(Path(d), n) - t0


def time_launcher(n: int) -> float:
    from dsopt.distributed import launch

    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        launch(SCRIPT, n, "ddp", env={"BENCH_DIR": d}, echo=False, timeout=600)
        return _first_step(Path(d), n) - t0


#: A cell run on N DDP workers (through dsopt's launcher) that splits a step into its parts: compute alone (the
#: step under ``no_sync()``: no all-reduce), the whole DDP step, and an all-reduce of the gradients' size alone.
#: Exposed communication = whole - compute (what the overlap of all-reduce and backward does not hide).
BREAKDOWN = r'''
import time, torch, torch.distributed as td
from dsopt.core.trainer import Trainer
from dsopt.studies.distributed import study_model
torch.set_num_threads(1)
model = dist.wrap_model(study_model("workshop", 0))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
g = torch.Generator().manual_seed(dist.rank())
batches = [({"patches": torch.randn(64, 16, 4, generator=g)}, torch.randint(0, 10, (64,), generator=g))
           for _ in range(20)]
flat = torch.zeros(sum(p.numel() for p in model.parameters()))

def step(x, y):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(**x), y).backward()
    opt.step()

def timed(fn, rounds):
    out = []
    for _ in range(rounds):
        td.barrier()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return sorted(out)[len(out) // 2]

def compute():
    with model.no_sync():
        for x, y in batches:
            step(x, y)

def whole():
    for x, y in batches:
        step(x, y)

def allreduce():
    for _ in batches:
        td.all_reduce(flat)

compute(); whole(); allreduce()  # warm-up
n = len(batches)
result = {"compute_ms": 1000 * timed(compute, REPEATS) / n, "step_ms": 1000 * timed(whole, REPEATS) / n,
          "allreduce_ms": 1000 * timed(allreduce, REPEATS) / n, "params": flat.numel()}
'''


def step_breakdown(workers: int, repeats: int) -> dict:
    """Per-step compute, whole step, all-reduce alone and exposed communication (ms) on ``workers`` DDP workers
    (rank 0's medians over ``repeats`` rounds of 20 steps)."""
    from dsopt.distributed.launcher import launch

    res = launch(BREAKDOWN.replace("REPEATS", str(int(repeats))), workers, "ddp", echo=False, timeout=600)
    r = res.results[0]
    return {**r, "exposed_ms": r["step_ms"] - r["compute_ms"], "workers": workers}


#: The arms of the N=1 step benchmark: what each adds to the plain Trainer (the last is what dsopt runs).
DDP_ARMS = ("plain", "torch DDP, defaults", "DDP, gradients as bucket views", "DDP, world-of-one hook",
            "dsopt wrap_model")


def ddp_overhead(repeats: int, steps: int = 30) -> dict[str, list[float]]:
    """Per-step time of each arm of :data:`DDP_ARMS` on a world of one (gloo), ``repeats`` times, the arms
    interleaved within each repeat: the plain Trainer; torch's DDP with its defaults; with gradients as bucket
    views (no copy between the gradients and DDP's buckets); with a hook that skips the all-reduce of one rank;
    and ``dsopt.distributed.runtime.wrap_model`` (both). Same model, batches and optimizer in every arm."""
    import torch
    import torch.distributed as td
    from torch.nn.parallel import DistributedDataParallel as DDP

    from dsopt.core.trainer import Trainer
    from dsopt.distributed import runtime
    from dsopt.distributed.launcher import free_port
    from dsopt.studies.distributed import study_model

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0", WORLD_SIZE="1",
                      LOCAL_RANK="0")
    runtime.init("ddp")
    g = torch.Generator().manual_seed(0)
    batches = [({"patches": torch.randn(128, 16, 4, generator=g)}, torch.randint(0, 10, (128,), generator=g))
               for _ in range(steps)]

    def hooked(model):
        ddp = DDP(model)
        ddp.register_comm_hook(None, runtime._world_of_one)
        return ddp

    wrap = {"plain": lambda m: m, "torch DDP, defaults": DDP,
            "DDP, gradients as bucket views": lambda m: DDP(m, gradient_as_bucket_view=True),
            "DDP, world-of-one hook": hooked, "dsopt wrap_model": runtime.wrap_model}

    def run(arm: str) -> float:
        model = wrap[arm](study_model("workshop", 0))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        tr = Trainer(model, opt, torch.nn.functional.cross_entropy, batches, max_epochs=1, progress=False, device="cpu")
        tr.fit()
        return tr.epoch_times[0] / steps

    times: dict[str, list[float]] = {arm: [] for arm in DDP_ARMS}
    try:
        for arm in DDP_ARMS:  # warm-up
            run(arm)
        for _ in range(repeats):
            for arm in DDP_ARMS:
                times[arm].append(run(arm))
    finally:
        runtime.shutdown()
        if td.is_initialized():
            td.destroy_process_group()
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    if not Path(sys.executable).with_name("torchrun").exists():
        report.skip("distributed_training", f"no torchrun beside {sys.executable} (the baseline side)")
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "first_step.py"
        script.write_text(SCRIPT)
        tr, dl = [], []
        load0 = os.getloadavg()[0]
        for _ in range(args.repeats):  # interleaved
            tr.append(time_torchrun(script, args.workers))
            dl.append(time_launcher(args.workers))
        load1 = os.getloadavg()[0]
    a, b = statistics.median(dl), statistics.median(tr)
    print(f"launcher: cell start -> first step, {args.workers} workers: dsopt {a:.2f} s, torchrun {b:.2f} s "
          f"(medians of {args.repeats}; load {load0:.1f} -> {load1:.1f})")
    print(f"  ratio dsopt / torchrun = {a / b:.2f}  (target <= 1.2: {'met' if a / b <= 1.2 else 'NOT met'})")
    report.record("distributed_training", f"launcher to first step, dsopt / torchrun ({args.workers} workers)",
                  baseline=(b, "s", f"torchrun --standalone, median of {args.repeats}"),
                  measured=(a, "s", f"dsopt.distributed.launch, median of {args.repeats}"),
                  ratio=a / b, target="<= 1.2", repeats=[x / y for x, y in zip(dl, tr)])
    load0 = os.getloadavg()[0]
    times = ddp_overhead(args.repeats)
    plain = statistics.median(times["plain"])
    print(f"DDP at N=1, per step (medians of {args.repeats}, arms interleaved; load {load0:.1f} -> "
          f"{os.getloadavg()[0]:.1f}):")
    for arm in DDP_ARMS:
        t = statistics.median(times[arm])
        print(f"  {arm:32s} {1000 * t:6.2f} ms  (+{1000 * (t - plain):5.2f} ms, x{t / plain:.3f})")
    b = step_breakdown(args.workers, args.repeats)
    print(f"DDP at N={b['workers']}, per step of 64 examples per worker ({b['params']:,} parameters; rank 0, medians "
          f"of {args.repeats} rounds of 20 steps): compute alone (no_sync) {b['compute_ms']:.2f} ms, whole step "
          f"{b['step_ms']:.2f} ms, exposed communication {b['exposed_ms']:.2f} ms; an all-reduce of the gradients "
          f"alone {b['allreduce_ms']:.2f} ms ({max(0.0, b['allreduce_ms'] - b['exposed_ms']):.2f} ms of it hidden "
          f"behind backward)")
    ours, base = times["dsopt wrap_model"], times["plain"]
    report.record("distributed_training", "DDP at N=1 (dsopt wrap_model) / plain Trainer, step time",
                  baseline=(1000 * plain, "ms/step", f"plain Trainer, median of {args.repeats}"),
                  measured=(1000 * statistics.median(ours), "ms/step",
                            f"runtime.wrap_model on a world of 1 (gloo), median of {args.repeats}"),
                  ratio=statistics.median(ours) / plain, target="<= 1.10",
                  repeats=[x / y for x, y in zip(ours, base)],
                  note="torch DDP with defaults: x{:.3f}".format(statistics.median(times["torch DDP, defaults"]) / plain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
