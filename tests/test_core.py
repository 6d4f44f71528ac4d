"""Live-run core: reproducibility, exact resume, thread-safe Controls, run modes, checkpoints."""
from __future__ import annotations

import threading
import time
import warnings

import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from dsopt import Callback, Knob, Recorder, Trainer, seed_everything
from dsopt.core.controls import replay_callback
from dsopt.util.atomic import atomic_write_text
from dsopt.util.validation import ParameterError, check_number


def digits_problem(seed: int, n: int = 512, batch_size: int = 32):
    """A real, small problem: sklearn digits, an MLP with dropout (so RNG matters), shuffled loader."""
    g = seed_everything(seed)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X[:n] / 16.0, dtype=torch.float32)
    y = torch.tensor(y[:n], dtype=torch.long)
    train = DataLoader(TensorDataset(X[:400], y[:400]), batch_size=batch_size, shuffle=True, generator=g)
    val = DataLoader(TensorDataset(X[400:], y[400:]), batch_size=64)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(32, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    return model, opt, torch.nn.functional.cross_entropy, train, val


class LRKnob(Callback):
    """Writes the ``lr`` knob into the optimizer at batch_start (a minimal knob consumer)."""

    def knobs(self):
        return [Knob("lr", 3e-3, lambda v: check_number("lr", v, low=0, high=1, low_inclusive=False))]

    def batch_start(self, state):
        for g in state.optimizer.param_groups:
            g["lr"] = state.knobs["lr"]
        state.log("lr", state.knobs["lr"])


def run(seed=0, epochs=3, callbacks=(), **kw):
    model, opt, loss, train, val = digits_problem(seed)
    t = Trainer(model, opt, loss, train, val, max_epochs=epochs, callbacks=list(callbacks), progress=False, **kw)
    return t, t.fit()


def weights(model):
    return [p.detach().clone() for p in model.parameters()]


def test_same_seed_gives_identical_histories():
    _, r1 = run(seed=3)
    _, r2 = run(seed=3)
    assert len(r1) > 0 and r1.rows == r2.rows
    _, r3 = run(seed=4)
    assert r1.series("train_loss")[1] != r3.series("train_loss")[1]


def test_events_fire_in_documented_order():
    seen = []

    class Spy(Callback):
        pass

    spy = Spy()
    for ev in ("fit_start", "epoch_start", "batch_start", "after_backward", "batch_end", "epoch_end", "fit_end"):
        setattr(spy, ev, (lambda e: lambda s: seen.append((e, s.step)))(ev))
    t, _ = run(epochs=1, callbacks=[spy])
    n = t.state.batches_per_epoch
    assert seen[0] == ("fit_start", 0) and seen[1] == ("epoch_start", 0)
    assert seen[2:5] == [("batch_start", 0), ("after_backward", 0), ("batch_end", 1)]
    assert seen[-2] == ("epoch_end", n) and seen[-1] == ("fit_end", n)


@pytest.mark.parametrize("stop_at", [5, 13, 26])  # mid-epoch, another mid-epoch, exactly an epoch boundary
def test_stop_and_resume_matches_uninterrupted(tmp_path, stop_at):
    full, rec_full = run(seed=1, callbacks=[LRKnob()])
    ck = tmp_path / "run.ckpt"

    class StopAt(Callback):
        def batch_end(self, state):
            if state.step == stop_at:
                state.controls.stop()

    part, _ = run(seed=1, callbacks=[LRKnob(), StopAt()], checkpoint_path=ck)
    assert part.stopped_early and part.state.step == stop_at
    # A new process would start from scratch: scramble the global RNG to prove the checkpoint restores it.
    torch.manual_seed(12345)
    model, opt, loss, train, val = digits_problem(seed=99)  # different init; checkpoint must overwrite it
    train.generator.manual_seed(1)
    resumed = Trainer(model, opt, loss, train, val, max_epochs=3, callbacks=[LRKnob(), StopAt()], progress=False)
    rec = resumed.fit(resume_from=ck)
    assert resumed.state.step == full.state.step
    for a, b in zip(weights(full.model), weights(resumed.model)):
        assert torch.equal(a, b)
    assert rec.series("train_loss") == rec_full.series("train_loss")


def test_periodic_checkpoint_is_atomic_and_loadable(tmp_path):
    ck = tmp_path / "periodic.ckpt"
    t, _ = run(checkpoint_path=ck, checkpoint_every=7)
    assert ck.is_file() and not list(tmp_path.glob("*.part"))
    payload = torch.load(ck, weights_only=False)
    assert payload["step"] == t.state.step  # final checkpoint after fit_end


def test_control_change_from_another_thread_applies_at_next_boundary():
    model, opt, loss, train, val = digits_problem(0)
    steps_seen = {}
    changed_at = {}
    go = threading.Event()

    class Probe(Callback):
        order = 10

        def batch_start(self, state):
            steps_seen[state.step] = state.optimizer.param_groups[0]["lr"]
            if state.step == 4:
                go.set()
                deadline = time.time() + 10
                while not state.controls.pending() and time.time() < deadline:
                    time.sleep(0.01)  # hold step 4 until the other thread has queued its change
                changed_at["queued_during"] = state.step

    t = Trainer(model, opt, loss, train, val, max_epochs=1, callbacks=[LRKnob(), Probe()], progress=False)
    setter = threading.Thread(target=lambda: (go.wait(10), t.controls.set("lr", 1e-4)))
    setter.start()
    t.fit()
    setter.join()
    assert steps_seen[4] == pytest.approx(3e-3)  # the step in flight keeps its value
    assert steps_seen[5] == pytest.approx(1e-4)  # the next boundary applies it
    (change,) = t.controls.history
    assert (change.step, change.name, change.new) == (5, "lr", 1e-4)
    assert t.recorder.series("knob/lr") == ([5], [1e-4])


def test_invalid_control_value_is_refused_and_run_keeps_last_valid():
    model, opt, loss, train, val = digits_problem(0)
    t = Trainer(model, opt, loss, train, val, max_epochs=1, callbacks=[LRKnob()], progress=False)
    t.controls.set("lr", 2e-3)
    with pytest.raises(ParameterError, match=r"lr must be a number in \(0, 1\]; got -0.5"):
        t.controls.set("lr", -0.5)
    with pytest.raises(ParameterError, match="unknown control 'momentum'"):
        t.controls.set("momentum", 0.9)
    t.fit()
    assert set(t.recorder.series("lr")[1]) == {2e-3}


def test_background_start_pause_resume_stop():
    model, opt, loss, train, val = digits_problem(0)
    t = Trainer(model, opt, loss, train, val, max_epochs=50, callbacks=[LRKnob()], progress=False)
    t.start()
    deadline = time.time() + 20
    while t.state.step < 3 and time.time() < deadline:
        time.sleep(0.01)
    t.pause()
    time.sleep(0.2)
    held = t.state.step
    time.sleep(0.3)
    assert t.state.step == held and t.running
    t.resume()
    time.sleep(0.2)
    t.stop()
    t.wait(timeout=20)
    assert not t.running and t.stopped_early and held < t.state.step < 50 * 13


def test_background_errors_surface_in_wait():
    model, opt, loss, train, val = digits_problem(0)

    class Boom(Callback):
        def batch_end(self, state):
            raise RuntimeError("boom at step %d" % state.step)

    t = Trainer(model, opt, loss, train, val, max_epochs=1, callbacks=[Boom()], progress=False).start()
    with pytest.raises(RuntimeError, match="boom at step 1"):
        t.wait(timeout=20)


def test_replay_reproduces_a_live_session():
    model, opt, loss, train, val = digits_problem(0)
    live = Trainer(model, opt, loss, train, val, max_epochs=1, callbacks=[LRKnob()], progress=False)

    class Knobber(Callback):
        def batch_end(self, state):
            if state.step == 3:
                state.controls.set("lr", 5e-4)
            if state.step == 8:
                state.controls.set("lr", 1e-3)

    live.callbacks.append(Knobber())
    live.fit()
    params = live.controls.as_parameters()
    assert params == {"control_schedule": [[3, "lr", 5e-4], [8, "lr", 1e-3]]}
    model, opt, loss, train, val = digits_problem(0)
    replay = Trainer(model, opt, loss, train, val, max_epochs=1, progress=False,
                     callbacks=[LRKnob(), replay_callback(params["control_schedule"])])
    replay.fit()
    assert replay.recorder.series("lr") == live.recorder.series("lr")
    assert replay.recorder.series("train_loss") == live.recorder.series("train_loss")


def test_recorder_cursor_reads_each_row_once():
    r = Recorder()
    r.log("a", 1.0, step=0, epoch=0)
    rows, cur = r.since(0)
    r.log("a", torch.tensor(2.0), step=1, epoch=0)
    rows2, cur2 = r.since(cur)
    assert [x.value for x in rows] == [1.0] and [x.value for x in rows2] == [2.0] and cur2 == 2
    assert r.since(cur2) == ([], 2)


def test_trainer_validates_arguments():
    model, opt, loss, train, val = digits_problem(0)
    with pytest.raises(ParameterError, match=r"max_epochs must be an integer in \[1, inf\); got 0"):
        Trainer(model, opt, loss, train, max_epochs=0)
    with pytest.raises(ValueError, match="needs a checkpoint_path"):
        Trainer(model, opt, loss, train, max_epochs=1, checkpoint_every=5)
    with pytest.raises(ValueError, match="defined twice"):
        Trainer(model, opt, loss, train, max_epochs=1, callbacks=[LRKnob(), LRKnob()])


def test_nan_loss_raises_clear_error():
    model, opt, loss, train, val = digits_problem(0)
    bad = lambda out, y: loss(out, y) * float("nan")
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        Trainer(model, opt, bad, train, max_epochs=1, progress=False).fit()


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "f.json"
    atomic_write_text(p, "old")
    from dsopt.util.atomic import atomic_open

    with pytest.raises(RuntimeError):
        with atomic_open(p, "w") as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert p.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_interrupt_stops_gracefully_with_a_checkpoint_and_resumes_exactly(tmp_path):
    import os
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a non-interactive shell
        signal.signal(signal.SIGINT, signal.default_int_handler)
    before = signal.getsignal(signal.SIGINT)
    full, _ = run(seed=2, callbacks=[LRKnob()])
    ck = tmp_path / "int.ckpt"

    class CtrlC(Callback):
        def batch_end(self, state):
            if state.step == 9:
                os.kill(os.getpid(), signal.SIGINT)

    part, _ = run(seed=2, callbacks=[LRKnob(), CtrlC()], checkpoint_path=ck)
    assert part.stopped_early and part.state.step == 9 and ck.is_file()
    model, opt, loss, train, val = digits_problem(seed=2)
    resumed = Trainer(model, opt, loss, train, val, max_epochs=3, callbacks=[LRKnob(), Callback()], progress=False)
    with pytest.warns(RuntimeWarning) as caught:  # callback states are matched by name: CtrlC's has no taker
        resumed.fit(resume_from=ck)
    said = " | ".join(str(w.message) for w in caught)
    assert "callback 'CtrlC', which this Trainer does not have" in said and "'Callback' is not in checkpoint" in said
    assert all(torch.equal(a, b) for a, b in zip(weights(full.model), weights(resumed.model)))
    assert signal.getsignal(signal.SIGINT) is before  # the Trainer's handler is removed after the run


def test_eval_mode_restores_each_modules_own_mode_also_on_error():
    from dsopt.core.modes import eval_mode, train_mode

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2), torch.nn.Dropout(0.1))
    net.train()
    net[1].eval()  # a frozen BatchNorm inside a training model
    before = [m.training for m in net.modules()]
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert [m.training for m in net.modules()] == before  # model.train(was) would have lost net[1]'s mode
    with pytest.raises(RuntimeError):
        with train_mode(net):
            assert all(m.training for m in net.modules())
            raise RuntimeError("boom")
    assert [m.training for m in net.modules()] == before


