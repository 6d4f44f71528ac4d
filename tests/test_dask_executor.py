"""A chapter's grid on a real Dask cluster: `dask scheduler` + two `dask worker` processes on 127.0.0.1.

What a user of `DSOPT_EXECUTOR=dask://HOST:PORT` relies on: the results equal the local executor's exactly
(deterministic runs), a worker killed mid-grid does not lose the grid, the client writes every run file (workers
have no cache folder) and each records the machine that made it, a worker with other code refuses, a failing run
stops the grid with its own error, a Dask cluster that dsopt starts lets jobs start processes and ends with the
grid, and no process outlives the test.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    import distributed  # noqa: F401  CI installs the cluster extra: a missing one must fail, not skip
else:
    pytest.importorskip("distributed", reason="the Dask executor tests need pip install 'dsopt[cluster]'")

import dask_probe  # noqa: E402
from jobs_helpers import alive, wait_gone  # noqa: E402

from dsopt.studies.executors import CodeVersionError, parse_executor, scheduler_answers  # noqa: E402
from dsopt.studies.jobs import JobsCancelled, cache_key, execution, run_jobs  # noqa: E402

pytestmark = pytest.mark.process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args: str, pythonpath: str, log: Path) -> subprocess.Popen:
    """A `dask` CLI process in its own session (killed as a group), children allowed to start processes."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([pythonpath, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    dask_cli = Path(sys.executable).with_name("dask")
    return subprocess.Popen([str(dask_cli), *args], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for p in procs:
        p.wait(30)


def _group_pids(proc: subprocess.Popen) -> list[int]:
    import psutil

    try:
        return [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class Cluster:
    """A scheduler and ``n`` workers (one thread each) on 127.0.0.1, as README's "When one machine is not enough"
    starts them."""

    def __init__(self, tmp: Path, n: int, pythonpath: str = str(HERE)):
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard",
                               pythonpath=pythonpath, log=tmp / f"scheduler-{self.port}.log")
        self.workers = [_dask("worker", self.address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                              "--host", "127.0.0.1", "--name", f"w{i}", pythonpath=pythonpath,
                              log=tmp / f"worker{i}-{self.port}.log") for i in range(n)]
        self.pids: list[int] = []
        from distributed import Client

        with Client(self.address, timeout="60s", set_as_default=False) as client:
            client.wait_for_workers(n, timeout=120)
        self.pids = [pid for p in [self.scheduler, *self.workers] for pid in _group_pids(p)]

    def close(self) -> list[int]:
        _stop([*self.workers, self.scheduler])
        return wait_gone(self.pids, 15)


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("DSOPT_STORED_RUNS", "off")  # measure, never read the committed runs
    c = Cluster(tmp_path, 2)
    try:
        yield c
    finally:
        assert c.close() == [], "a Dask process outlived the test"


@pytest.mark.data("digits")
def test_a_chapter_grid_on_a_real_cluster_equals_local_and_survives_a_killed_worker(cluster, tmp_path):
    from dsopt.studies.catalog import get_study

    study = get_study("01")
    params = {"tasks": "digits", "scale": "tiny", "epochs": 2, "n_seeds": 1}
    local = study.measure(params, cache_dir=str(tmp_path / "local"), progress=False, workers=1)  # in this process

    killed = []

    def on_progress(desc, done, total):
        if done >= 1 and not killed:  # mid-grid: one run back, the rest queued or running
            killed.append(_group_pids(cluster.workers[0]))
            os.killpg(cluster.workers[0].pid, signal.SIGKILL)

    t0 = time.monotonic()
    with execution(executor=cluster.address, on_progress=on_progress):
        remote = study.measure(params, cache_dir=str(tmp_path / "remote"), progress=False)
    assert killed and wait_gone(killed[0], 10) == [], "the killed worker is still running"
    assert remote["runs"] == local["runs"], "the cluster's results differ from the local executor's"
    assert len(remote["runs"]) == 4
    files = sorted((tmp_path / "remote").glob("*.json"))
    assert len(files) == 4, "the client writes every run file"
    made = [json.loads(f.read_text())["machine"] for f in files]
    assert all(m["host"] == socket.gethostname() and m["cpu"] and m.get("finished") for m in made)
    print(f"grid of 4 on the cluster with one worker killed: {time.monotonic() - t0:.1f} s")

    # A run that fails on a worker stops the grid with its own error (the other jobs are cancelled).
    with execution(executor=cluster.address), pytest.raises(ValueError, match="boom after 0.2 s"):
        run_jobs([0.2, 30.0], dask_probe.boom, lambda j: ((j,), {}), key=lambda j: cache_key("boom", j),
                 cache_dir=str(tmp_path / "boom"), progress=False)
    ok, text = scheduler_answers(parse_executor(cluster.address))
    assert ok and "1 worker" in text, text


def test_a_worker_with_other_code_refuses_the_job_naming_both_versions(tmp_path):
    """A worker whose dsopt differs from the client's in code (here: one line in dsopt/lr/schedules.py) refuses."""
    import shutil

    import dsopt

    stale = tmp_path / "stale"
    shutil.copytree(Path(dsopt.__file__).parent, stale / "dsopt", ignore=shutil.ignore_patterns("__pycache__"))
    with (stale / "dsopt" / "lr" / "schedules.py").open("a") as f:
        f.write("\n_OTHER_VERSION = 1\n")
    c = Cluster(tmp_path, 1, pythonpath=os.pathsep.join([str(stale), str(HERE)]))
    try:
        with execution(executor=f"dask://127.0.0.1:{c.port}"), pytest.raises(CodeVersionError) as err:
            run_jobs([0.1], dask_probe.slow, lambda j: ((j,), {}), key=lambda j: cache_key("stale", j),
                     cache_dir=str(tmp_path / "cache"), progress=False)
        from dsopt.studies.fingerprint import fingerprint

        text = str(err.value)
        ours = fingerprint(dask_probe.slow)["code"][:12]
        assert f"the client {ours}" in text and "has code " in text and "Install the client's dsopt" in text, text
        assert not list((tmp_path / "cache").glob("*.json")), "nothing is cached from a refused job"
    finally:
        assert c.close() == []


def test_a_dask_cluster_started_here_runs_jobs_that_start_processes_and_ends_on_cancel(tmp_path):
    import psutil

    me = psutil.Process()
    # processes this test starts, not those of the session (a shared JupyterLab, cache warm-up children in CI)
    before = {c.pid for c in me.children(recursive=True)}

    def started() -> list:
        return [c for c in me.children(recursive=True) if c.pid not in before]

    with execution(executor="dask", nice=5):
        out = run_jobs([1, 2], dask_probe.with_child, lambda j: ((j,), {}), key=lambda j: cache_key("child", j),
                       cache_dir=str(tmp_path / "a"), workers=2, progress=False)
    assert [out[j]["exitcode"] for j in (1, 2)] == [0, 0]
    assert [out[j]["nice"] for j in (1, 2)] == [5, 5], "nice lowers the priority of the jobs' threads"
    assert all(out[j]["pid"] != os.getpid() for j in (1, 2)), "jobs ran in worker processes"
    left = [c for c in started() if "resource_tracker" not in " ".join(c.cmdline())]
    assert left == [], "the cluster dsopt started ends with the grid"  # (multiprocessing's tracker ends with us)

    cancel = threading.Event()
    seen, listening = [], []

    def watch():  # cancel as soon as the cluster's workers are running the 60 s jobs
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not seen:
            seen[:] = [c for c in started() if "spawn_main" in " ".join(c.cmdline())]
            time.sleep(0.2)
        time.sleep(0.5)
        for p in [me, *seen]:  # the scheduler (in this process) and the workers
            listening.extend(c.laddr.ip for c in p.net_connections(kind="inet") if c.status == "LISTEN")
        cancel.set()

    threading.Thread(target=watch, daemon=True).start()
    t0 = time.monotonic()
    with execution(executor="dask", cancel=cancel), pytest.raises(JobsCancelled):
        run_jobs([60.0, 60.5, 61.0], dask_probe.slow, lambda j: ((j,), {}), key=lambda j: cache_key("cancel", j),
                 cache_dir=str(tmp_path / "b"), workers=2, progress=False)
    assert time.monotonic() - t0 < 45, "cancel did not stop the grid"
    assert listening and set(listening) == {"127.0.0.1"}, f"a cluster dsopt starts listens on {set(listening)}"
    assert wait_gone([c.pid for c in seen], 10) == [] and not any(alive(c.pid) for c in seen)
