"""Controlled comparisons: many independent training runs, cached, resumable, in parallel.

Every chapter's measurement is a grid of jobs (task x variant x seed ...), each a pure function of
its arguments. ``run_jobs`` runs the grid once: finished runs are read from ``cache_dir`` (one JSON
per run, written atomically the moment it finishes, so an interrupted comparison loses only the runs
in flight) or from the *stored runs* committed beside a notebook; the rest run in ``workers`` spawned
processes. Run functions must be importable module-level functions (spawn pickles them by name) and
should use one torch thread, so results do not depend on ``workers``.

Keys are keyed on what produced a run: the caller's ``key(job)`` plus the run's code *fingerprint*
(:mod:`dsopt.studies.fingerprint`: the syntax of the modules its Study declares, docstrings and comments
left out), so a code change that can change a result is a cache miss, never a silently reused old result,
and a docstring edit is not. The machine (torch, device, CPU) is recorded in every run file, not keyed:
stored runs made with another torch build or device are reused only after re-executing some of them here
within tolerance (the spot check). Every run file carries a SHA-256
(:mod:`dsopt.util.runfile`); a file that fails it is reported and recomputed. docs/CONTRACTS.md
("Runs, caches and stored runs") is the contract chapters follow.

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
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dsopt.studies.fingerprint import fingerprint, machine
from dsopt.util.runfile import RunFileError, read_run, seal, write_run
from dsopt.util.validation import check_number

#: Default tolerance of the spot check: |fresh - stored| <= atol + rtol * |stored|.
SPOT_CHECK_TOLERANCE = {"atol": 0.05, "rtol": 0.05}


class StoredRunError(RuntimeError):
    """Stored runs that are missing for this code, or that the code no longer reproduces (message says which)."""


# ----------------------------------------------------------------------------- where a measurement's runs came from
@dataclass
class Provenance:
    """Where the runs of one measurement came from (see :func:`provenance`): computed here now, read from this
    machine's cache, or read from stored runs that another machine may have made (recorded in each run file)."""

    computed: int = 0
    computed_seconds: float = 0.0
    cached: int = 0
    stored: int = 0
    #: The ``machine`` records of the runs read from the cache or the stored runs (one per run).
    origins: list = field(default_factory=list)
    #: Stored runs re-executed here before they were used, and reproduced (``dsopt run --verify K``, the spot
    #: check). Not part of :meth:`describe` (the committed notebooks' text), reported by ``dsopt run``.
    verified: int = 0

    def add(self, *, computed: int = 0, seconds: float = 0.0, cached: int = 0, stored: int = 0,
            origins: Sequence[dict] = (), verified: int = 0) -> None:
        self.computed += computed
        self.computed_seconds += seconds
        self.cached += cached
        self.stored += stored
        self.verified += verified
        self.origins.extend(dict(o) for o in origins)

    @property
    def runs(self) -> int:
        return self.computed + self.cached + self.stored

    def machines(self) -> list[str]:
        """One phrase per distinct machine that made the reused runs: CPU (capability), torch, device, the dates
        and the load averages recorded (run files older than that record say "date not recorded")."""
        groups: dict[tuple, list[dict]] = {}
        for o in self.origins:
            groups.setdefault((o.get("cpu") or "unknown CPU", o.get("cpu_capability"), o.get("torch") or "?",
                               o.get("device") or "?"), []).append(o)
        out = []
        for (cpu, cap, torch_v, dev), rows in groups.items():
            dates = sorted({r["finished"][:10] for r in rows if r.get("finished")})
            loads = [float(r["load"]) for r in rows if r.get("load") is not None]
            when = (dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}") if dates else "date not recorded"
            load = (f", load {min(loads):.1f}-{max(loads):.1f}" if loads else "")
            out.append(f"{cpu}{f' ({cap})' if cap else ''}, torch {torch_v}, {dev}, {when}{load}")
        return out

    def describe(self) -> str:
        """One line for people: "from 54 stored runs made on <CPU, torch, date, load>" or "measured here in N s"."""
        parts = []
        if self.stored:
            parts.append(f"{self.stored} run{'s' if self.stored != 1 else ''} read from stored runs")
        if self.cached:
            parts.append(f"{self.cached} from this machine's cache")
        if self.computed:
            parts.append(f"{self.computed} measured here in {self.computed_seconds:.0f} s")
        if not parts:
            return "no runs"
        text = "; ".join(parts)
        made = self.machines()
        if made and (self.stored or self.cached):
            text += ". Reused runs were made on " + "; ".join(made)
        return text

    def as_dict(self) -> dict:
        return {"computed": self.computed, "computed_seconds": round(self.computed_seconds, 1), "cached": self.cached,
                "stored": self.stored, "verified": self.verified, "machines": self.machines(),
                "text": self.describe()}


