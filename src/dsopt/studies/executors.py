"""Where a grid's runs execute: the local process pool (default) or a Dask cluster.

:func:`~dsopt.studies.jobs.run_jobs` decides *what* to run (cache, stored runs, spot checks) and writes every run
file itself; an executor only runs ``run(*args, **kwargs)`` somewhere and hands back the result, its wall time
and the machine that made it. So workers need no shared disk: results travel back to the client, which keeps
the cache. Chosen, first match wins, by

- ``execution(executor=...)`` around the code (a notebook cell, a background job), or
- ``$DSOPT_EXECUTOR`` (``dsopt run ... --executor SPEC`` sets it for the run's kernel), else ``local``.

Specs: ``local`` (spawned worker processes on this machine, today's default); ``dask`` (a Dask cluster of
``workers`` processes started on this machine for the grid and closed after it: the same machine, Dask's
scheduling); ``dask://HOST:PORT`` or ``tcp://HOST:PORT`` (an existing Dask scheduler: ``dask scheduler`` plus
``dask worker`` processes on other machines); or a ``distributed.Client`` object (left open).

Dask is an optional extra (``pip install 'dsopt[cluster]'``); the plain install never imports it. On a Dask
worker each job first checks that the worker's code fingerprint of the run function equals the client's (else
:class:`CodeVersionError` names both), then runs, and returns its result with the worker's :func:`machine`
record (host, CPU) for the run file. A worker that dies mid-run has its jobs rescheduled by Dask's scheduler on
another worker (up to ``distributed.scheduler.allowed-failures`` times, 3 by default). Cancel and failure stop
the grid at once: a cluster dsopt started is closed (its workers end); on an external cluster pending jobs are
cancelled, and a job already running finishes on its worker (Dask cannot interrupt a running task) but its
result is ignored. ``nice`` lowers the priority of the thread that runs each job on a cluster dsopt started;
an external cluster's workers are other machines and keep theirs.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from dsopt.util.validation import ParameterError

#: The spec forms accepted by ``$DSOPT_EXECUTOR``, ``--executor`` and ``execution(executor=...)``.
SPEC_HELP = ("'local' (processes on this machine, the default), 'dask' (a Dask cluster started on this machine "
             "for the grid), 'dask://HOST:PORT' or 'tcp://HOST:PORT' (an existing Dask scheduler)")
INSTALL_HINT = "install the cluster extra: pip install 'dsopt[cluster]' (dask.distributed)"
_ADDRESS = re.compile(r"^(?:dask|tcp)://(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


class CodeVersionError(RuntimeError):
    """A worker's code for a run function differs from the client's: its results would not be this code's."""


@dataclass(frozen=True)
class ExecutorSpec:
    """A parsed executor choice: ``kind`` is "local", "dask-local" or "dask"; ``address`` for an external
    scheduler; ``client`` for a ``distributed.Client`` passed in."""

    kind: str
    address: str | None = None
    client: Any = None


def parse_executor(spec: Any, *, name: str = "executor") -> ExecutorSpec:
    """``spec`` (a string, a ``distributed.Client`` or None) as an :class:`ExecutorSpec`; a bad string is
    refused with the accepted forms, naming ``name`` (the option or variable it came from)."""
    if spec is None:
        return ExecutorSpec("local")
    if isinstance(spec, ExecutorSpec):
        return spec
    if not isinstance(spec, str):
        if type(spec).__name__ == "Client" and hasattr(spec, "scheduler"):
            return ExecutorSpec("dask", address=getattr(spec.scheduler, "address", None), client=spec)
        raise ParameterError(name, f"{name} must be one of {SPEC_HELP}, or a distributed.Client; got {spec!r}")
    text = spec.strip()
    low = text.lower()
    if low in ("", "local"):
        return ExecutorSpec("local")
    if low in ("dask", "dask://local"):
        return ExecutorSpec("dask-local")
    m = _ADDRESS.match(text)
    if m and 0 < int(m.group("port")) < 65536:
        return ExecutorSpec("dask", address=f"tcp://{m.group('host')}:{int(m.group('port'))}")
    raise ParameterError(name, f"{name} must be one of {SPEC_HELP}; got {spec!r}")


def current_executor(setting: Any = None) -> ExecutorSpec:
    """The executor for a grid: ``setting`` (from :func:`~dsopt.studies.jobs.execution`) if given, else
    ``$DSOPT_EXECUTOR``, else local."""
    if setting is not None:
        return parse_executor(setting)
    return parse_executor(os.environ.get("DSOPT_EXECUTOR") or None, name="DSOPT_EXECUTOR")


