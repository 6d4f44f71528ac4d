"""run_jobs' execution side: progress, cancellation, worker priority, isolation, and no worker left
behind when a grid fails, is cancelled, or its parent (a script or a Jupyter kernel) is killed with -9."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from jobs_helpers import alive, dispatch, sleepy, wait_for_files, wait_gone

from dsopt.studies.jobs import JobsCancelled, cache_key, execution, run_jobs

HERE = Path(__file__).resolve().parent


def call(job):
    return job, {}


def key(job):
    return cache_key("execution-test", job)


def test_progress_nice_and_isolation(tmp_path):
    seen = []
    with execution(on_progress=lambda desc, done, total: seen.append((desc, done, total)), nice=7, isolate=True):
        out = run_jobs([(0.1,), (0.2,)], sleepy, call, key=key, cache_dir=tmp_path, workers=1, progress=False,
                       desc="naps")
    assert seen == [("naps", 0, 2), ("naps", 1, 2), ("naps", 2, 2)]
    assert {r["pid"] for r in out.values()} != {os.getpid()}  # isolate: in a worker even with workers=1
    assert all(r["nice"] >= min(19, os.nice(0) + 7) for r in out.values())  # the workers' lower priority
    seen.clear()
    with execution(on_progress=lambda *a: seen.append(a)):  # all cached: one report, nothing run
        run_jobs([(0.1,), (0.2,)], sleepy, call, key=key, cache_dir=tmp_path, progress=False, desc="naps")
    assert seen == [("naps", 2, 2)]
    with pytest.raises(ValueError, match="nice"):
        with execution(nice=40):
            pass


def test_cancel_stops_running_workers_and_keeps_finished_runs(tmp_path):
    cancel = threading.Event()
    pids = tmp_path / "pids"
    pids.mkdir()
    jobs = [(0.05, str(pids)), (600, str(pids)), (601, str(pids))]
    cancelled_at = []

    def cancel_once_all_started():  # spawned workers importing torch: a minute or more on a loaded machine
        # the short run has finished (its result is cached) and both long runs have started: a worker that
        # finished the short run may take a long one too, so two distinct pids can be all there is
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (len(list(tmp_path.glob("*.json"))) == 1
                                                    and len(list(pids.glob("*.pid"))) >= 2):
            time.sleep(0.1)
        time.sleep(1.0)  # let the second long run start if a worker is still picking it up
        cancelled_at.append(time.monotonic())
        cancel.set()

    threading.Thread(target=cancel_once_all_started, daemon=True).start()
    with pytest.raises(JobsCancelled, match="cancelled after 1 of 3"), execution(cancel=cancel):
        run_jobs(jobs, sleepy, call, key=key, cache_dir=tmp_path, workers=3, progress=False)
    assert time.monotonic() - cancelled_at[0] < 30  # the running jobs stopped, not the 600 s they would take
    assert wait_gone([int(p.stem) for p in pids.glob("*.pid")], 10) == []
    assert len(list(tmp_path.glob("*.json"))) == 1  # the finished run stays cached, the cancelled ones are not


def test_a_failing_run_stops_the_other_workers(tmp_path):
    """One run fails after a second while another would sleep a minute: the grid fails at once."""
    pids = tmp_path / "pids"
    pids.mkdir()
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="failed after"):
        run_jobs(["fail", "sleep"], dispatch, lambda j: ((j, str(pids)), {}), key=key, workers=2, progress=False)
    assert time.monotonic() - t0 < 40
    assert wait_gone([int(p.stem) for p in pids.glob("*.pid")], 10) == []


PARENT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from jobs_helpers import sleepy
    from dsopt.studies.jobs import cache_key, run_jobs
    run_jobs([(120, {pids!r}), (121, {pids!r})], sleepy, lambda j: (j, {{}}),
             key=lambda j: cache_key("orphan-test", j), workers=2, progress=False)
""")


def test_workers_end_within_10_s_when_their_parent_is_killed(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(tests=str(HERE), pids=str(pids))])
    try:
        workers = [int(p.stem) for p in wait_for_files(pids, 2, 120)]
        assert all(alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert wait_gone(workers, 10) == [], "workers outlived their killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        for p in pids.glob("*.pid"):
            if alive(int(p.stem)):
                os.kill(int(p.stem), signal.SIGKILL)


def test_interrupt_cancels_a_background_comparison_and_workers_end_when_the_kernel_is_killed(tmp_path):
    """A background comparison in a Jupyter kernel with a frontend. Kernel > Interrupt while no cell runs cancels
    it (issue 20 item 5: it reached nothing, ipykernel ignores SIGINT while idle) and its workers end; a second
    one's workers end within 10 s when the kernel gets kill -9."""
    from jupyter_client import KernelManager

    pids = tmp_path / "pids"
    pids.mkdir()
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "DSOPT_FRONTEND": "1", "PYTHONPATH": str(HERE)}, cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        code = textwrap.dedent(f"""
            from jobs_helpers import sleepy
            from dsopt.studies.jobs import cache_key, run_jobs
            from dsopt_widgets.background import run_in_background
            job = run_in_background(run_jobs, [(120, {str(pids)!r}), (121, {str(pids)!r})], sleepy,
                                    lambda j: (j, {{}}), key=lambda j: cache_key("kernel-test", j), workers=2,
                                    progress=False, desc="naps")
            print(job.state)
        """)
        reply = kc.execute_interactive(code, timeout=120)
        assert reply["content"]["status"] == "ok"
        workers = [int(p.stem) for p in wait_for_files(pids, 2, 120)]
        km.interrupt_kernel()  # the kernel is idle: the cell above returned at once
        assert wait_gone(workers, 15) == [], "an Interrupt left the background comparison's workers running"
        seen: list[str] = []
        check = "job._done.wait(30); job._views and job._views[0].update(); print(job.state, job.cancel_reason)"
        reply = kc.execute_interactive(check, timeout=60, output_hook=lambda m: seen.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok" and "".join(seen).strip() == "cancelled Kernel > Interrupt"
        for p in list(pids.glob("*.pid")):
            p.unlink()
        reply = kc.execute_interactive(code.replace("(120, ", "(130, ").replace("(121, ", "(131, "), timeout=120)
        assert reply["content"]["status"] == "ok"
        workers = [int(p.stem) for p in wait_for_files(pids, 2, 120)]
        kernel_pid = km.provisioner.process.pid
        assert all(alive(p) for p in workers) and alive(kernel_pid)
        os.kill(kernel_pid, signal.SIGKILL)
        assert wait_gone(workers, 10) == [], "workers outlived the killed kernel"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        for p in pids.glob("*.pid"):
            if alive(int(p.stem)):
                os.kill(int(p.stem), signal.SIGKILL)
