"""A study's grid through Dask vs the local process pool, as ratios measured in one run (interleaved, repeated).

1. Throughput: ``run_jobs`` on a grid of ``--jobs`` CPU-bound jobs (``--job-ms`` each, pure Python, so no
   library's threads interfere) through a Dask cluster of ``--workers`` processes on this machine vs the local
   pool with the same number of workers. Target: Dask / local throughput >= 0.9. The Dask cluster is started
   once and kept (a cluster is long-lived; its start-up is printed separately), the local pool starts with each
   grid, as ``dsopt run`` gives it. Per-job overhead in ms: (wall x workers - the jobs' own time) / jobs.
2. Scaling: the same grid on Dask with ``--workers`` workers vs 1 worker. Target: > 1 (more workers help);
   the efficiency (speed-up / workers) is printed beside it.

Usage: ``python benchmarks/dask_grid.py [--jobs 24] [--job-ms 250] [--workers 2] [--repeats 3]``. Needs
``dsopt[cluster]`` (skipped with that message otherwise). The load average is printed with every figure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import report

sys.path.insert(0, str(Path(__file__).resolve().parent))  # workers import this module's `work` by name


def work(i: int, ms: float) -> dict:
    """About ``ms`` ms of pure-Python CPU work (a counted loop, calibrated by the clock)."""
    t0 = time.perf_counter()
    n = 0
    while (time.perf_counter() - t0) * 1000 < ms:
        for _ in range(2000):
            n += 1
    return {"i": i, "busy_s": time.perf_counter() - t0}


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def grid(executor, jobs: int, ms: float, workers: int, tag: str) -> tuple[float, float]:
    """Wall time of one grid and the jobs' own summed time."""
    from dsopt.studies.jobs import execution, run_jobs

    t0 = time.perf_counter()
    with execution(executor=executor, isolate=True):
        out = run_jobs(list(range(jobs)), work, lambda i: ((i, ms), {}), key=lambda i: f"{tag}-{i}", cache_dir=None,
                       workers=workers, progress=False)
    return time.perf_counter() - t0, sum(r["busy_s"] for r in out.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=24)
    ap.add_argument("--job-ms", type=float, default=250.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError:
        report.skip("dask_grid", "needs dask.distributed: pip install 'dsopt[cluster]'")

    import dask

    from dsopt.studies.executors import quiet_dask

    quiet = quiet_dask()
    quiet.__enter__()  # Dask's INFO lines (clusters starting and closing) would bury the figures
    print(f"grid: {args.jobs} jobs x {args.job_ms:.0f} ms, {args.workers} workers; {load()}")
    starts = []
    clusters = {}
    with dask.config.set({"distributed.worker.daemon": False}):
        for n in (args.workers, 1):
            t0 = time.perf_counter()
            clusters[n] = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=logging.ERROR)
            starts.append(time.perf_counter() - t0)
    clients = {n: Client(c, set_as_default=False) for n, c in clusters.items()}
    try:
        for n, client in clients.items():  # warm: workers import dsopt and torch once, as a long-lived cluster has
            grid(client, n, 10, n, f"warm{n}")
        local_t, dask_t, one_t, overhead = [], [], [], []
        for r in range(args.repeats):  # interleaved: a load change hits every arm of a repeat alike
            wl, busy_l = grid("local", args.jobs, args.job_ms, args.workers, f"l{r}")
            wd, busy_d = grid(clients[args.workers], args.jobs, args.job_ms, args.workers, f"d{r}")
            w1, _ = grid(clients[1], args.jobs, args.job_ms, 1, f"o{r}")
            local_t.append(wl)
            dask_t.append(wd)
            one_t.append(w1)
            overhead.append(((wl * args.workers - busy_l) / args.jobs * 1000,
                             (wd * args.workers - busy_d) / args.jobs * 1000))
            print(f"repeat {r + 1}: local pool {wl:.2f} s, Dask x{args.workers} {wd:.2f} s, Dask x1 {w1:.2f} s; {load()}")
    finally:
        for c in clients.values():
            c.close()
        for c in clusters.values():
            c.close()
    ml, md, m1 = statistics.median(local_t), statistics.median(dask_t), statistics.median(one_t)
    ol = statistics.median(o[0] for o in overhead)
    od = statistics.median(o[1] for o in overhead)
    print(f"Dask cluster start-up on this machine: {', '.join(f'{s:.2f} s' for s in starts)} "
          f"(x{args.workers}, x1; paid once per cluster, or per grid with --executor dask)")
    print(f"per-job overhead: local pool {ol:.0f} ms, Dask {od:.0f} ms (wall x workers - jobs' own time, per job)")
    report.record("dask_grid", f"Dask / local pool throughput, {args.workers} workers",
                  baseline=(ml, "s", f"local pool, {args.jobs} jobs, median"),
                  measured=(md, "s", f"Dask x{args.workers}, median"), ratio=ml / md, target=">= 0.9",
                  repeats=[a / b for a, b in zip(local_t, dask_t)])
    speedup = [a / b for a, b in zip(one_t, dask_t)]
    report.record("dask_grid", f"Dask scaling, {args.workers} workers vs 1",
                  baseline=(m1, "s", "Dask x1, median"), measured=(md, "s", f"Dask x{args.workers}, median"),
                  ratio=m1 / md, target="> 1", repeats=speedup,
                  note=f"efficiency {m1 / md / args.workers:.2f} of linear on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
