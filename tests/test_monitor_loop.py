"""The retraining loop: promote only if better, on a label budget, with crash-safe promotion and rollback."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dsopt.monitor import EWMA, EmbeddingDrift
from dsopt.monitor.loop import ModelStore, RetrainingLoop, finetune_classifier
from dsopt.monitor.service import ModelService
from dsopt.monitor.signals import SignalMonitor
from dsopt.util.validation import ParameterError

HELPER = Path(__file__).with_name("monitor_kill_helper.py")


def linear(seed: int, d: int = 8) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Linear(d, 2)


def predictions(model, x) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()


# -- the store ------------------------------------------------------------------------------------
def test_store_versions_promotion_and_rollback(tmp_path):
    store = ModelStore(tmp_path)
    assert store.current_version() is None and store.versions() == []
    v1 = store.save(linear(1), {"reason": "launch"})
    assert store.current_version() is None  # saved is not served
    store.promote(v1)
    v2 = store.save(linear(2))
    store.promote(v2)
    assert store.versions() == [1, 2] and store.current_version() == 2 and store.history() == [1, 2]
    assert store.rollback() == 1 and store.current_version() == 1
    with pytest.raises(ParameterError, match="nothing to roll back to"):
        store.rollback()
    with pytest.raises(FileNotFoundError):
        store.promote(7)
    model, version = store.load_model(lambda: linear(0), 2)
    assert version == 2 and torch.equal(model.weight, linear(2).weight)


# -- killed mid-promotion: the service keeps a valid model ------------------------------------------
@pytest.mark.parametrize("mode, served_after", [("during_save", 1), ("before_pointer", 1), ("after_pointer", 2)])
def test_a_loop_killed_mid_promotion_leaves_the_service_a_valid_model(tmp_path, mode, served_after):
    store = ModelStore(tmp_path / "store")
    launch = linear(7)
    store.promote(store.save(launch, {"reason": "launch"}))
    service = ModelService(linear(0), ["neg", "pos"], window_size=10)
    service.follow(store, lambda: linear(0), sync_interval=0.0)  # another process may promote
    x = np.random.default_rng(0).standard_normal((10, 8))
    assert service.version == 1 and np.array_equal(service.predict(x).pred, predictions(launch, x))

    proc = subprocess.run([sys.executable, str(HELPER), str(tmp_path / "store"), mode], capture_output=True, check=False,
                          text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    batch = service.predict(x)  # the service syncs with the store between batches
    assert store.current_version() == served_after == service.version == batch.version
    expected = launch if served_after == 1 else store.load_model(lambda: linear(0), 2)[0]
    assert np.array_equal(batch.pred, predictions(expected, x))
    if mode == "during_save":
        assert store.versions() == [1]  # the half-written checkpoint is not a version
        assert list((tmp_path / "store" / "versions").glob(".v000002.pt.*.part"))  # the interrupted write
        assert ModelStore(tmp_path / "store").removed_parts == 1  # the killed writer's: removed when a store opens
        assert not list((tmp_path / "store" / "versions").glob("*.part"))
    # a complete promotion afterwards is picked up
    done = subprocess.run([sys.executable, str(HELPER), str(tmp_path / "store"), "none"], capture_output=True, check=False,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert service.predict(x).version == store.current_version() == max(store.versions()) > served_after


def test_a_failed_promotion_in_process_keeps_serving_the_old_model(tmp_path, monkeypatch):
    store = ModelStore(tmp_path)
    service = ModelService(linear(1), ["neg", "pos"], window_size=5)
    loop = RetrainingLoop(service, store, finetune=lambda m, x, y: m, oracle=lambda ids: [0] * len(ids), budget=10, k=5)
    x = np.random.default_rng(1).standard_normal((5, 8))
    before = service.predict(x).pred

    def broken(version):
        raise OSError("disk full")

    monkeypatch.setattr(store, "promote", broken)
    assert loop.promote(3, linear(99)) is False
    assert loop.events[-1].event == "promotion_failed" and "disk full" in loop.events[-1].info["error"]
    assert service.version == 1 and store.current_version() == 1
    assert np.array_equal(service.predict(x).pred, before)


# -- the loop on a real shift of the inputs ---------------------------------------------------------
def regime(n: int, new: bool, rng) -> tuple[np.ndarray, np.ndarray]:
    """Label = feature 0 above its regime's mean; the new regime shifts every feature by +1.5, so the
    launch model (threshold 0) calls almost everything positive there."""
    x = rng.standard_normal((n, 8))
    y = (x[:, 0] > 0).astype(int)
    return (x + 1.5, y) if new else (x, y)


def trained_launch_model(rng) -> torch.nn.Module:
    x, y = regime(400, False, rng)
    return finetune_classifier(linear(0), x, y, steps=150, lr=0.05, seed=0)


def run_stream(tmp_path, oracle_noise: float = 0.0, budget: int = 120):
    rng = np.random.default_rng(0)
    launch = trained_launch_model(rng)
    drift = EmbeddingDrift(4).fit(regime(500, False, rng)[0])
    monitor = SignalMonitor({"ewma": EWMA(0.2, 3.0)}, signals=("drift",), reference_windows=5)
    service = ModelService(launch, ["neg", "pos"], window_size=40, monitor=monitor, drift=drift)
    truth: dict = {}

    def oracle(ids):
        y = np.array([truth[i] for i in ids])
        flip = rng.random(len(y)) < oracle_noise
        return np.where(flip, 1 - y, y)

    loop = RetrainingLoop(service, ModelStore(tmp_path), lambda m, x, y: finetune_classifier(m, x, y, steps=150, lr=0.05),
                          oracle, budget=budget, k=60, label_delay=2, val_fraction=0.3, seed=0)
    accuracy = []
    for t in range(30):
        x, y = regime(40, t >= 12, rng)
        ids = np.arange(40 * t, 40 * (t + 1))
        truth.update(zip(ids.tolist(), y.tolist()))
        b = service.predict(x, ids=ids)
        accuracy.append(float((b.pred == y).mean()))
        loop.on_records(t, b.records)
        loop.tick(t)
    return loop, service, np.array(accuracy)


def test_the_loop_detects_the_shift_retrains_and_recovers(tmp_path):
    loop, service, acc = run_stream(tmp_path)
    events = [e.event for e in loop.events]
    first_alarm = next(e.window for e in loop.events if e.event == "alarm")
    assert 12 <= first_alarm <= 15  # the drift chart fires soon after the change at window 12
    assert "promoted" in events and service.version >= 2
    assert loop.spent <= 120 and loop.spent % 60 == 0
    promoted = next(e for e in loop.events if e.event == "promoted")
    trained = next(e for e in loop.events if e.event == "candidate_trained")
    assert promoted.window == first_alarm + 2  # labels arrive label_delay windows after the request
    assert trained.info["candidate_accuracy"] > trained.info["serving_accuracy"]
    assert acc[12:first_alarm + 1].mean() < 0.7  # the launch model calls nearly everything positive there
    assert acc[-10:].mean() > acc[12:first_alarm + 1].mean() + 0.15  # the promoted candidate serves it better
    assert ModelStore(tmp_path).current_version() == service.version


def test_a_candidate_that_is_not_better_is_rejected(tmp_path):
    loop, service, _ = run_stream(tmp_path, oracle_noise=0.5, budget=60)  # coin-flip labels teach nothing
    events = [e.event for e in loop.events]
    assert "labels_requested" in events and "candidate_trained" in events
    trained = next(e for e in loop.events if e.event == "candidate_trained")
    if trained.info["candidate_accuracy"] <= trained.info["serving_accuracy"]:
        assert "rejected" in events and service.version == 1
    assert "budget_exhausted" in events or loop.remaining < loop.k  # one request spent the whole budget


def test_rollback_serves_the_previous_version(tmp_path):
    loop, service, _ = run_stream(tmp_path)
    assert service.version >= 2
    x = regime(50, False, np.random.default_rng(9))[0]
    previous = ModelStore(tmp_path).history()[-2]
    loop.rollback(40, lambda: linear(0))
    assert service.version == previous == ModelStore(tmp_path).current_version()
    old, _ = ModelStore(tmp_path).load_model(lambda: linear(0), previous)
    assert np.array_equal(service.predict(x).pred, predictions(old, x))
    assert loop.events[-1].event == "rolled_back"


def test_loop_parameters_are_validated(tmp_path):
    service = ModelService(linear(1), ["neg", "pos"])
    with pytest.raises(ParameterError, match="k must be an integer in \\[2, inf\\)"):
        RetrainingLoop(service, ModelStore(tmp_path), lambda m, x, y: m, lambda i: i, budget=10, k=1)
    with pytest.raises(ParameterError, match="val_fraction must be a number in \\(0.0, 1.0\\)"):
        RetrainingLoop(service, ModelStore(tmp_path), lambda m, x, y: m, lambda i: i, budget=10, k=4, val_fraction=1)
