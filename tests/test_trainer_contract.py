"""The Trainer's contract beyond the loop itself (issue 18): callback state keyed by name in checkpoints,
train/eval modes that callbacks set and the Trainer keeps, the fit_error event, and the RunHandle protocol."""
from __future__ import annotations

import shutil
import threading
import time
import warnings

import pytest
import torch

from dsopt import Callback, LambdaCallback, Trainer
from dsopt.core.callbacks import EVENTS, callback_names
from dsopt.core.handle import STATUSES, RunHandle
from test_core import LRKnob, digits_problem, weights

BATCHES = 13  # digits_problem: 400 training rows in batches of 32


class Decay(Callback):
    """Sets the learning rate from how many batches it has seen, so a resume without its state trains differently."""

    def __init__(self, stop_at=None):
        self.n, self.stop_at = 0, stop_at  # stop_at is configuration, not state

    def batch_start(self, state):
        for g in state.optimizer.param_groups:
            g["lr"] = 3e-3 * 0.97 ** self.n

    def batch_end(self, state):
        self.n += 1
        if state.step == self.stop_at:
            state.controls.stop()

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = state["n"]


class Counter(Callback):
    def __init__(self):
        self.n = 0

    def batch_end(self, state):
        self.n += 1

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = state["n"]


class Probe(Counter):
    """A callback added after the checkpoint was written (inert: it only counts)."""


def trainer(seed=1, epochs=3, callbacks=(), val=True, **kw):
    model, opt, loss, train, v = digits_problem(seed)
    return Trainer(model, opt, loss, train, v if val else None, max_epochs=epochs, callbacks=list(callbacks),
                   progress=False, **kw)


# -- 1. callback state keyed by a stable name ------------------------------------------------------
def test_names_default_to_the_class_repeats_are_numbered_and_collisions_refused():
    assert Callback().name == "Callback" and Decay().name == "Decay" and Probe().name == "Probe"
    named = Counter()
    named.name = "warmup_counter"  # per instance
    assert callback_names([Counter(), named, LambdaCallback(), LambdaCallback(), LambdaCallback(name="x")]) == [
        "Counter", "warmup_counter", "LambdaCallback", "LambdaCallback#2", "x"]
    clash = LambdaCallback(name="LambdaCallback#2")
    with pytest.raises(ValueError, match="collide"):
        trainer(callbacks=[LambdaCallback(), LambdaCallback(), clash])
    with pytest.raises(ValueError, match="non-empty string"):
        trainer(callbacks=[LambdaCallback(name="")])


@pytest.mark.parametrize("k", [7, BATCHES])  # mid-epoch and exactly at an epoch boundary
def test_resume_with_a_callback_added_restores_each_by_name_and_matches_uninterrupted(tmp_path, k):
    full_a, full_b = Decay(), Counter()
    full = trainer(callbacks=[full_a, full_b])
    rec_full = full.fit()
    ck = tmp_path / "run.ckpt"
    part = trainer(callbacks=[Decay(stop_at=k), Counter()], checkpoint_path=ck)
    part.fit()
    assert part.stopped_early and part.state.step == k
    assert set(torch.load(ck, weights_only=False)["callbacks"]) == {"Decay", "Counter"}

    torch.manual_seed(4321)  # a new process: scrambled RNG, different init that the checkpoint overwrites
    a, c, b = Decay(), Probe(), Counter()
    resumed = trainer(seed=99, callbacks=[a, c, b])
    resumed.train_loader.generator.manual_seed(1)
    with pytest.warns(RuntimeWarning, match=r"callback 'Probe' is not in checkpoint .* starts fresh"):
        rec = resumed.fit(resume_from=ck)
    assert (a.n, b.n) == (full_a.n, full_b.n) == (3 * BATCHES,) * 2  # restored exactly, from their own entries
    assert c.n == 3 * BATCHES - k  # fresh
    assert all(torch.equal(x, y) for x, y in zip(weights(full.model), weights(resumed.model)))
    assert rec.series("train_loss") == rec_full.series("train_loss")


def test_checkpoint_entry_without_a_callback_is_ignored_with_a_warning(tmp_path):
    ck = tmp_path / "run.ckpt"
    trainer(callbacks=[Decay(stop_at=5), Counter()], checkpoint_path=ck).fit()
    a = Decay()
    with pytest.warns(RuntimeWarning, match=r"holds state of callback 'Counter'.*ignored"):
        trainer(callbacks=[a], epochs=1).fit(resume_from=ck)
    assert a.n == BATCHES