_COLLECTORS: list[Provenance] = []
_COLLECTORS_LOCK = threading.Lock()


@contextlib.contextmanager
def provenance() -> Iterator[Provenance]:
    """Collect where the runs of every :func:`run_jobs` call inside the block came from (any thread of this
    process: a chapter's measurement may run in a background job)::

        with provenance() as prov:
            results = study.measure(params)
        print(prov.describe())
    """
    record = Provenance()
    with _COLLECTORS_LOCK:
        _COLLECTORS.append(record)
    try:
        yield record
    finally:
        with _COLLECTORS_LOCK:
            _COLLECTORS.remove(record)


def _note_provenance(keys: Sequence[str], **counts: Any) -> None:
    """Add one run_jobs call's counts to every active :func:`provenance` record, and its run keys to the ledger
    file named by ``$DSOPT_RUN_LEDGER`` (``dsopt run --update-notebook --reuse-stored`` keeps exactly the stored
    runs a notebook used)."""
    with _COLLECTORS_LOCK:
        for record in _COLLECTORS:
            record.add(**counts)
    ledger = os.environ.get("DSOPT_RUN_LEDGER")
    if ledger and keys:
        with open(ledger, "a", encoding="utf-8") as f:
            f.write("".join(f"{k}\n" for k in keys))