def import_distributed():
    """``distributed``, or a clear error saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"dsopt: the Dask executor needs dask.distributed, which is not installed: {INSTALL_HINT}"
                          ) from exc
    return distributed


# ----------------------------------------------------------------------------- what runs on a worker
def run_checked(run: Callable[..., dict], args: tuple, kwargs: dict, expected_code: str, run_name: str,
                nice: int = 0) -> tuple[dict, float, dict]:
    """On a Dask worker: refuse to run other code than the client's, then run and time ``run``.

    Returns ``(result, seconds, made)``; ``made`` is the worker's :func:`machine` record with the finish time and
    load (the run file records where the run was made, not where the client sat)."""
    from dsopt.studies.fingerprint import fingerprint, machine
    from dsopt.studies.jobs import _timed, made_now

    theirs = fingerprint(run)["code"]
    if theirs != expected_code:
        import socket

        raise CodeVersionError(
            f"worker {socket.gethostname()} has code {theirs[:12]} for {run_name}, the client {expected_code[:12]}: "
            f"its results would not be the client's code's. Install the client's dsopt on the workers (the same "
            f"checkout or wheel) and restart them.")
    if nice:
        _lower_thread_priority(nice)
    result, seconds = _timed(run, args, kwargs)
    return result, seconds, made_now(machine())


def _lower_thread_priority(nice: int) -> None:
    """Linux: lower this thread's priority to at least ``nice`` (never raises it: that needs privileges)."""
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)  # 0: the calling thread on Linux
        if current < nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    except (OSError, AttributeError):  # pragma: no cover - other platforms
        pass


# ----------------------------------------------------------------------------- the Dask executor
def run_on_dask(spec: ExecutorSpec, todo: Sequence[Hashable], run: Callable[..., dict],
                call: Callable[[Hashable], tuple[tuple, dict]], *, workers: int, code: str, run_name: str,
                nice: int, finish: Callable[[Hashable, tuple], None], check_cancel: Callable[[], None]) -> None:
    """Run ``todo`` through Dask; ``finish(job, (result, seconds, made))`` is called on this thread as each ends.

    On cancel (``check_cancel`` raises) or a failed job: pending jobs are cancelled, a cluster started here is
    closed (its workers end at once), and the exception propagates."""
    distributed = import_distributed()
    import dask

    cluster = None
    client = spec.client
    own_client = client is None
    with dask.config.set({"distributed.worker.daemon": False}), quiet_dask():  # jobs may start processes
        if spec.kind == "dask-local":
            cluster = distributed.LocalCluster(n_workers=max(1, min(workers, len(todo))), threads_per_worker=1,
                                               processes=True, host="127.0.0.1", dashboard_address=None,
                                               silence_logs=logging.ERROR)
        try:
            if own_client:
                try:
                    client = distributed.Client(cluster if cluster is not None else spec.address, timeout="10s",
                                                set_as_default=False)
                except OSError as exc:
                    raise ConnectionError(
                        f"dsopt: no Dask scheduler answers at {spec.address} ({exc}). Start one (`dask scheduler "
                        f"--host HOST --port PORT` and `dask worker tcp://HOST:PORT --nthreads 1`), or choose "
                        f"another executor: {SPEC_HELP}") from None
            _drive(client, todo, run, call, code=code, run_name=run_name,
                   nice=nice if cluster is not None else 0, finish=finish, check_cancel=check_cancel)
        finally:
            if own_client and client is not None:
                client.close()
            if cluster is not None:
                cluster.close()


@contextlib.contextmanager
def quiet_dask(level: int = logging.ERROR):
    """Dask's INFO lines (a cluster starting and closing, clients connecting) stay out of a notebook's output and
    the terminal while the block runs, also the closing lines after ``LocalCluster(silence_logs=...)`` restores."""
    import warnings

    logger = logging.getLogger("distributed")
    before = logger.level
    logger.setLevel(max(level, before))
    try:
        with warnings.catch_warnings():  # a second cluster's HTTP server moves off 8787 (on 127.0.0.1): harmless
            warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
            yield
    finally:
        logger.setLevel(before)


def _drive(client, todo, run, call, *, code: str, run_name: str, nice: int, finish, check_cancel) -> None:
    from dsopt.studies.jobs import drain

    pool = client.get_executor(pure=False)  # concurrent.futures-compatible futures
    drain(lambda job: pool.submit(run_checked, run, *call(job), code, run_name, nice), todo, finish, check_cancel)


def scheduler_answers(spec: ExecutorSpec, timeout: float = 5.0) -> tuple[bool, str]:
    """For ``dsopt doctor``: whether the executor can run jobs now, and a phrase saying what was found."""
    if spec.kind == "local":
        return True, f"local processes ({os.cpu_count() or 1} cores here)"
    try:
        distributed = import_distributed()
    except ImportError as exc:
        return False, str(exc).removeprefix("dsopt: ")
    if spec.kind == "dask-local":
        return True, f"a Dask cluster started on this machine for each grid (dask.distributed {distributed.__version__})"
    try:
        with distributed.Client(spec.address, timeout=f"{timeout}s", set_as_default=False) as client:
            info = client.scheduler_info()
            n = len(info.get("workers", {}))
            threads = sum(w.get("nthreads", 0) for w in info.get("workers", {}).values())
    except (OSError, TimeoutError) as exc:
        return False, f"no Dask scheduler answers at {spec.address} ({type(exc).__name__})"
    return n > 0, (f"the Dask scheduler at {spec.address} answers: {n} worker{'s' if n != 1 else ''}, "
                   f"{threads} thread{'s' if threads != 1 else ''}" + ("" if n else " (no workers: jobs would wait)"))