def test_old_checkpoints_with_callback_states_by_position_still_load(tmp_path):
    ck = tmp_path / "old.ckpt"
    trainer(callbacks=[Decay(stop_at=5), Counter()], checkpoint_path=ck).fit()
    payload = torch.load(ck, weights_only=False)
    payload["callbacks"] = list(payload["callbacks"].values())  # the format before states were keyed by name
    del payload["modes"]
    torch.save(payload, ck)
    a, b = Decay(), Counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer(callbacks=[a, b], epochs=1).fit(resume_from=ck)
    assert (a.n, b.n) == (BATCHES, BATCHES)
    with pytest.raises(ValueError, match="written with 2 callbacks .* this Trainer has 3"):
        trainer(callbacks=[Decay(), Probe(), Counter()]).fit(resume_from=ck)


# -- 2. train/eval modes survive the step ------------------------------------------------------------
class EncoderNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Dropout(0.5))
        self.head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(32, 10))

    def forward(self, x):
        return self.head(self.encoder(x))


class FreezeEncoder(Callback):
    """Puts the encoder in eval at fit_start; records every module's mode at every batch."""

    def __init__(self):
        self.seen = []

    def fit_start(self, state):
        state.model.encoder.eval()

    def batch_start(self, state):
        self._look(state)

    def after_backward(self, state):
        self._look(state)

    def _look(self, state):
        m = state.model
        self.seen.append((state.step, all(not x.training for x in m.encoder.modules()),
                          all(x.training for x in m.head.modules()) and m.training))


def encoder_trainer(epochs=2, callbacks=(), **kw):
    model, _, loss, train, val = digits_problem(0)
    torch.manual_seed(0)
    net = EncoderNet()
    net.eval()  # handed over in eval mode: a fresh run still trains
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    return Trainer(net, opt, loss, train, val, max_epochs=epochs, callbacks=list(callbacks), progress=False, **kw)


def test_a_module_a_callback_put_in_eval_stays_in_eval_through_every_step_and_evaluation():
    freeze = FreezeEncoder()
    t = encoder_trainer(epochs=2, callbacks=[freeze])
    t.fit()
    assert len(freeze.seen) == 2 * 2 * BATCHES  # two looks per batch, across an evaluation between epochs
    assert all(frozen and rest for _, frozen, rest in freeze.seen), [s for s in freeze.seen if not all(s[1:])][:3]
    assert len(t.recorder.series("val_loss")[0]) == 2


def test_without_callbacks_every_module_trains_even_if_the_model_came_in_eval_mode():
    seen = []
    look = LambdaCallback(batch_start=lambda s: seen.append(all(m.training for m in s.model.modules())))
    encoder_trainer(epochs=2, callbacks=[look]).fit()
    assert len(seen) == 2 * BATCHES and all(seen)


def test_a_stopped_run_continues_with_its_modes_in_memory_and_from_a_checkpoint(tmp_path):
    class StopAt5(Callback):
        def batch_end(self, state):
            if state.step == 5:
                state.controls.stop()

    ck = tmp_path / "modes.ckpt"
    freeze = FreezeEncoder()
    t = encoder_trainer(callbacks=[freeze, StopAt5()], checkpoint_path=ck)
    t.fit()
    assert t.stopped_early and torch.load(ck, weights_only=False)["modes"]["encoder"] is False
    at_stop = shutil.copy(ck, tmp_path / "at_stop.ckpt")  # the continued run overwrites ck at its end
    t.model.train()  # e.g. a notebook cell in between; the continued run must not train the frozen encoder
    t.fit()
    assert t.state.step == 2 * BATCHES and all(frozen and rest for _, frozen, rest in freeze.seen)

    resumed_probe = FreezeEncoder()
    resumed_probe.fit_start = lambda state: None  # fit_start does not fire on resume: the checkpoint's modes hold
    fresh = encoder_trainer(callbacks=[resumed_probe])
    with pytest.warns(RuntimeWarning):  # FreezeEncoder/StopAt5 names differ from the checkpoint's set
        fresh.fit(resume_from=at_stop)
    assert resumed_probe.seen and all(frozen and rest for _, frozen, rest in resumed_probe.seen)


# -- 3. fit_error --------------------------------------------------------------------------------------
class Boom(Callback):
    def batch_end(self, state):
        if state.step == 3:
            raise RuntimeError("boom at step 3")