class StopOnceAt(Callback):
    """Asks the run to stop once, right after optimizer step ``k`` (the panel's Stop button)."""

    def __init__(self, k):
        self.k, self.done = k, False

    def batch_end(self, state):
        if state.step == self.k and not self.done:
            self.done = True
            state.controls.stop()


class EventLog(Callback):
    def __init__(self):
        self.events = []

    def epoch_start(self, state):
        self.events.append(("epoch_start", state.step))

    def fit_start(self, state):
        self.events.append(("fit_start", state.step))


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("k", [5, 13, 26])  # mid-epoch, mid-epoch, exactly at an epoch boundary (13 batches/epoch)
def test_stop_then_start_continues_at_the_next_step(k, background):
    """Stopped at step k and started again, a run takes the same steps and ends with the same weights as an
    uninterrupted run (issue #10: it used to retrain the partial epoch and fire epoch_start again)."""
    full, rec_full = run(seed=1, callbacks=[LRKnob()])
    log = EventLog()
    model, opt, loss, train, val = digits_problem(1)
    t = Trainer(model, opt, loss, train, val, max_epochs=3, callbacks=[LRKnob(), StopOnceAt(k), log], progress=False)
    t.fit()
    assert t.stopped_early and t.state.step == k
    torch.manual_seed(777)  # whatever ran in between must not matter
    if background:
        t.start().wait(timeout=60)
    else:
        t.fit()
    assert not t.stopped_early and t.state.step == full.state.step == 3 * 13
    assert all(torch.equal(a, b) for a, b in zip(weights(full.model), weights(t.model)))
    assert t.recorder.series("train_loss") == rec_full.series("train_loss")
    assert log.events == [("fit_start", 0), ("epoch_start", 0), ("epoch_start", 13), ("epoch_start", 26)]


