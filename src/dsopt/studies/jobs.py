"""Controlled comparisons: many independent training runs, cached, resumable, in parallel.

Every chapter's measurement is a grid of jobs (task x variant x seed ...), each a pure function of
its arguments. ``run_jobs`` runs the grid once: finished runs are read from ``cache_dir`` (one JSON
per run, written atomically the moment it finishes, so an interrupted comparison loses only the runs
in flight), the rest run in ``workers`` spawned processes. Run functions must be importable
module-level functions (spawn pickles them by name) and should use one torch thread, so results do
not depend on ``workers``.

How a grid executes can be set by the caller's context (:func:`execution`), without changing the
study functions in between: a progress callback, a cancel event, a lower CPU priority for the workers
and "always in worker processes". dsopt_widgets' background jobs use it so that a comparison runs
behind a live run while a person steers. Workers end with their parent (``kill -9`` of the kernel
included, see :mod:`dsopt.util.lifetime`), and a failed, interrupted or cancelled grid stops its
workers at once instead of letting them finish their runs.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import multiprocessing
import os
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Sequence

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


class JobsCancelled(Exception):
    """The grid was cancelled through :func:`execution`'s ``cancel`` event (finished runs stay cached)."""

    def __init__(self, desc: str = "runs", done: int = 0, total: int = 0):
        super().__init__(desc, done, total)
        self.desc, self.done, self.total = desc, done, total

    def __str__(self) -> str:
        return f"{self.desc}: cancelled after {self.done} of {self.total} runs (finished runs are cached)"


@dataclass(frozen=True)
class Execution:
    """How :func:`run_jobs` executes grids started in the current context (see :func:`execution`).

    on_progress: ``on_progress(desc, done, total)``, called on the thread that runs the grid after
        the cache is read and after every finished run.
    cancel: a ``threading.Event``; once set the grid stops within about a second: pending runs are
        dropped, running workers exit, :class:`JobsCancelled` is raised. Finished runs stay cached.
    nice: added to the workers' niceness (0-19): a lower CPU priority, so a live run and the
        notebook's UI keep their core while a comparison uses what is left.
    isolate: always run in spawned worker processes, even one job or ``workers=1`` (never in the
        calling process, whose global RNG and threads belong to the notebook).
    """

    on_progress: Callable[[str, int, int], None] | None = None
    cancel: threading.Event | None = None
    nice: int = 0
    isolate: bool = False


_EXECUTION: contextvars.ContextVar[Execution] = contextvars.ContextVar("dsopt_jobs_execution", default=Execution())


@contextlib.contextmanager
def execution(**settings: Any) -> Iterator[Execution]:
    """Run grids started inside the ``with`` block with these :class:`Execution` settings."""
    current = replace(_EXECUTION.get(), **settings)
    check_number("nice", current.nice, low=0, high=19, integer=True)
    token = _EXECUTION.set(current)
    try:
        yield current
    finally:
        _EXECUTION.reset(token)


def _worker_init(parent_pid: int, nice: int, halt) -> None:
    """Process-pool initializer: lower priority, and exit when the parent dies or ``halt`` is set."""
    from dsopt.util.lifetime import exit_with_parent

    if nice:
        os.nice(nice)
    exit_with_parent(parent_pid, also=halt.is_set)


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
    on). Results must be JSON-serialisable dicts. Progress reporting, cancellation, worker priority
    and isolation follow the caller's :func:`execution` context.
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

    ex = _EXECUTION.get()

    def report() -> None:
        if ex.on_progress is not None:
            ex.on_progress(desc, len(done), len(jobs))

    def finish_and_report(job, result: dict) -> None:
        finish(job, result)
        report()

    report()
    try:
        if todo and (workers == 1 or len(todo) == 1) and not ex.isolate:
            for job in todo:
                _check_cancel(ex, desc, len(done), len(jobs))
                args, kwargs = call(job)
                finish_and_report(job, run(*args, **kwargs))
        elif todo:
            _run_in_workers(todo, run, call, min(workers, len(todo)), ex, desc, finish_and_report,
                            progress=lambda: (len(done), len(jobs)))
    finally:
        bar.close()
    return done


def _check_cancel(ex: Execution, desc: str, done: int, total: int) -> None:
    if ex.cancel is not None and ex.cancel.is_set():
        raise JobsCancelled(desc, done, total)


def _run_in_workers(todo, run, call, workers: int, ex: Execution, desc: str, finish, *, progress) -> None:
    """Run ``todo`` in ``workers`` spawned processes; on any exit but success, stop the workers at once.

    The workers are created by this thread (it waits for them, so a parent-death signal tied to it is
    right) with :func:`_worker_init`: they exit when this process dies or when ``halt`` is set.
    """
    ctx = multiprocessing.get_context("spawn")  # forking a process that already runs torch threads is unsafe
    halt = ctx.Event()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                               initargs=(os.getpid(), ex.nice, halt))
    futures = {}
    try:
        for job in todo:
            args, kwargs = call(job)
            futures[pool.submit(run, *args, **kwargs)] = job
        pending = set(futures)
        while pending:
            _check_cancel(ex, desc, *progress())
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                finish(futures[fut], fut.result())
    except BaseException:
        halt.set()  # running workers exit within a second instead of finishing their runs
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