class ErrorSpy(Callback):
    def __init__(self, handle=None):
        self.calls, self.handle = [], handle

    def fit_error(self, state, exc):
        stored = self.handle.error if self.handle is not None else None
        self.calls.append((state.step, exc, stored))


class BadHandler(Callback):
    def fit_error(self, state, exc):
        raise ValueError("the handler itself failed")


def test_fit_error_is_an_event_and_reaches_callbacks_when_fit_raises():
    assert EVENTS[-1] == "fit_error"
    spy = ErrorSpy()
    t = trainer(callbacks=[Boom(), BadHandler(), spy])
    with pytest.warns(RuntimeWarning, match="'BadHandler' raised ValueError.*the run's error is kept"):
        with pytest.raises(RuntimeError, match="boom at step 3"):  # not masked by BadHandler's ValueError
            t.fit()
    ((step, exc, _),) = spy.calls  # BadHandler's failure did not keep the spy from hearing it
    assert step == 3 and str(exc) == "boom at step 3" and t.status == "failed"


def test_fit_error_fires_on_the_background_run_before_the_error_is_stored():
    t = trainer(callbacks=[Boom(), BadHandler()])
    spy = ErrorSpy(handle=t)
    t.callbacks.append(spy)
    with pytest.warns(RuntimeWarning, match="BadHandler"):
        t.start()
        with pytest.raises(RuntimeError, match="boom at step 3"):
            t.wait(timeout=60)
    ((step, exc, stored_then),) = spy.calls
    assert step == 3 and stored_then is None and t.error is exc and t.status == "failed" and not t.running


def test_fit_error_does_not_fire_on_success_or_stop():
    spy = ErrorSpy()
    t = trainer(epochs=1, callbacks=[spy, Decay(stop_at=4)])
    t.fit()
    t.fit()
    assert spy.calls == [] and t.status == "finished"


# -- 4. the RunHandle contract -----------------------------------------------------------------------
def wait_until(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_trainer_is_a_run_handle_and_walks_idle_running_paused_running_stopped():
    t = trainer(epochs=50, callbacks=[LRKnob()])
    assert isinstance(t, RunHandle) and t.status == "idle" and not t.running
    assert t.start() is t and t.status == "running"
    wait_until(lambda: t.state.step >= 2, "two steps")
    t.pause()
    wait_until(lambda: t.controls.holding, "the run to hold")
    held = t.state.step
    assert t.status == "paused" and t.running
    t.resume()
    wait_until(lambda: t.state.step > held, "a step after resume")
    assert t.status == "running"
    t.stop(wait=60)  # joins: back as soon as the run has ended
    assert not t.running and t.status == "stopped" and t.stopped_early and t.state.step < 50 * BATCHES
    assert t.wait() is t.recorder
    t.start()
    t.stop()  # the old call, without wait, still works
    t.wait(timeout=60)
    assert t.status == "stopped"
    assert set(STATUSES) >= {"idle", "running", "paused", "stopped", "finished", "failed"}


def test_status_is_running_inside_fit_then_finished():
    seen = []
    t = trainer(epochs=1)
    t.callbacks.append(LambdaCallback(batch_end=lambda s: seen.append(t.status)))
    t.fit()
    assert seen == ["running"] * BATCHES and t.status == "finished"


def test_stop_with_wait_joins_at_most_that_long_and_never_raises():
    release, blocked = threading.Event(), threading.Event()

    def hold(state):  # the step in flight cannot finish until the test releases it
        blocked.set()
        release.wait(60)

    slow = trainer(epochs=1, callbacks=[LambdaCallback(batch_start=hold)])
    slow.start()
    assert blocked.wait(60)
    slow.stop(wait=0.05)  # returns although the run has not ended, and does not raise
    assert slow.running and slow.status == "running"
    release.set()
    slow.stop(wait=60)
    assert not slow.running and slow.status == "stopped" and slow.state.step == 1

    paused = trainer(epochs=1)
    paused.pause()
    paused.start()
    wait_until(lambda: paused.controls.holding, "the paused run to hold")
    assert paused.status == "paused"
    paused.stop(wait=60)  # stop wakes a paused run
    assert not paused.running and paused.status == "stopped" and paused.state.step == 0


def test_stop_with_wait_from_a_callback_on_the_run_thread_does_not_try_to_join_itself():
    t = trainer(epochs=1)
    t.callbacks.append(LambdaCallback(batch_end=lambda s: t.stop(wait=5) if s.step == 3 else None))
    t.start().wait(timeout=60)  # joining its own thread would raise RuntimeError here
    assert t.status == "stopped" and t.state.step == 3