# ----------------------------------------------------------------------------- what produced a run
def cache_key(*parts: Any, code: Callable | str | None = None) -> str:
    """A short stable key: sha256 of ``parts`` (JSON; ``repr`` for other objects) and the code fingerprint of
    ``code`` (:func:`~dsopt.studies.fingerprint.fingerprint`: the modules its Study declares, hashed as syntax).
    ``code`` defaults to the module that calls ``cache_key``, so a study's key changes when the code it
    declares changes, and only then; the machine is not part of it."""
    if code is None:
        code = sys._getframe(1).f_globals.get("__name__")
    text = json.dumps([fingerprint(code)["code"], *parts], default=repr, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_key(user_key: str, fp: dict, run_name: str) -> str:
    return hashlib.sha256(json.dumps([user_key, fp["code"], run_name], sort_keys=True).encode()).hexdigest()[:20]


# ----------------------------------------------------------------------------- stored runs
def stored_run_dirs() -> list[Path]:
    """Folders of stored runs: ``$DSOPT_STORED_RUNS`` (paths; ``0``/``off`` = none), else ``./stored_runs``."""
    env = os.environ.get("DSOPT_STORED_RUNS")
    if env is not None:
        if env.strip().lower() in ("", "0", "off", "no", "false"):
            return []
        return [Path(p) for p in env.split(os.pathsep) if p and Path(p).is_dir()]
    here = Path.cwd() / "stored_runs"
    return [here] if here.is_dir() else []


def _env_int(name: str) -> int:
    try:
        return max(0, int(os.environ.get(name, "0") or 0))
    except ValueError:
        return 0


def _regenerate_hint() -> str:
    chapter = os.environ.get("DSOPT_CHAPTER", "NN")
    return f"regenerate the committed notebook and its runs with `dsopt run {chapter} --update-notebook`"


def _skip_field(name: str) -> bool:
    n = name.lower()
    return "seconds" in n or n.endswith(("_s", "_ms")) or "time" in n or "duration" in n


def compare_results(stored: Any, fresh: Any, *, atol: float, rtol: float, path: str = "") -> list[str]:
    """Differences between two results beyond ``atol + rtol * |stored|`` (timing fields are skipped)."""
    if isinstance(stored, dict) and isinstance(fresh, dict):
        out = []
        for k in sorted(set(stored) | set(fresh), key=str):
            if _skip_field(str(k)):
                continue
            if k not in stored or k not in fresh:
                out.append(f"{path}/{k}: present in only one of stored and fresh")
                continue
            out += compare_results(stored[k], fresh[k], atol=atol, rtol=rtol, path=f"{path}/{k}")
        return out
    if isinstance(stored, (list, tuple)) and isinstance(fresh, (list, tuple)):
        if len(stored) != len(fresh):
            return [f"{path}: length {len(stored)} stored vs {len(fresh)} fresh"]
        out = []
        for i, (a, b) in enumerate(zip(stored, fresh)):
            out += compare_results(a, b, atol=atol, rtol=rtol, path=f"{path}[{i}]")
        return out
    num = (int, float)
    if isinstance(stored, num) and isinstance(fresh, num) and not isinstance(stored, bool) and not isinstance(fresh, bool):
        a, b = float(stored), float(fresh)
        if math.isnan(a) and math.isnan(b):
            return []
        return [] if abs(a - b) <= atol + rtol * abs(a) else [f"{path}: stored {a:.6g}, fresh {b:.6g}"]
    return [] if stored == fresh else [f"{path}: stored {stored!r}, fresh {fresh!r}"]


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
    stored_runs: read the stored runs beside a notebook (default); False measures here what the cache lacks
        ("measure on this machine": a chapter's ``stored_runs`` parameter and its panel button).
    executor: where runs execute (:mod:`dsopt.studies.executors`): "local", "dask", "dask://HOST:PORT" or a
        ``distributed.Client``; None (default) reads ``$DSOPT_EXECUTOR``, else local.
    """

    on_progress: Callable[[str, int, int], None] | None = None
    cancel: threading.Event | None = None
    nice: int = 0
    isolate: bool = False
    #: False: stored runs are not read (every run not in ``cache_dir`` is measured on this machine).
    stored_runs: bool = True
    executor: Any = None


_EXECUTION: contextvars.ContextVar[Execution] = contextvars.ContextVar("dsopt_jobs_execution", default=Execution())


def current_execution() -> Execution:
    """The :class:`Execution` settings of the current context (a new thread starts from the defaults)."""
    return _EXECUTION.get()


@contextlib.contextmanager
def execution(**settings: Any) -> Iterator[Execution]:
    """Run grids started inside the ``with`` block with these :class:`Execution` settings."""
    current = replace(_EXECUTION.get(), **settings)
    check_number("nice", current.nice, low=0, high=19, integer=True)
    from dsopt.studies.executors import parse_executor  # imported when used: a run function's imports stay few

    parse_executor(current.executor)  # a bad spec is refused here, not at the first grid
    token = _EXECUTION.set(current)
    try:
        yield current
    finally:
        _EXECUTION.reset(token)


def _worker_init(parent_pid: int, nice: int, halt) -> None:
    """Process-pool initializer: lower priority, and exit when the parent dies or ``halt`` is set.

    SIGINT is ignored: a Ctrl-C or a kernel's Interrupt goes to the whole process group, and a worker dying of it
    half-way broke the pool, so a cancelled comparison read as failed. The parent decides: it cancels (a kernel's
    Interrupt, see dsopt_widgets.background) or stops the workers as it unwinds (Ctrl-C in a script)."""
    from dsopt.util.lifetime import exit_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice:
        os.nice(nice)
    exit_with_parent(parent_pid, also=halt.is_set)


# ----------------------------------------------------------------------------- the runner
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
    verify: bool = True,
    tolerance: dict | None = None,
) -> dict[Hashable, dict]:
    """Run ``run(*args, **kwargs)`` for every job (``args, kwargs = call(job)``); return job -> result.

    ``key(job)`` names everything the result depends on besides the code (use :func:`cache_key`); the run
    file's name adds the code fingerprint of ``run`` and its name. Results must be JSON-serialisable
    dicts. Finished runs come from ``cache_dir``, then from the stored runs (:func:`stored_run_dirs`).
    ``DSOPT_STORED_RUNS_ONLY=1`` makes a run missing from both an error (tests); ``DSOPT_STORED_RUNS_VERIFY=k``
    re-executes k stored runs (:func:`spot_check_pick`) and compares them within ``tolerance`` (default
    :data:`SPOT_CHECK_TOLERANCE`) unless ``verify=False`` (runs that time the machine). Stored runs made with
    another torch build or device are spot-checked (k >= 1) before they are reused; if the check fails they are
    computed again here (with ``DSOPT_STORED_RUNS_ONLY``: an error naming both machines).
    Progress reporting, cancellation, worker priority, isolation and the executor (local processes or a Dask
    cluster, :mod:`dsopt.studies.executors`) follow the caller's :func:`execution` context. Whatever executes the
    runs, this process reads and writes the run files; each records the machine that made the run.
    """
    workers = check_number("workers", workers or default_workers(), low=1, high=64, integer=True)
    from dsopt.studies.executors import current_executor, run_on_dask

    ex = _EXECUTION.get()
    where = current_executor(ex.executor)
    fp = fingerprint(run)
    run_name = f"{getattr(run, '__module__', '?')}:{getattr(run, '__qualname__', '?')}"
    here = machine()
    keys = {job: _run_key(key(job), fp, run_name) for job in jobs}
    paths = {job: (Path(cache_dir) / f"{keys[job]}.json" if cache_dir else None) for job in jobs}
    stored_index = {p.stem: p for d in stored_run_dirs() for p in d.rglob("*.json")} if ex.stored_runs else {}
    done: dict[Hashable, dict] = {}
    from_store: list[Hashable] = []
    seconds: dict[Hashable, float] = {}
    origins: dict[Hashable, dict] = {}
    todo = []
    cached: list[Hashable] = []
    for job in jobs:
        record = _lookup(paths[job], keys[job], whole=True)
        result = None if record is None else record["result"]
        if result is not None:
            cached.append(job)
            origins[job] = record.get("machine") or {}
        if result is None and keys[job] in stored_index:
            record = _lookup(stored_index[keys[job]], keys[job], whole=True)
            if record is not None:
                result = record["result"]
                seconds[job] = float(record.get("seconds") or 0.0)
                origins[job] = record.get("machine") or {}
                from_store.append(job)
        if result is None:
            todo.append(job)
        else:
            done[job] = result
    stored_only = os.environ.get("DSOPT_STORED_RUNS_ONLY", "").strip() in ("1", "true", "yes")
    if todo and stored_only:
        raise StoredRunError(
            f"{len(todo)} of {len(jobs)} runs of {run_name} are neither cached nor stored for this code "
            f"(code {fp['code'][:12]} of {', '.join(fp['modules'][:12])}; stored runs looked up in "
            f"{', '.join(map(str, stored_run_dirs())) or 'no folder'}). The committed notebook is out of date: "
            f"{_regenerate_hint()}.")
    k = _env_int("DSOPT_STORED_RUNS_VERIFY")
    elsewhere = _made_elsewhere([origins[j] for j in from_store], here)
    verified = 0
    if verify and from_store and (k or elsewhere):
        from dsopt.studies.fingerprint import study_of

        picked = spot_check_pick(from_store, keys, seconds, max(k, 1), seed=spot_check_seed(),
                                 group=getattr(study_of(run), "spot_check_group", None))
        try:
            _spot_check(picked, run, call, done, keys, tolerance or SPOT_CHECK_TOLERANCE, run_name, elsewhere)
            verified = len(picked)
        except StoredRunError as exc:
            if stored_only or not elsewhere:
                raise
            print(f"dsopt: {exc}; computing the {len(from_store)} stored runs again here", file=sys.stderr)
            todo += from_store
            for job in from_store:
                done.pop(job, None)
            from_store = []
    bar = tqdm(total=len(jobs), initial=len(done), desc=desc, disable=not progress)

    computed_seconds = [0.0]

    def finish(job, timed: tuple) -> None:
        """``timed``: (result, seconds) from this machine, or (result, seconds, machine record) from a worker."""
        result, seconds = timed[0], timed[1]
        computed_seconds[0] += seconds
        if paths[job] is not None:
            made = timed[2] if len(timed) > 2 else made_now(here)
            write_run(paths[job], seal(keys[job], result, fingerprint=fp, job=_jsonable(job), run=run_name,
                                       seconds=round(seconds, 3), machine=made))
        done[job] = result
        bar.update(1)

    def report() -> None:
        if ex.on_progress is not None:
            ex.on_progress(desc, len(done), len(jobs))

    def finish_and_report(job, result: dict) -> None:
        finish(job, result)
        report()

    report()
    try:
        if todo and where.kind != "local":
            run_on_dask(where, todo, run, call, workers=workers, code=fp["code"], run_name=run_name, nice=ex.nice,
                        finish=finish_and_report, check_cancel=lambda: _check_cancel(ex, desc, len(done), len(jobs)))
        elif todo and (workers == 1 or len(todo) == 1) and not ex.isolate:
            for job in todo:
                _check_cancel(ex, desc, len(done), len(jobs))
                args, kwargs = call(job)
                finish_and_report(job, _timed(run, args, kwargs))
        elif todo:
            _run_in_workers(todo, run, call, min(workers, len(todo)), ex, desc, finish_and_report,
                            progress=lambda: (len(done), len(jobs)))
    finally:
        bar.close()
    _note_provenance([keys[j] for j in jobs], computed=len(todo), seconds=computed_seconds[0], cached=len(cached),
                     stored=len(from_store), origins=[origins[j] for j in cached + from_store], verified=verified)
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
    try:
        drain(lambda job: pool.submit(_timed, run, *call(job)), todo, finish,
              lambda: _check_cancel(ex, desc, *progress()))
    except BaseException:
        halt.set()  # running workers exit within a second instead of finishing their runs
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def drain(submit: Callable[[Hashable], Any], todo: Sequence[Hashable], finish: Callable[[Hashable, Any], None],
          check_cancel: Callable[[], None]) -> None:
    """Submit every job (``submit(job)`` returns a concurrent.futures-style future), then hand each result to
    ``finish(job, result)`` on this thread as it arrives, calling ``check_cancel`` at least every 0.5 s. On any
    exception the futures not yet started are cancelled and it propagates (the caller stops its workers). The one
    loop of the local pool and of the Dask executor."""
    futures = {}
    try:
        for job in todo:
            futures[submit(job)] = job
        pending = set(futures)
        while pending:
            check_cancel()
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                finish(futures[fut], fut.result())
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise


def made_now(record: dict) -> dict:
    """A :func:`~dsopt.studies.fingerprint.machine` record stamped with the time and load average now: where, when
    and under what load a run was made (provenance for people; never part of a key)."""
    return {**record, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load": round(os.getloadavg()[0], 2)}


def spot_check_pick(jobs: list, keys: dict, seconds: dict, k: int, *, seed: str | None = None,
                    group: Callable[[Hashable], Any] | None = None) -> list:
    """The k stored runs to re-execute, among the runs that took at most twice the median time to make (so the
    check stays cheap; a stored time also reflects the load it was made under, so a run a little slower than
    the median is no reason to pick another seed).

    Without ``seed``: the first of them in the caller's order, then the others in key order (a fixed spread over
    the grid). The caller's order comes first because the rounds of one comparison list their grids alike (the
    first seed first), so their checks land on runs that share what is expensive to rebuild (chapter 02's rounds
    fine-tune one MiniLM, the first seed's).

    With ``seed`` (``$DSOPT_SPOT_CHECK_SEED``: CI passes the commit id, ``--verify`` a fresh random one): a random
    pick, reproducible from the seed and unknowable before it, each run drawn with weight 1 / its stored time (the
    cheaper more often; every cheap run can be drawn), so over many commits every stored run is re-executed.
    ``group(job)`` (a Study's ``spot_check_group``, e.g. the job's seed) keeps what is expensive
    shared: the first pick comes from one group drawn by :func:`spot_check_group_pick` from the seed alone, so
    every round of a comparison draws the same group (and chapter 02 fine-tunes one model, whichever)."""
    times = sorted(seconds.get(j, 0.0) for j in jobs)
    median = times[(len(times) - 1) // 2] if times else 0.0
    cheap = [j for j in jobs if seconds.get(j, 0.0) <= 2 * median]
    if seed is None:
        return (cheap[:1] + sorted(cheap[1:], key=lambda j: keys[j]))[:k]
    import random

    rng = random.Random(f"{seed}|{'|'.join(sorted(keys[j] for j in cheap))}")
    pool = sorted(cheap, key=lambda j: keys[j])
    first: list = []  # the drawn group's runs: the first pick comes from them
    if group is not None and pool:
        chosen = spot_check_group_pick(seed, [group(j) for j in pool])
        first = [j for j in pool if group(j) == chosen]
    # drawn without replacement, each with weight 1 / (its stored time): every cheap run can be drawn, the cheaper
    # more often, so a check's expected cost is about a cheap run's (some chapters' runs differ several-fold in time)
    out = []
    while pool and len(out) < k:
        head = first if first and not out else pool
        weights = [1.0 / max(seconds.get(j, 0.0), 1e-3) for j in head]
        pick = rng.choices(head, weights=weights)[0]
        out.append(pick)
        pool.remove(pick)
    return out


def spot_check_group_pick(seed: str, groups: Sequence) -> Any:
    """The group a seeded spot check draws its first run from: a function of the seed and the set of groups only
    (not of the grid), so every round of one comparison draws the same one. A cache warm-up calls it too."""
    import random

    values = sorted(set(groups), key=repr)
    return values[random.Random(f"{seed}|group").randrange(len(values))] if values else None


def spot_check_seed() -> str | None:
    """``$DSOPT_SPOT_CHECK_SEED``, or None (the fixed pick)."""
    return os.environ.get("DSOPT_SPOT_CHECK_SEED", "").strip() or None


def _timed(run: Callable[..., dict], args: tuple, kwargs: dict) -> tuple[dict, float]:
    """``run(*args, **kwargs)`` and its wall time (module-level: spawned workers pickle it by name)."""
    t0 = time.perf_counter()
    result = run(*args, **kwargs)
    return result, time.perf_counter() - t0


def _jsonable(job):
    try:
        return json.loads(json.dumps(job))
    except (TypeError, ValueError):
        return repr(job)


def _lookup(path: Path | None, key: str, whole: bool = False) -> dict | None:
    """The result (``whole``: the record) stored at ``path`` if the file exists and passes its checks;
    a bad file is reported and ignored (the run is computed again)."""
    if path is None or not path.is_file():
        return None
    try:
        record = read_run(path, key)
        return record if whole else record["result"]
    except RunFileError as exc:
        warnings.warn(f"dsopt: {exc}; computing the run again", stacklevel=3)
        print(f"dsopt: {exc}; computing the run again", file=sys.stderr)
        return None


def _made_elsewhere(origins: list[dict], here: dict) -> str:
    """How the machines that made stored runs differ from this one in what can change numbers (torch build,
    device), as a phrase; "" when they do not (older run files that recorded no machine count as the same)."""
    other = set()
    for m in origins:
        for name in ("torch", "device"):
            if m.get(name) and m[name] != here.get(name):
                other.add(f"{name} {m[name]} (here: {here.get(name)})")
    return ", ".join(sorted(other))


def _spot_check(picked, run, call, done, keys, tolerance, run_name, elsewhere: str = "") -> None:
    """Re-execute ``picked`` stored runs here and compare with what was stored (raises on a difference).

    ``elsewhere`` says how the machine that made them differs from this one: the check then decides
    whether stored runs made elsewhere are reused here, and its failure names both machines."""
    for job in picked:
        args, kwargs = call(job)
        fresh = json.loads(json.dumps(run(*args, **kwargs), default=repr))
        diffs = compare_results(done[job], fresh, **tolerance)
        if diffs:
            shown = "; ".join(diffs[:8]) + (f"; ... {len(diffs) - 8} more" if len(diffs) > 8 else "")
            raise StoredRunError(
                f"stored run {keys[job]} of {run_name} (job {job!r}){' made with ' + elsewhere if elsewhere else ''} "
                f"does not reproduce on this machine within "
                f"atol={tolerance['atol']}, rtol={tolerance['rtol']}: {shown}. Either the stored run is wrong "
                f"or the code is not deterministic enough: {_regenerate_hint()} and check the run.")
