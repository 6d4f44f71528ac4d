"""The monitoring panel's logic without a browser: preview, refusals, calibration, Apply, Restart, Export, headless."""
from __future__ import annotations

import os

import pytest
from monitoring_fixtures import synthetic_features

from dsopt.monitor import CUSUM, EWMA, markov_arl
from dsopt.studies.monitoring import StudyConfig
from dsopt.studies.monitoring.live import live_replay
from dsopt_widgets.monitoring_panel import MonitoringPanel

TINY = StudyConfig.at_scale("tiny")


@pytest.fixture(scope="module")
def features():
    return synthetic_features()


@pytest.fixture
def panel(features, monkeypatch):
    monkeypatch.setenv("DSOPT_FRONTEND", "0")
    p = MonitoringPanel(factory=live_replay(TINY, 0, features=features), epochs=TINY.stream.n_windows)
    yield p
    p.stop(wait=30)


def _message(p) -> str:
    return p.message.value


def test_moving_a_knob_redraws_the_arl_preview_and_says_the_arls(panel):
    before = list(panel.preview.data[0].y)  # EWMA curve
    panel.sliders["lambda"].value = 0.3
    after = list(panel.preview.data[0].y)
    assert after != before
    assert after[0] == pytest.approx(markov_arl(EWMA(0.3, panel.sliders["L"].value), 0.0, states=151), rel=1e-6)
    assert "EWMA(λ=0.30" in _message(panel) and "ARL0" in _message(panel)
    assert panel.last_update_ms is not None


def test_invalid_values_are_refused_with_the_parameter_named(panel):
    panel.label_budget.value = "-5"
    assert panel.apply() is None
    assert "label_budget must be an integer in [0, 100000]" in _message(panel)
    panel.label_budget.value = "60"
    panel.window_size.value = "1"
    assert panel.restart() is False
    assert "not restarted: window_size must be an integer in [2, 10000]" in _message(panel)
    panel.arl0.value = 1.0
    assert panel.calibrate() is None and "arl0 must be a number in [2.0, 1000000.0]" in _message(panel)


def test_whole_number_fields_take_what_is_typed(panel):
    """Issue 20 item 3: IntText turned "2.5" into 25 and "1e3" into 13; now refused or read as the number."""
    from test_whole_number_fields import refusals

    p = panel
    before = p.trainer
    # 1000 is a window size in range, refused by another of the stream's rules (not 13 windows, as before)
    refusals(p.window_size, p.restart, lambda: p.message.value, "not restarted", "window_size", "[2, 10000]",
              thousand_ok=True)
    p.window_size.value = "20"
    refusals(p.label_budget, lambda: p.apply() is not None, lambda: p.message.value, "not applied", "label_budget",
              "[0, 100000]", thousand_ok=True)
    p.label_budget.value = "60"
    refusals(p.budget, p.restart, lambda: p.message.value, "not restarted", "windows", "[1, 100000]", thousand_ok=True)
    assert p.trainer is before  # nothing was restarted
    p.budget.value = "1e3"  # more windows than the stream has: the box then shows the run's, and the line says so
    assert p.restart() is True
    n = p.trainer.cfg.stream.n_windows  # at window size 20
    assert p.budget.value == str(p.trainer.max_epochs) == str(n) and n < 1000
    assert f"(1000 asked: {n} is all this run has)" in p.message.value
    p.budget.value, p.window_size.value, p.label_budget.value = "12", "2e1", "30"
    assert p.restart() is True
    assert p.trainer.max_epochs == 12 and p.trainer.cfg.stream.window_size == 20
    assert "label budget=30" in p.message.value  # queued at step 0 of the fresh replay


