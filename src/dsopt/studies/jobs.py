"""Controlled comparisons: many independent training runs, cached, resumable, in parallel.

Every chapter's measurement is a grid of jobs (task x variant x seed ...), each a pure function of
its arguments. ``run_jobs`` runs the grid once: finished runs are read from ``cache_dir`` (one JSON
per run, written atomically the moment it finishes, so an interrupted comparison loses only the runs
in flight), the rest run in ``workers`` spawned processes. Run functions must be importable
module-level functions (spawn pickles them by name) and should use one torch thread, so results do
not depend on ``workers``.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

from tqdm.auto import tqdm

from dsopt.util.atomic import atomic_write_text
from dsopt.util.validation import check_number


def cache_key(*parts: Any) -> str:
    """A short stable key for a job: sha256 of its JSON (``repr`` for non-JSON parts) and the dsopt version."""
    from dsopt import __version__

    text = json.dumps([__version__, *parts], default=repr, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_workers() -> int:
    """One worker per CPU core, at most 4."""
    return min(4, os.cpu_count() or 1)


def run_jobs(
    jobs: Sequence[Hashable],
    run: Callable[..., dict],
    call: Callable[[Hashable], tuple[tuple, dict]],
    *,
    key: Callable[[Hashable], str],
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "runs",
) -> dict[Hashable, dict]:
    """Run ``run(*args, **kwargs)`` for every job (``args, kwargs = call(job)``); return job -> result.

    ``key(job)`` names the job's cache file (use :func:`cache_key` over everything the result depends
    on). Results must be JSON-serialisable dicts.
    """
    workers = check_number("workers", workers or default_workers(), low=1, high=64, integer=True)
    paths = {job: (Path(cache_dir) / f"{key(job)}.json" if cache_dir else None) for job in jobs}
    done: dict[Hashable, dict] = {}
    todo = []
    for job in jobs:
        p = paths[job]
        if p is not None and p.is_file():
            done[job] = json.loads(p.read_text())
        else:
            todo.append(job)
    bar = tqdm(total=len(jobs), initial=len(done), desc=desc, disable=not progress)

    def finish(job, result: dict) -> None:
        if paths[job] is not None:
            atomic_write_text(paths[job], json.dumps(result))
        done[job] = result
        bar.update(1)

    try:
        if workers == 1 or len(todo) <= 1:
            for job in todo:
                args, kwargs = call(job)
                finish(job, run(*args, **kwargs))
        else:
            ctx = multiprocessing.get_context("spawn")  # forking a process that already runs torch threads is unsafe
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
                futures = {}
                for job in todo:
                    args, kwargs = call(job)
                    futures[pool.submit(run, *args, **kwargs)] = job
                for fut in as_completed(futures):
                    finish(futures[fut], fut.result())
    finally:
        bar.close()
    return done
