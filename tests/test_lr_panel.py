"""LR panel logic without a browser: slider -> preview; Apply -> Controls -> next step; refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from dsopt import Callback, Trainer, seed_everything
from dsopt.lr import LRScheduleCallback, schedule_from_params
from dsopt_widgets import LRPanel, has_frontend

PARAMS = {"base_lr": 1e-3, "T_0": 5, "T_mult": 2}


def small_trainer(epochs=2, extra=()):
    g = seed_everything(0)
    X, y = load_digits(return_X_y=True)
    ds = TensorDataset(torch.tensor(X[:256] / 16, dtype=torch.float32), torch.tensor(y[:256]))
    model = torch.nn.Linear(64, 10)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return Trainer(model, opt, torch.nn.functional.cross_entropy, DataLoader(ds, 32, shuffle=True, generator=g),
                   DataLoader(ds, 128), max_epochs=epochs, progress=False,
                   callbacks=[LRScheduleCallback(PARAMS, per="batch"), *extra])


def test_slider_redraws_preview_without_touching_the_run():
    t = small_trainer()
    panel = LRPanel(t, horizon=20)
    before = np.array(panel.preview.data[0].y)
    restarts_before = [x for x in panel.preview.data[1].x if x is not None]
    panel.sliders["T_0"].value = 10
    after = np.array(panel.preview.data[0].y)
    assert not np.allclose(before, after)
    assert sorted(set(x for x in panel.preview.data[1].x if x is not None)) == [10.0] != sorted(set(restarts_before))
    assert panel.last_update_ms is not None and panel.last_update_ms < 1000
    assert t.controls.get("T_0") == 5 and t.controls.pending() == {}


def test_apply_reaches_the_run_at_the_next_step_boundary():
    panel_box = {}

    class ApplyAtStep3(Callback):
        def batch_end(self, state):
            if state.step == 3:
                p = panel_box["panel"]
                p.sliders["T_0"].value = 2
                p.sliders["base_lr"].value = 1e-2
                assert state.knobs["T_0"] == 5  # not yet applied
                p.apply()

    t = small_trainer(extra=[ApplyAtStep3()])
    panel_box["panel"] = panel = LRPanel(t, horizon=2)
    t.fit()
    changes = {c.name: (c.step, c.new) for c in t.controls.history}
    assert changes["T_0"] == (3, 2)
    assert changes["base_lr"][0] == 3 and changes["base_lr"][1] == pytest.approx(1e-2)
    steps, lrs = t.recorder.series("lr")
    new = schedule_from_params({"base_lr": 1e-2, "T_0": 2, "T_mult": 2})
    old = schedule_from_params(PARAMS)
    assert lrs[3] == pytest.approx(new(3 / 8), abs=1e-15)  # step 3 (batch 3 of 8) uses the new schedule
    assert lrs[2] == pytest.approx(old(2 / 8), abs=1e-15)
    assert panel.export()["control_schedule"][0][0] == 3
    assert "control_schedule" in panel.export_area.value


def test_invalid_values_show_a_message_and_are_not_applied():
    t = small_trainer()
    panel = LRPanel(t)
    panel.sliders["eta_min"].value = 0.5  # above base_lr
    assert "eta_min" in panel.message.value and "color:#b00020" in panel.message.value
    assert panel.apply() is None
    assert t.controls.pending() == {} and t.controls.get("eta_min") == 0.0
    panel.sliders["eta_min"].value = -1.0
    assert "eta_min must be" in panel.message.value


def test_live_refresh_reads_the_recorder_by_cursor():
    t = small_trainer(epochs=1)
    panel = LRPanel(t)
    t.fit()
    panel.refresh()
    n = t.state.step
    assert len(panel.live.data[0].y) == n and len(panel.live.data[2].y) == n
    assert len(panel.live.data[1].y) == 1
    panel.refresh()  # nothing new: no duplicates
    assert len(panel.live.data[0].y) == n


def test_headless_show_renders_static_and_returns(monkeypatch, capsys):
    monkeypatch.setenv("DSOPT_FRONTEND", "0")
    assert not has_frontend()
    t = small_trainer(epochs=1)
    t.fit()
    shown = []
    monkeypatch.setattr("dsopt_widgets.base.show_static", lambda fig: shown.append(fig))
    LRPanel(t).show()
    assert len(shown) == 1 and len(shown[0].data) >= 3


def test_stop_after_pause_replaces_the_pausing_message():
    """Issue 20 item 8: after Pause then Stop the message line still said "pausing at step 203"."""
    tr = small_trainer(epochs=50)
    panel = LRPanel(tr)
    panel.start()
    panel.pause()
    assert "pausing at step" in panel.message.value
    panel.stop(wait=30)
    assert "pausing" not in panel.message.value and "stopped at step" in panel.message.value
    assert not tr.running