def test_calibrate_sets_L_and_h_for_the_target(panel, monkeypatch):
    panel.arl0.value = 150.0
    said = []
    say = panel._say
    monkeypatch.setattr(panel, "_say", lambda text, error=False: said.append(text) or say(text, error))
    out = panel.calibrate()
    assert out is not None
    # issue 20 item 6: it says what it does before the seconds of work, then what it found and how long it took
    assert said[0].startswith("calibrating L and h to ARL0 150") and said[-1].startswith("calibrated in ")
    assert f"L={out['L']:.2f}" in said[-1] and "press Apply" in said[-1]
    v = panel.slider_values()
    assert markov_arl(EWMA(v["lambda"], v["L"]), 0) == pytest.approx(150, rel=0.03)  # sliders round to 0.01
    assert markov_arl(CUSUM(v["k"], v["h"]), 0) == pytest.approx(150, rel=0.06)


def test_apply_reaches_the_replay_at_the_next_window_and_export_replays_it(panel):
    panel.sliders["lambda"].value = 0.25
    panel.label_budget.value = "20"
    queued = panel.apply()
    assert queued["lambda"] == 0.25 and queued["label_budget"] == 20
    assert "applies at step 0 when the run starts" in _message(panel)
    panel.trainer.fit()
    assert panel.trainer.session.charts["ewma"].lam == 0.25
    assert panel.trainer.session.loop.budget == 20 and panel.trainer.session.loop.spent <= 20
    params = panel.export()
    assert params["live_windows"] == TINY.stream.n_windows
    assert [0, "lambda", 0.25] in params["control_schedule"]
    assert panel.export_area.value.startswith("dsopt run 07 -p live_windows")


def test_restart_with_another_window_size(panel):
    panel.window_size.value = "20"
    assert panel.restart() is True
    panel.trainer.wait(120)
    assert panel.trainer.cfg.stream.window_size == 20
    assert panel.trainer.state.step == TINY.stream.n_windows // 2  # same items, half as many windows
    assert "-p window_size 20" in (panel.export() and panel.export_area.value)


def test_headless_show_replays_to_the_end_and_draws_one_figure(panel, monkeypatch):
    shown = []
    monkeypatch.setattr("dsopt_widgets.base.show_static", lambda fig: shown.append(fig))
    panel.show()
    assert panel.run_state() == "finished" and len(shown) == 1
    fig = shown[0]
    names = {t.name: t for t in fig.data}
    assert len(names["accuracy"].x) == TINY.stream.n_windows
    assert len(names["drift score"].x) == TINY.stream.n_windows
    assert all(len(t.x) == len(t.y) for t in fig.data)
    assert os.environ["DSOPT_FRONTEND"] == "0"


def test_live_traces_follow_the_recorder(panel):
    panel.trainer.fit()
    panel.refresh()
    acc = panel.live.data[0]
    assert list(acc.x) == list(range(TINY.stream.n_windows)) and len(acc.y) == TINY.stream.n_windows
    ucl = next(t for t in panel.live.data if t.name == "EWMA UCL")
    assert ucl.y and all(v > 0 for v in ucl.y)


def test_the_status_line_counts_windows_and_says_what_the_replay_prepares(panel, monkeypatch):
    """Issue 20 item 6: the replay looked frozen for ~60 s ("running · epoch 0.00 of 90 · step 0 of 90") while its
    embeddings were computed, and said "epoch" for windows."""
    import threading

    from dsopt.studies.monitoring.live import StreamReplay

    gate, entered = threading.Event(), threading.Event()
    prepare = StreamReplay._session

    def slow_session(self):
        entered.set()
        gate.wait(30)
        return prepare(self)

    monkeypatch.setattr(StreamReplay, "_session", slow_session)
    panel.start()
    try:
        assert entered.wait(30)
        panel._update_status()
        status = panel.status.value
        assert "window 0 of" in status and "epoch" not in status
        assert "preparing the stream: MiniLM embeddings" in status
    finally:
        gate.set()
    panel.trainer.wait(60)
    panel._update_status()
    assert "preparing" not in panel.status.value and f"window {TINY.stream.n_windows} of" in panel.status.value
