"""Chapter 07's study: the stream, the arms, the derived tables and the verdict (constructed inputs, seconds)."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from monitoring_fixtures import synthetic_features

from dsopt.core.handle import Progress, RunHandle
from dsopt.stats import CONTRADICTED, INCONCLUSIVE, NOT_DECIDABLE, SUPPORTED, Verdict
from dsopt.studies.monitoring import StreamConfig, StudyConfig, build_stream, summarize
from dsopt.studies.monitoring.live import StreamReplay, default_knobs
from dsopt.studies.monitoring.measure import StreamSession, decay_period, detection
from dsopt.studies.monitoring.verdict import claim_verdicts, compute, render
from dsopt.util.validation import ParameterError

TINY = StudyConfig.at_scale("tiny")


# -- the stream ------------------------------------------------------------------------------------
def test_stream_shifts_gradually_from_the_known_point_and_never_reuses_an_item():
    sc = StreamConfig(window_size=10, reference_items=100, incontrol_items=100, ramp_items=100, after_items=200)
    s = build_stream(sc, 3, np.zeros(400, dtype=int), np.ones(300, dtype=int))
    assert not s.new[: sc.change_item].any() and s.new[sc.change_item + sc.ramp_items:].all()
    ramp = s.new[sc.change_item: sc.change_item + sc.ramp_items]
    assert ramp[:50].mean() < ramp[50:].mean()  # the share of news rises over the ramp
    for pool in (0, 1):
        idx = s.index[s.new == pool]
        assert len(set(idx.tolist())) == idx.size  # each item served once
    assert np.array_equal(s.label, s.new.astype(int))  # labels come from the right pool
    assert sc.change_window == 20 and sc.n_windows == 50


def test_stream_seeds_reorder_the_same_pools():
    sc = SCALE = TINY.stream
    a = build_stream(sc, 0, np.arange(300) % 2, np.arange(260) % 2)
    b = build_stream(sc, 1, np.arange(300) % 2, np.arange(260) % 2)
    assert not np.array_equal(a.index, b.index)
    assert np.array_equal(build_stream(SCALE, 0, np.arange(300) % 2, np.arange(260) % 2).index, a.index)


def test_a_stream_longer_than_its_pools_is_refused():
    with pytest.raises(ParameterError, match="needs .* Financial PhraseBank items but its pool holds 50"):
        build_stream(TINY.stream, 0, np.zeros(300, dtype=int), np.zeros(50, dtype=int))


@pytest.mark.parametrize("field, value, match", [
    ("window_size", 1, "window_size must be an integer in \\[2, 10000\\]"),
    ("label_delay", -1, "label_delay must be an integer in \\[0, 1000\\]"),
    ("audit_fraction", 1.5, "audit_fraction must be a number in \\[0.0, 1.0\\]"),
])
def test_stream_parameters_are_validated(field, value, match):
    with pytest.raises(ParameterError, match=match):
        StreamConfig(**{**StreamConfig().as_dict(), field: value})


def test_study_config_from_notebook_parameters():
    cfg = StudyConfig.from_parameters("workshop", arl0=150, window_size=25, label_delay=0, label_budget=0)
    assert cfg.stream.window_size == 25 and cfg.stream.label_delay == 0 and cfg.label_budget == 0
    assert cfg.labels_per_request == 60 and cfg.arl0 == 150
    assert StudyConfig.from_dict(cfg.as_dict()) == cfg
    with pytest.raises(ParameterError, match="arl0 must be a number in \\[10.0, 250.0\\]"):
        StudyConfig.from_parameters("tiny", arl0=400)


# -- derived quantities ---------------------------------------------------------------------------
def test_decay_period_uses_a_trailing_mean_and_reports_censoring():
    acc = [0.8] * 10 + [0.8, 0.72, 0.6, 0.5, 0.5, 0.5]
    assert decay_period(acc, 10, launch=0.8, margin=0.1, smooth=3) == (4, False)  # mean(0.72, 0.6, 0.5) < 0.7 at t=13
    assert decay_period(acc, 10, launch=0.8, margin=0.1, smooth=1) == (3, False)  # 0.6 < 0.7 at t=12
    assert decay_period([0.8] * 16, 10, launch=0.8, margin=0.1, smooth=3) == (6, True)  # never: a lower bound
    # one bad window is not decay when the mean spans the windows before the shift too
    assert decay_period([0.8] * 10 + [0.55] + [0.8] * 5, 10, launch=0.8, margin=0.1, smooth=5) == (6, True)


def test_detection_delay_and_false_alarms():
    run = {"alarms": {"drift/ewma": [3, 12, 25, 27]}, "change_window": 20, "reference_windows": 10}
    assert detection(run, "drift", "ewma") == {"delay": 5, "false_alarms": 1, "monitored_windows": 10}
    assert detection(run, "error", "ewma")["delay"] is None


def _run(arm, seed, acc, labels=0, steps=0, n=40, change=20):
    return {"arm": arm, "seed": seed, "n_windows": n, "change_window": change, "reference_windows": 10,
            "ramp_end_window": change + 4, "accuracy": acc, "new_fraction": [0.0] * change + [1.0] * (n - change),
            "launch_accuracy": 0.8, "launch_accuracy_news": 0.6, "alarms": {}, "labels_spent": labels,
            "finetune_example_steps": steps, "compute_seconds": 0.1, "retrains": labels // 20,
            "promotions": labels // 40}


def _decaying(at, n=40, change=20):
    return [0.8] * (change + at) + [0.5] * (n - change - at)


def test_verdict_supported_contradicted_and_censored():
    # monitored decay periods ~9x the unmonitored ones, labels -75 %: both claims supported
    runs = []
    for s, (d0, d1) in enumerate([(1, 17), (1, 18), (1, 16), (1, 17)]):  # decay periods 2 vs 17-19 windows
        runs += [_run("none", s, _decaying(d0)), _run("monitor", s, _decaying(d1), labels=20 + 5 * (s % 2), steps=200),
                 _run("periodic", s, _decaying(3), labels=100, steps=1000)]
    v = compute(summarize(runs, margin=0.1, smooth=1))
    assert set(v["claims"]) == {"decay", "upkeep"}  # compute is context, not a second verdict
    assert v["claims"]["decay"]["status"] == SUPPORTED
    assert v["claims"]["upkeep"]["status"] == SUPPORTED
    text = render(v)
    assert text.startswith("**Decay period**") and "| decay period | **supported** |" in text
    assert "| upkeep (labels) | **supported** | -" in text and "] % (95 % Fieller" in text
    assert "| 4 stream orders |" in text and " seeds" not in text

    # about equal decay (an early unmonitored decay keeps x6.4 within the stream's reach) and equal labels
    runs = []
    for s, d in enumerate([1, 2, 1, 2]):
        runs += [_run("none", s, _decaying(d)), _run("monitor", s, _decaying(d + (s % 2)), labels=100, steps=1000),
                 _run("periodic", s, _decaying(d), labels=100, steps=1000)]
    v = compute(summarize(runs, margin=0.1, smooth=1))
    assert v["claims"]["decay"]["status"] == CONTRADICTED
    assert v["claims"]["upkeep"]["status"] == CONTRADICTED

    # the monitored model never decayed in one stream: a contradiction is not safe -> inconclusive, said so
    runs = []
    for s, d in enumerate([0] + [9] * 7):  # stream 0: an early unmonitored decay keeps x6.4 in reach
        runs += [_run("none", s, _decaying(d)), _run("periodic", s, _decaying(d), labels=100, steps=1000),
                 _run("monitor", s, [0.8] * 40 if s == 0 else _decaying(9 + s % 2), labels=100, steps=1000)]
    v = compute(summarize(runs, margin=0.1, smooth=1))
    d = v["claims"]["decay"]
    assert d["status"] == INCONCLUSIVE and "censored" in d["reason"] and d["label"] == "inconclusive"
    assert "Censored: in 1 stream order the monitored model" in render(v)

    # no decay at all without monitoring: nothing to stretch
    runs = [_run(a, s, [0.8] * 40) for s in range(3) for a in ("none", "monitor", "periodic")]
    v = compute(summarize(runs, margin=0.1, smooth=1))
    assert v["claims"]["decay"]["status"] == INCONCLUSIVE and "no decay to stretch" in v["claims"]["decay"]["reason"]


def _constructed(none_decay=(3, 3, 4, 3), monitor_decay=(17, 18, 16, 17), steps_per_label=10, monitor_steps=None):
    runs = []
    for s, (d0, d1) in enumerate(zip(none_decay, monitor_decay)):
        labels = 20 + 5 * (s % 2)
        steps = steps_per_label * labels if monitor_steps is None else monitor_steps[s]
        runs += [_run("none", s, _decaying(d0)), _run("monitor", s, _decaying(d1), labels=labels, steps=steps),
                 _run("periodic", s, _decaying(3), labels=100, steps=100 * steps_per_label)]
    return summarize(runs, margin=0.1, smooth=1)


def test_decay_claim_beyond_the_streams_reach_is_not_decidable_by_this_design():
    # 20 windows after the shift, the unmonitored model decays in 4 to 5: the stream can show at most x5.0 < x6.4
    v = compute(_constructed())
    d = v["claims"]["decay"]
    assert d["status"] == NOT_DECIDABLE and d["label"] == "not decidable by this design"
    assert d["max_measurable_ratio"] == pytest.approx(5.0) and d["claim"]["reachable"] == [None, 5.0]
    assert "this design can show at most 5.00x" in d["reason"] and d["seeds_needed"] is None
    assert d["unit"] == "stream order" and d["resolution"] == 1.0  # whole windows
    text = render(v)
    assert "| decay period | **not decidable by this design** |" in text and "inconclusive" not in text
    assert "at most x5.0 the shortest unmonitored one" in text
    # an earlier decay without monitoring puts x6.4 within reach: then the data decide
    assert compute(_constructed(none_decay=(1, 1, 1, 1)))["claims"]["decay"]["status"] == SUPPORTED


def test_upkeep_is_judged_once_compute_is_context():
    v = compute(_constructed())
    assert [k for k in v["claims"] if "upkeep" in k] == ["upkeep"]
    c = v["context"]["upkeep_compute"]
    assert c["same_as_labels"] and c["point"] == pytest.approx(v["claims"]["upkeep"]["point"])
    text = render(v)
    assert text.count("| upkeep") == 1 and "same measurement: judged once, as labels" in text
    other = compute(_constructed(monitor_steps=(900, 950, 800, 900)))["context"]["upkeep_compute"]
    assert not other["same_as_labels"] and "context only" in render(compute(_constructed(monitor_steps=(900, 950, 800, 900))))


def test_verdict_round_trip_text_format_claim_verdicts_and_alpha():
    import json

    from dsopt.studies.monitoring import STUDY

    v = compute(_constructed(none_decay=(1, 1, 2, 1)))
    stored = json.loads(json.dumps(v, sort_keys=True))  # as save_metrics stores it
    for fmt in ("markdown", "text", "html"):
        assert render(stored, fmt=fmt) == render(v, fmt=fmt)
    text = render(v, fmt="text", provenance="stored runs")
    assert text.startswith("stored runs\n\nDecay period:")
    assert "**" not in text and "|---|" not in text and "<details>" not in text and "&gt;" not in text
    assert "<details><summary>" in render(v) and render(v, provenance="p").startswith("_p_\n\n")
    cv = claim_verdicts(stored)
    assert list(cv) == ["decay", "upkeep"] and all(isinstance(x, Verdict) for x in cv.values())
    assert {k: x.status for k, x in cv.items()} == {k: d["status"] for k, d in v["claims"].items()}
    assert {k: x.status for k, x in STUDY.claim_verdicts(v).items()} == {k: x.status for k, x in cv.items()}
    assert STUDY.render(v, fmt="text") == render(v, fmt="text")
    s = _constructed(none_decay=(1, 1, 2, 1))
    wide = STUDY.compute(s, alpha=0.01)
    for k in ("decay", "upkeep"):
        a, b = v["claims"][k]["interval"], wide["claims"][k]["interval"]
        assert b["low"] < a["low"] and b["high"] > a["high"] and b["level"] == pytest.approx(0.99)
    a, b = v["context"]["accuracy_monitor_vs_none"]["interval"], wide["context"]["accuracy_monitor_vs_none"]["interval"]
    assert b["low"] < a["low"] and "(99 % paired t, 4 stream orders)" in render(wide)


def test_fewer_than_three_streams_never_decide():
    runs = []
    for s in range(2):
        runs += [_run("none", s, _decaying(2)), _run("monitor", s, _decaying(18), labels=10, steps=100),
                 _run("periodic", s, _decaying(2), labels=100, steps=1000)]
    v = compute(summarize(runs, margin=0.1, smooth=1))
    assert {c["status"] for c in v["claims"].values()} == {INCONCLUSIVE}


# -- the arms on synthetic features (seconds) ----------------------------------------------------------
@pytest.fixture(scope="module")
def features():
    return synthetic_features()


def _serve(arm, seed, features, cfg=TINY):
    session = StreamSession(cfg, arm, seed, features=features)
    try:
        while not session.done:
            session.step()
        return session.result()
    finally:
        session.close()


def test_arms_share_the_stream_and_only_the_loop_changes_the_model(features):
    none, mon, per = (_serve(a, 1, features) for a in ("none", "monitor", "periodic"))
    n = TINY.stream.n_windows
    assert len(none["accuracy"]) == len(mon["accuracy"]) == n
    assert none["new_fraction"] == mon["new_fraction"] == per["new_fraction"]
    assert set(none["version"]) == {1} or set(none["version"]) == {0}
    first = min(e[0] for e in mon["events"] if e[1] in ("promoted", "rejected")) if mon["events"] else n
    assert mon["accuracy"][:first + 1] == none["accuracy"][:first + 1]  # identical until the loop acts
    assert per["labels_spent"] == TINY.label_budget  # the timetable spends the whole budget
    assert mon["labels_spent"] <= TINY.label_budget and mon["labels_spent"] % TINY.labels_per_request == 0
    assert any(k.startswith("drift/") for k in none["alarms"])  # the shifted inputs are seen
    assert all(len(s["statistic"]) == len(s["window"]) for s in none["charts"].values())


def test_runs_are_deterministic(features):
    a, b = _serve("monitor", 2, features), _serve("monitor", 2, features)
    for run in (a, b):  # wall/CPU seconds are measurements of the machine, not results
        run.pop("compute_seconds")
        for e in run["events"]:
            e[2].pop("cpu_seconds", None)
    assert a == b


def test_live_replay_with_default_knobs_serves_the_monitor_run(features):
    replay = StreamReplay(TINY, 1, features=features)
    replay.fit()
    assert replay.result()["accuracy"] == _serve("monitor", 1, features)["accuracy"]
    rec = replay.recorder
    assert rec.series("accuracy")[0] == list(range(TINY.stream.n_windows))


def test_live_replay_applies_knobs_at_window_boundaries_and_replays_a_session(features):
    replay = StreamReplay(TINY, 0, features=features, control_schedule=[[25, "lambda", 0.3], [25, "L", 2.5],
                                                                        [30, "stop", True]])
    replay.fit()
    assert replay.stopped_early and replay.state.step == 30
    assert replay.controls.as_parameters()["control_schedule"] == [[25, "L", 2.5], [25, "lambda", 0.3]]
    assert replay.session.charts["ewma"].lam == 0.3 and replay.session.charts["trigger"].lam == 0.3
    assert replay.recorder.series("knob/lambda") == ([25], [0.3])
    with pytest.raises(ParameterError, match="lambda must be a number in \\(0.0, 1.0\\]"):
        replay.controls.set("lambda", 0)


def test_live_replay_runs_in_the_background_with_pause_and_stop(features):
    replay = StreamReplay(TINY, 0, features=features, pace=0.05).start()
    deadline = __import__("time").time() + 60
    while replay.state.step < 3 and __import__("time").time() < deadline:
        __import__("time").sleep(0.05)
    replay.pause()
    __import__("time").sleep(0.3)
    held = replay.state.step
    __import__("time").sleep(0.3)
    assert replay.state.step == held and replay.controls.holding
    replay.resume()
    replay.stop()
    replay.wait(30)
    assert not replay.running and replay.stopped_early and replay.state.step < TINY.stream.n_windows


def _until(condition, timeout=60.0):
    deadline = __import__("time").monotonic() + timeout
    while not condition():
        assert __import__("time").monotonic() < deadline, "timed out"
        __import__("time").sleep(0.02)


def test_live_replay_is_a_run_handle_idle_running_paused_stopped_finished_failed(features):
    replay = StreamReplay(TINY, 0, features=features, pace=0.05)
    assert isinstance(replay, RunHandle) and isinstance(replay.state, Progress)
    assert replay.status == "idle" and replay.state.max_epochs == TINY.stream.n_windows
    assert replay.start() is replay and replay.status == "running"
    _until(lambda: replay.state.step >= 2)
    replay.pause()
    _until(lambda: replay.controls.holding)
    assert replay.status == "paused"
    replay.resume()
    assert replay.status == "running"
    replay.stop(wait=30)  # joins: returns once the run has ended
    assert not replay.running and replay.status == "stopped"
    assert replay.state.epoch_progress == replay.state.step < TINY.stream.n_windows  # a window is an "epoch"
    assert replay.wait(1) is replay.recorder
    short = StreamReplay(TINY, 0, features=features, windows=3).start()
    assert short.wait(60) is short.recorder and short.status == "finished" and short.state.step == 3
    broken = StreamReplay(TINY, 0, features=features)
    broken._session = lambda: 1 / 0
    broken.start()
    with pytest.raises(ZeroDivisionError):
        broken.wait(30)
    assert broken.status == "failed"


def test_default_knobs_are_the_trigger_calibration():
    k = default_knobs(TINY)
    from dsopt.monitor import EWMA, markov_arl

    assert markov_arl(EWMA(k["lambda"], k["L"]), 0) == pytest.approx(TINY.arl0 * len(TINY.loop_signals), rel=0.01)
    assert math.isfinite(k["h"]) and k["label_budget"] == TINY.label_budget


def test_window_size_changes_the_windows_not_the_items(features):
    cfg = replace(TINY, stream=replace(TINY.stream, window_size=20))
    run = _serve("none", 0, features, cfg)
    assert len(run["accuracy"]) == TINY.stream.n_windows // 2 and run["change_window"] == 10