def test_stop_right_after_start_is_not_lost():
    model, opt, loss, train, val = digits_problem(0)
    t = Trainer(model, opt, loss, train, val, max_epochs=50, callbacks=[LRKnob()], progress=False)
    for _ in range(5):
        t.start()
        t.stop()  # usually before the worker thread has run a single line
        seen = t.state.step  # under load the thread may have run a few steps already: no timing is assumed
        t.wait(timeout=20)
        # not lost: the run ends at the first boundary after stop() returned (at most the step in flight finishes)
        assert t.stopped_early and t.state.step <= seen + 1 < t.state.total_steps


def test_change_made_while_paused_applies_at_the_first_step_after_resume():
    model, opt, loss, train, val = digits_problem(0)
    t = Trainer(model, opt, loss, train, val, max_epochs=50, callbacks=[LRKnob()], progress=False)
    t.pause()
    t.start()
    deadline = time.time() + 20
    while t.state.step == 0 and not t.controls.paused and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    assert t.state.step == 0  # held at the first boundary
    t.controls.set("lr", 1e-4)
    time.sleep(0.2)
    t.resume()
    while t.state.step < 3 and time.time() < deadline:
        time.sleep(0.01)
    t.stop()
    t.wait(timeout=20)
    steps, lrs = t.recorder.series("lr")
    assert steps[0] == 0 and lrs[0] == pytest.approx(1e-4)  # not one step late
    assert t.controls.history[0].step == 0


