"""Background jobs (dsopt_widgets.background): headless they block and show at once; with a frontend
they run on a thread (their grids in niced worker processes), show progress, then render in place."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import plotly.graph_objects as go
import pytest
from IPython.display import Markdown
from jobs_helpers import sleepy, wait_for_files, wait_gone

from dsopt.studies.jobs import cache_key, run_jobs
from dsopt_widgets.background import BACKGROUND_NICE, run_in_background, to_outputs


def grid(pid_dir=None, seconds=(0.1, 0.2), cache_dir=None):
    jobs = [(s, pid_dir) for s in seconds]
    return run_jobs(jobs, sleepy, lambda j: (j, {}), key=lambda j: cache_key("bg-test", j), cache_dir=cache_dir,
                    workers=2, progress=False, desc="naps")


def test_headless_runs_to_the_end_and_shows_at_once(capsys):
    job = run_in_background(lambda a, b: a + b, 2, 3, desc="sum", background=False)
    assert job.state == "done" and job.done and job.result() == 5
    job.show(lambda r: f"the sum is {r}")
    job.show(lambda r: Markdown(f"**{r}**"))
    out = capsys.readouterr().out
    assert "the sum is 5" in out and "Markdown" in out  # outside IPython, display() prints the repr
    with pytest.raises(ZeroDivisionError):
        run_in_background(lambda: 1 / 0, desc="boom", background=False)


def test_in_the_background_progress_then_the_rendering_in_place(tmp_path):
    gate = threading.Event()

    def slow():
        gate.wait(60)
        return grid(cache_dir=tmp_path)

    job = run_in_background(slow, desc="comparison", background=True)
    assert job.state == "running" and not job.done  # returned at once
    job.show(lambda r: [Markdown(f"**{len(r)} runs**"), go.Figure(go.Scatter(x=np.arange(3), y=np.ones(3))),
                        print("printed by the renderer")])
    job.show()  # a second view of the same job (a later cell), no rendering
    view = job._views[0]
    assert job._tick() is True and "starting" in view.label.value and view.output.outputs == ()
    gate.set()
    result = job.result(timeout=120)
    assert job.progress == ("naps", 2, 2)
    assert all(r["pid"] != os.getpid() and r["nice"] >= min(19, os.nice(0) + BACKGROUND_NICE) for r in result.values())
    assert job._tick() is False  # finished: the polling ends
    kinds = [list(o.get("data", {"stream": 1})) for o in view.output.outputs]
    assert view.output.outputs[0]["text"] == "printed by the renderer\n"
    assert "text/markdown" in kinds[1] and "application/vnd.plotly.v1+json" in kinds[2]
    assert "finished" in view.label.value and view.bar.layout.display == "none"
    assert job._views[1].output.outputs == ()


def test_then_waits_for_the_first_job_and_chains_its_result_failure_and_cancel():
    gate = threading.Event()
    first = run_in_background(lambda: (gate.wait(60), 20)[1], desc="comparison", name="then-first", background=True)
    second = first.then(lambda r, k: r + k, 1, desc="measurements", name="then-second")
    assert second.state == "running" and not second.done  # returned at once, waiting
    second.show(lambda r: f"got {r}")
    deadline = time.monotonic() + 30
    while second.waiting_for is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second._tick()
    assert "waiting for the comparison" in second._views[0].label.value
    gate.set()
    assert second.result(timeout=60) == 21 and second.waiting_for is None
    headless = run_in_background(lambda: 2, desc="h", background=False).then(lambda r: r * 3, desc="h2")
    assert headless.done and headless.result() == 6  # no frontend: at once, in order
    failing = run_in_background(lambda: 1 / 0, desc="broken", name="then-broken", background=True)
    after = failing.then(lambda r: r, desc="after the broken one", name="then-after")
    with pytest.raises(ZeroDivisionError):
        after.result(timeout=60)  # the first job's failure fails the chained one
    slow = run_in_background(lambda: time.sleep(30), desc="slow", name="then-slow", background=True)
    waiting = slow.then(lambda r: r, desc="waits", name="then-waits")
    waiting.cancel()
    t0 = time.monotonic()
    with pytest.raises(Exception):
        waiting.result(timeout=10)
    assert time.monotonic() - t0 < 5 and waiting.state in ("cancelled", "failed")
    slow.cancel()


def test_failures_are_shown_in_place_not_raised():
    job = run_in_background(lambda: 1 / 0, desc="boom", background=True)
    with pytest.raises(ZeroDivisionError):
        job.result(timeout=30)
    job.show(lambda r: r)
    job._tick()
    view = job._views[0]
    assert job.state == "failed" and "boom failed: ZeroDivisionError" in view.label.value
    assert view.output.outputs[0]["output_type"] == "error"
    ok = run_in_background(lambda: 1, desc="fine", background=True)
    ok.result(timeout=30)
    ok.show(lambda r: r + "x")  # the renderer itself fails: its traceback, in place
    ok._tick()
    assert ok._views[0].output.outputs[-1]["ename"] == "TypeError"


def test_a_new_job_with_the_same_name_cancels_the_running_one(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    first = run_in_background(grid, str(pids), (60, 61), desc="long grid", background=True)
    workers = [int(p.stem) for p in wait_for_files(pids, 2, 120)]
    t0 = time.monotonic()
    second = run_in_background(lambda: "fresh", desc="long grid", background=True)
    assert first.state == "cancelled" and time.monotonic() - t0 < 30
    assert wait_gone(workers, 10) == []
    assert second.result(timeout=30) == "fresh"
    first.show()
    first._tick()
    assert "cancelled" in first._views[0].label.value


def test_to_outputs_kinds():
    outs = to_outputs(["text", None, Markdown("*m*"), go.Figure()])
    assert [o["output_type"] for o in outs] == ["stream", "display_data", "display_data"]
    assert outs[2]["data"]["application/vnd.plotly.v1+json"]["data"] == []


def test_a_finished_job_says_where_its_runs_came_from():
    """A comparison read from stored runs finishes in 0 s: its line says it read them, it did not measure them."""
    job = run_in_background(lambda: {"provenance": {"text": "54 runs read from stored runs. Reused runs were made on X"}},
                            desc="comparison", background=True)
    job.show(lambda r: None)
    job.result(timeout=30)
    job._tick()
    label = job._views[0].label.value
    assert "finished in" in label and "54 runs read from stored runs" in label and "Reused" not in label


def test_the_time_left_counts_down_between_finished_runs_and_restarts_with_each_round(monkeypatch):
    """Issue 20 item 6: 01's comparison said "about 2 min 00 s left" unchanged for 2.5 min (the estimate moved
    only when a run finished) and nothing before the first run ended. Driven by a fake clock."""
    import dsopt_widgets.background as bg

    now = [100.0]
    monkeypatch.setattr(bg.time, "monotonic", lambda: now[0])
    job = run_in_background(lambda: 1, desc="comparison", background=False)
    job.state, job._progress_t, job.progress = "running", [], ("runs", 0, 0)
    job._on_progress("runs", 0, 8)
    assert job.eta() is None and job.eta_text() == "an estimate comes when the first of these 8 runs ends"
    now[0] += 30
    job._on_progress("runs", 2, 8)  # 2 runs in 30 s: 6 left take 90 s
    assert job.eta() == pytest.approx(90.0) and job.eta_text() == "about 1 min 30 s left"
    now[0] += 40  # no run finished meanwhile: the estimate still moves
    assert job.eta() == pytest.approx(50.0)
    now[0] += 60
    assert job.eta() == 0.0 and job.eta_text().startswith("any moment now")
    job._on_progress("sweeps", 0, 4)  # the study's next round: its own pace, none yet
    assert job.eta() is None and "first of these 4 runs" in job.eta_text()


def test_a_background_job_runs_its_grids_where_the_caller_chose():
    """`with execution(executor=...)` around the code that starts a job reaches the job's thread (a new thread
    starts from the default context)."""
    from dsopt.studies.jobs import current_execution, execution

    with execution(executor="dask://127.0.0.1:8786"):
        job = run_in_background(lambda: current_execution().executor, desc="where", background=True)
    assert job.result(timeout=30) == "dask://127.0.0.1:8786"
    assert run_in_background(lambda: current_execution().executor, desc="d", background=True).result(timeout=30) is None
