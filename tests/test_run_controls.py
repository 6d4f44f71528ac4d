"""Run controls of the panels (dsopt_widgets.base.Panel), without a browser: Start / Pause / Resume /
Stop / Restart on a real chapter-01 run, Apply while paused, the status line, and an Export that
replays headless to the same Recorder history."""
from __future__ import annotations

import functools
import re
import time

import pytest

from dsopt.data.tasks import make_task
from dsopt.studies.lr_restarts import live_trainer
from dsopt_widgets import LRPanel

ARTICLE = {"base_lr": 1e-3, "T_0": 5, "T_mult": 2}


@pytest.fixture(scope="module")
def task():
    return make_task("digits", scale="tiny", seed=0)


def wait_until(condition, timeout=120.0, what="condition"):
    """Condition-based wait (the machine may be loaded): poll until ``condition()`` or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def panels():
    """Panels made by a test; their runs are stopped afterwards, even when the test fails."""
    made: list[LRPanel] = []
    yield made
    for p in made:
        p.close()


def panel_for(task, monkeypatch, panels, frontend: bool, **kw) -> LRPanel:
    monkeypatch.setenv("DSOPT_FRONTEND", "1" if frontend else "0")
    p = LRPanel(factory=functools.partial(live_trainer, task, ARTICLE, seed=0), epochs=2,
                interactive_epochs=kw.pop("interactive_epochs", 30), **kw)
    panels.append(p)
    return p


def test_budget_headless_vs_interactive_and_no_export_without_a_run(task, monkeypatch, panels):
    assert panel_for(task, monkeypatch, panels, frontend=False).trainer.max_epochs == 2
    p = panel_for(task, monkeypatch, panels, frontend=True)
    assert p.trainer.max_epochs == 30 and p.budget.value == "30" and p.run_state() == "not started"
    assert p.buttons["start"].disabled is False and p.buttons["pause"].disabled is True
    preview_only = LRPanel(params=ARTICLE)
    assert preview_only.export_button is None and preview_only.run_box() is None and preview_only.export_box() is None


def test_pause_apply_resume_stop_export_replays_the_same_history(task, monkeypatch, panels):
    p = panel_for(task, monkeypatch, panels, frontend=True)
    p.start()
    wait_until(lambda: p.trainer.state.step >= 3, what="the run to train")
    p.pause()
    wait_until(lambda: p.run_state() == "paused", what="the run to hold at a step boundary")
    held = p.trainer.state.step
    time.sleep(0.5)
    assert p.trainer.state.step == held and p.run_state() == "paused"
    p.refresh()
    assert "paused" in p.status.value and f"step {held} of" in p.status.value and not p.buttons["resume"].disabled
    p.sliders["T_0"].value = 2
    assert p.apply() == {**{k: v for k, v in p.knob_values().items()}, "T_0": 2}
    assert "paused" in p.message.value and f"step {held}" in p.message.value
    p.resume()
    wait_until(lambda: p.trainer.state.step > held + 2, what="resume")
    p.refresh()
    assert re.search(rf"applied at step {held} \(epoch [0-9.]+\): T_0=2", p.message.value)  # the first step after Resume
    assert [(c.step, c.name, c.new) for c in p.controls.history] == [(held, "T_0", 2)]
    steps, lrs = p.trainer.recorder.series("lr")
    assert lrs[steps.index(held)] != lrs[steps.index(held - 1)]  # the LR trace changes from that step
    p.stop(wait=30)
    assert p.run_state() == "stopped" and not p.trainer.running
    stopped_at = p.trainer.state.step
    exported = p.export()
    assert exported == {"live_epochs": 30, "control_schedule": [[held, "T_0", 2], [stopped_at, "stop", True]]}
    assert p.export_area.value.startswith("dsopt run 01 -p live_epochs 30 -p control_schedule '[[")
    # headless replay (what `dsopt run 01 -p live_epochs 30 -p control_schedule ...` builds): the same history
    replay = live_trainer(task, ARTICLE, epochs=exported["live_epochs"], seed=0,
                          control_schedule=exported["control_schedule"])
    replay.fit()
    assert replay.state.step == stopped_at
    assert replay.recorder.rows == p.trainer.recorder.rows


def test_restart_is_a_fresh_seeded_run_with_the_current_knobs(task, monkeypatch, panels):
    p = panel_for(task, monkeypatch, panels, frontend=True, interactive_epochs=1)
    p.start()
    wait_until(lambda: p.run_state() == "finished", what="the first run to finish")
    first = p.trainer
    p.refresh()
    assert "finished" in p.status.value and p.buttons["start"].disabled and not p.buttons["restart"].disabled
    assert len(p.live.data[0].x) == first.state.step and p.live.data[0].x[-1] == pytest.approx(1.0)  # x in epochs
    assert p.restart() is True  # same knobs, same seed: the same run again
    wait_until(lambda: p.run_state() == "finished", what="the restarted run")
    assert p.trainer is not first and p.trainer.recorder.rows == first.recorder.rows
    p.refresh()
    assert len(p.live.data[0].x) == first.state.step  # the traces were cleared for the new run
    p.sliders["base_lr"].value = 1e-2
    p.budget.value = "2"
    assert p.restart() and "starting with base_lr=0.01" in p.message.value
    wait_until(lambda: p.run_state() == "finished", what="the restarted run")
    assert p.trainer.max_epochs == 2 and [(c.step, c.name) for c in p.controls.history] == [(0, "base_lr")]
    e = p.export()  # the step-0 change replays too
    replay = live_trainer(task, ARTICLE, epochs=e["live_epochs"], seed=0, control_schedule=e["control_schedule"])
    replay.fit()
    assert replay.recorder.rows == p.trainer.recorder.rows


def test_restart_refuses_invalid_knobs_and_a_panel_without_factory(task, monkeypatch, panels):
    p = panel_for(task, monkeypatch, panels, frontend=True)
    p.sliders["eta_min"].value = 0.5  # above base_lr
    before = p.trainer
    assert p.restart() is False and p.trainer is before and "not restarted" in p.message.value
    fixed = LRPanel(live_trainer(task, ARTICLE, epochs=1, seed=0))
    assert fixed.buttons["restart"].disabled and fixed.restart() is False