def test_knobs_that_constrain_each_other_are_validated_together():
    from dsopt.lr import LRScheduleCallback

    model, opt, loss, train, val = digits_problem(0)
    cb = LRScheduleCallback({"base_lr": 1e-3, "T_0": 5, "T_mult": 2, "eta_min": 1e-5}, per="batch")
    t = Trainer(model, opt, loss, train, val, max_epochs=1, callbacks=[cb], progress=False)
    with pytest.raises(ParameterError, match=r"eta_min=0.005 > base_lr=0.0001") as e:
        t.controls.update(base_lr=1e-4, eta_min=5e-3)  # each valid alone, impossible together
    assert e.value.name == "eta_min" and t.controls.pending() == {}
    t.controls.set("base_lr", 2e-4)  # queued, not yet applied ...
    with pytest.raises(ParameterError, match="eta_min=0.0005 > base_lr=0.0002"):
        t.controls.set("eta_min", 5e-4)  # ... but already counts against the partner
    t.controls.update(base_lr=1e-4, eta_min=1e-6)  # a consistent pair is accepted
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no clamping, no warning on every batch
        t.fit()
    assert t.controls.values()["eta_min"] == 1e-6 and t.controls.values()["base_lr"] == 1e-4
    assert t.controls.as_parameters()["control_schedule"] == [[0, "base_lr", 1e-4], [0, "eta_min", 1e-6]]


def test_atomic_writes_honour_the_umask_and_keep_an_existing_mode(tmp_path):
    import os
    import stat

    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "new.json", "{}")
        assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640  # 0666 & ~umask, not mkstemp's 0600
        existing = tmp_path / "shared.json"
        existing.write_text("x")
        existing.chmod(0o664)
        atomic_write_text(existing, "y")
        assert stat.S_IMODE(existing.stat().st_mode) == 0o664 and existing.read_text() == "y"
    finally:
        os.umask(old)
