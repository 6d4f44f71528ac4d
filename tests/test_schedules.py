"""Schedules: parity with torch's CosineAnnealingWarmRestarts, combinators, previews, the callback."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from dsopt import Callback, Trainer, seed_everything
from dsopt.lr import (
    Constant,
    CosineRestarts,
    CycleDecay,
    CycleLimit,
    LRScheduleCallback,
    OneCycleCosine,
    Schedule,
    Warmup,
    params_of,
    restart_positions,
    schedule_from_params,
    validate_params,
)
from dsopt.util.validation import ParameterError

TOL = 1e-12


def torch_scheduler(base_lr, T_0, T_mult, eta_min):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=T_0, T_mult=T_mult, eta_min=eta_min)


def random_configs(seed, n):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        base_lr = float(10 ** rng.uniform(-5, 0.5))
        eta_min = 0.0 if rng.random() < 0.3 else float(base_lr * rng.uniform(0, 1))
        T_mult = int(rng.choice([1, 1, 2, 2, 3, 4, 7, 10]))
        yield base_lr, int(rng.integers(1, 21)), T_mult, eta_min


def torch_log_cycle(t, T_0, T_mult):
    """The cycle index torch's fractional-epoch path computes (a float log)."""
    if t < T_0:
        return 0
    if T_mult == 1:
        return int(t // T_0)
    return int(math.log(t / T_0 * (T_mult - 1) + 1, T_mult))


# -- parity -------------------------------------------------------------------------------------
def test_parity_with_torch_stepped_per_epoch():
    """sched.step() once per epoch: torch's integer counters, our closed form, identical values."""
    for base_lr, T_0, T_mult, eta_min in random_configs(0, 150):
        ours = CosineRestarts(base_lr, T_0, T_mult, eta_min)
        sched = torch_scheduler(base_lr, T_0, T_mult, eta_min)
        horizon = 400 if T_mult == 1 else 1000
        expected = []
        for _ in range(horizon):
            expected.append(sched.get_last_lr()[0])  # the rate used during this epoch
            sched.step()
        expected = np.array(expected)
        got = ours.preview(np.arange(horizon))
        assert np.max(np.abs(got - expected)) <= TOL, (base_lr, T_0, T_mult, eta_min)
        for e in (0, T_0 - 1, T_0, horizon - 1):
            assert abs(ours(e) - expected[e]) <= TOL


def test_parity_with_torch_stepped_per_batch_with_fractional_epochs():
    """sched.step(epoch + i / iters): the torch-documented per-batch pattern."""
    rng = np.random.default_rng(1)
    quirks = 0
    for base_lr, T_0, T_mult, eta_min in random_configs(1, 150):
        ours = CosineRestarts(base_lr, T_0, T_mult, eta_min)
        sched = torch_scheduler(base_lr, T_0, T_mult, eta_min)
        iters = int(rng.integers(1, 40))
        epochs = int(rng.integers(5, 80)) if T_mult > 1 else int(rng.integers(5, 40))
        ts, expected = [], []
        for epoch in range(epochs):
            for i in range(iters):
                t = epoch + i / iters
                sched.step(t)
                ts.append(t)
                expected.append(sched.get_last_lr()[0])
        ts, expected = np.array(ts), np.array(expected)
        got = ours.preview(ts)
        exact_index, _, _ = ours.cycles(ts)
        # Where torch's float log misplaces an exact restart we follow torch's per-epoch answer
        # (test_torch_fractional_log_quirk); everywhere else the values must agree.
        ok = np.array([torch_log_cycle(t, T_0, T_mult) == k for t, k in zip(ts, exact_index)])
        quirks += int((~ok).sum())
        assert np.max(np.abs(got[ok] - expected[ok])) <= TOL, (base_lr, T_0, T_mult, eta_min, iters)
        assert np.array_equal(got, [ours(t) for t in ts])
    assert quirks <= 5  # a handful of exact restarts at T_mult in (3, 7, 10) at most


def test_torch_fractional_log_quirk_is_resolved_like_its_per_epoch_path():
    """At t = 121 with T_0=1, T_mult=3, log(243, 3) = 4.999..., so torch's step(121.0) ends cycle 3
    (eta_min) while torch stepped 121 times starts cycle 4 (base_lr). Our schedule: the restart."""
    frac = torch_scheduler(1.0, 1, 3, 0.0)
    frac.step(121.0)
    per_epoch = torch_scheduler(1.0, 1, 3, 0.0)
    for _ in range(121):
        per_epoch.step()
    assert frac.get_last_lr()[0] == pytest.approx(0.0, abs=1e-15)
    assert per_epoch.get_last_lr()[0] == 1.0
    assert CosineRestarts(1.0, 1, 3)(121.0) == 1.0
    assert 121.0 in restart_positions(CosineRestarts(1.0, 1, 3), 200)
    # T_mult=10 misplaces its third restart the same way (111 * T_0).
    assert CosineRestarts(1.0, 2, 10)(222.0) == 1.0


def test_per_batch_step_without_epoch_makes_T_0_count_iterations():
    """The pitfall: scheduler.step() once per *batch* restarts after T_0 batches, not T_0 epochs."""
    iters, epochs = 10, 20
    wrong = torch_scheduler(1e-3, 5, 2, 0.0)
    lrs = []
    for _ in range(epochs * iters):
        lrs.append(wrong.get_last_lr()[0])
        wrong.step()  # no epoch argument
    lrs = np.array(lrs)
    jumps = np.flatnonzero(np.diff(lrs) > 0) + 1  # batch indices where the rate jumps back up
    restarts_in_epochs = (jumps / iters).tolist()
    assert restarts_in_epochs == [0.5, 1.5, 3.5, 7.5, 15.5]  # 5, 15, 35, 75, 155 batches
    intended = restart_positions({"base_lr": 1e-3, "T_0": 5, "T_mult": 2}, epochs)
    assert intended == [5.0, 15.0]
    assert restarts_in_epochs != intended
    # Our schedule driven by the fractional epoch has the intended restarts.
    s = CosineRestarts(1e-3, 5, 2)
    ours = s.preview(np.arange(epochs * iters) / iters)
    assert ((np.flatnonzero(np.diff(ours) > 0) + 1) / iters).tolist() == intended


# -- combinators ----------------------------------------------------------------------------------
def test_warmup_ramps_then_shifts_the_schedule():
    inner = CosineRestarts(0.1, 5, 2, 0.001)
    w = Warmup(inner, 2.0, start_factor=0.25)
    assert w(0.0) == pytest.approx(0.025)
    assert w(1.0) == pytest.approx(0.1 * (0.25 + 0.75 * 0.5))
    assert w(2.0) == inner(0.0) == 0.1  # continuous at the end of the ramp
    ts = np.linspace(2.0, 60.0, 500)
    np.testing.assert_array_equal(w.preview(ts), inner.preview(ts - 2.0))
    ramp = w.preview(np.linspace(0, 1.999, 50))
    assert np.all(np.diff(ramp) > 0)
    assert restart_positions(w, 100) == [7.0, 17.0, 37.0, 77.0]
    assert Warmup(inner, 0.0)(3.0) == inner(3.0)


def test_cycle_decay_peaks_and_floor():
    r = CosineRestarts(0.1, 4, 1, 0.01)
    d = CycleDecay(r, 0.5)
    for i in range(4):
        assert d(4.0 * i) == pytest.approx(max(0.1 * 0.5**i, 0.01))
        assert d(4.0 * i + 4 - 1e-9) == pytest.approx(0.01, abs=1e-9)  # always ends at eta_min
    assert np.all(d.preview(np.linspace(0, 40, 999)) >= 0.01 - 1e-15)
    np.testing.assert_array_equal(CycleDecay(r, 1.0).preview(np.linspace(0, 40, 999)), r.preview(np.linspace(0, 40, 999)))
    assert restart_positions(d, 13) == [4.0, 8.0, 12.0]


def test_cycle_limit_stays_at_eta_min():
    r = CosineRestarts(0.1, 5, 2, 0.002)
    lim = CycleLimit(r, 2)
    ts = np.linspace(0, 14.99, 300)
    np.testing.assert_array_equal(lim.preview(ts), r.preview(ts))  # cycles 0 and 1 unchanged
    after = np.linspace(15, 100, 300)
    assert np.all(lim.preview(after) == 0.002)
    assert restart_positions(lim, 100) == [5.0]
    both = CycleLimit(CycleDecay(r, 0.5), 2)
    assert both(5.0) == pytest.approx(0.05) and both(20.0) == 0.002


def test_constant_and_one_cycle():
    assert np.all(Constant(0.01).preview(np.arange(7.0)) == 0.01)
    one = OneCycleCosine(0.1, 20, 0.001)
    assert one(0) == 0.1 and one(10) == pytest.approx(0.0505) and one(20) == 0.001 and one(35) == 0.001
    np.testing.assert_array_equal(one.preview(np.arange(20.0)), CosineRestarts(0.1, 20, 1, 0.001).preview(np.arange(20.0)))
    assert restart_positions(one, 100) == [] and restart_positions(Constant(0.1), 100) == []


ALL_SCHEDULES = [
    CosineRestarts(0.05, 3, 2, 1e-4),
    CosineRestarts(0.05, 7),
    CycleDecay(CosineRestarts(0.05, 3, 2, 1e-4), 0.7),
    CycleLimit(CosineRestarts(0.05, 3, 1, 1e-4), 3),
    Warmup(CycleLimit(CycleDecay(CosineRestarts(0.05, 3, 2), 0.5), 4), 1.5),
    Constant(0.3),
    OneCycleCosine(0.05, 30, 1e-4),
]


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_preview_equals_call_pointwise_and_is_vectorised(schedule, monkeypatch):
    ts = np.concatenate([np.arange(0, 60, 0.25), np.arange(60.0), np.random.default_rng(0).uniform(0, 60, 200)])
    pointwise = np.array([schedule(t) for t in ts])
    preview = schedule.preview(ts)
    np.testing.assert_array_equal(preview, pointwise)
    assert preview.shape == ts.shape and preview.dtype == np.float64
    assert schedule.preview(ts.reshape(-1, 2)).shape == (ts.size // 2, 2)
    # No Python loop over steps: a 10^5-point preview calls __call__ at most once (Warmup's peak).
    calls = []
    original = Schedule.__call__
    monkeypatch.setattr(Schedule, "__call__", lambda self, t: calls.append(t) or original(self, t))
    schedule.preview(np.linspace(0, 1000, 100_000))
    assert len(calls) <= 1


def test_preview_refuses_negative_or_nan_times():
    s = CosineRestarts(0.1, 5)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ParameterError, match="t \\(epoch or step\\)") as e:
            s(bad)
        assert e.value.name == "t"


# -- restart positions and flat parameters ------------------------------------------------------
def test_restart_positions():
    assert restart_positions({"base_lr": 1e-3, "T_0": 5, "T_mult": 2}, 100) == [5, 15, 35, 75]
    assert restart_positions({"base_lr": 1e-3, "T_0": 5, "T_mult": 2}, 75) == [5, 15, 35]
    assert restart_positions({"base_lr": 1e-3, "T_0": 10}, 35) == [10, 20, 30]
    assert restart_positions({"base_lr": 1e-3, "T_0": 10}, 30) == [10, 20]
    assert restart_positions({"base_lr": 1e-3, "T_0": 5, "T_mult": 2, "warmup": 3}, 100) == [8, 18, 38, 78]
    assert restart_positions({"base_lr": 1e-3, "T_0": 5, "T_mult": 2, "cycle_limit": 3}, 100) == [5, 15]
    assert restart_positions({"base_lr": 1e-3, "T_0": 5, "T_mult": 2, "cycle_limit": 1}, 100) == []
    # The article's recipe on a 10- or 20-epoch budget ends mid-cycle at a high rate.
    s = schedule_from_params({"base_lr": 1e-3, "T_0": 5, "T_mult": 2})
    assert s(19) > 0.5e-3 and s(9) > 0.5e-3
    with pytest.raises(ParameterError) as e:
        restart_positions(s, 0)
    assert e.value.name == "horizon"


def test_schedule_from_params_builds_the_stack():
    assert schedule_from_params({"base_lr": 0.1, "T_0": 5}) == CosineRestarts(0.1, 5)
    full = {"base_lr": 0.1, "T_0": 5, "T_mult": 2, "eta_min": 1e-3, "warmup": 2, "cycle_decay": 0.5, "cycle_limit": 3}
    s = schedule_from_params(full)
    assert s == Warmup(CycleLimit(CycleDecay(CosineRestarts(0.1, 5, 2, 1e-3), 0.5), 3), 2.0)
    assert params_of(s) == validate_params(full)
    assert schedule_from_params(params_of(OneCycleCosine(0.1, 10))).preview(np.arange(30.0)).tolist() == \
        OneCycleCosine(0.1, 10).preview(np.arange(30.0)).tolist()
    assert schedule_from_params({"base_lr": 0.1, "T_0": 5.0})  # 5.0 is an integer value


@pytest.mark.parametrize("name, value", [
    ("base_lr", 0), ("base_lr", 11), ("base_lr", "0.1"), ("base_lr", float("nan")),
    ("T_0", 0), ("T_0", 2.5), ("T_mult", 0), ("T_mult", 1.5),
    ("eta_min", -1e-3), ("eta_min", 0.5),  # 0.5 > base_lr = 0.1
    ("warmup", -1), ("cycle_decay", 0), ("cycle_decay", 1.5), ("cycle_limit", -1), ("cycle_limit", 2.5),
])
def test_schedule_from_params_messages_name_the_parameter(name, value):
    params = {"base_lr": 0.1, "T_0": 5, name: value}
    with pytest.raises(ParameterError) as e:
        schedule_from_params(params)
    assert e.value.name == name
    assert name in str(e.value) and repr(value) in str(e.value)


def test_schedule_from_params_unknown_and_missing_names():
    with pytest.raises(ParameterError, match="T0") as e:
        schedule_from_params({"base_lr": 0.1, "T0": 5})
    assert e.value.name == "T0"
    with pytest.raises(ParameterError, match="T_0 is required") as e:
        schedule_from_params({"base_lr": 0.1})
    assert e.value.name == "T_0"


def test_class_constructors_validate():
    with pytest.raises(ParameterError, match="T_0"):
        CosineRestarts(0.1, 0)
    with pytest.raises(ParameterError, match="eta_min"):
        CosineRestarts(0.1, 5, 1, 0.2)
    with pytest.raises(ParameterError, match="decay"):
        CycleDecay(CosineRestarts(0.1, 5), 0.0)
    with pytest.raises(ParameterError, match="restarts"):
        CycleDecay(Constant(0.1), 0.5)
    with pytest.raises(ParameterError, match="limit"):
        CycleLimit(CosineRestarts(0.1, 5), 0)
    with pytest.raises(ParameterError, match="start_factor"):
        Warmup(CosineRestarts(0.1, 5), 1, start_factor=2)
    with pytest.raises(ParameterError, match="total"):
        OneCycleCosine(0.1, 0)


# -- the Trainer callback ---------------------------------------------------------------------------
def digits(seed=0, n=320, batch_size=32, groups=1):
    g = seed_everything(seed)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X[:n] / 16.0, dtype=torch.float32)
    y = torch.tensor(y[:n], dtype=torch.long)
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True, generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    if groups == 1:
        opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    else:
        opt = torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.123}], lr=0.5)
    return model, opt, torch.nn.functional.cross_entropy, loader


class SeeLR(Callback):
    """Records the rate each optimizer group actually had during each step."""

    def __init__(self):
        self.seen = []

    def after_backward(self, state):
        self.seen.append((state.epoch, state.batch_index, [g["lr"] for g in state.optimizer.param_groups]))


@pytest.mark.parametrize("per", ["batch", "epoch"])
def test_callback_drives_the_optimizer(per):
    model, opt, loss, loader = digits()
    params = {"base_lr": 0.05, "T_0": 1, "T_mult": 2, "eta_min": 1e-4}
    cb, see = LRScheduleCallback(params, per=per), SeeLR()
    recorder = Trainer(model, opt, loss, loader, max_epochs=4, callbacks=[cb, see], progress=False).fit()
    n = len(loader)
    s = schedule_from_params(params)
    expected = [s(e + i / n) if per == "batch" else s(e) for e, i, _ in see.seen]
    assert [lrs[0] for _, _, lrs in see.seen] == expected
    steps, logged = recorder.series("lr")
    assert logged == expected and steps == list(range(4 * n))
    if per == "epoch":
        assert len(set(expected[:n])) == 1 and expected[2 * n] < expected[0]  # epoch 1 restarts (T_0=1)


def test_callback_param_groups_and_validation():
    model, opt, loss, loader = digits(groups=2)
    cb, see = LRScheduleCallback(CosineRestarts(0.05, 2), per="batch", param_groups=[0]), SeeLR()
    Trainer(model, opt, loss, loader, max_epochs=1, callbacks=[cb, see], progress=False).fit()
    assert all(lrs[1] == 0.123 for _, _, lrs in see.seen)
    assert see.seen[0][2][0] == 0.05
    with pytest.raises(ParameterError) as e:
        LRScheduleCallback({"base_lr": 0.1, "T_0": 5}, per="step")
    assert e.value.name == "per"
    bad = LRScheduleCallback({"base_lr": 0.1, "T_0": 5}, param_groups=[3])
    with pytest.raises(ParameterError, match="param_groups"):
        Trainer(model, opt, loss, loader, max_epochs=1, callbacks=[bad], progress=False).fit()
    # A custom schedule the flat knobs cannot express runs, but offers no knobs.
    assert LRScheduleCallback(Constant(0.1)).knobs() == []
    assert [k.name for k in LRScheduleCallback(CosineRestarts(0.1, 5, 2)).knobs()] == [
        "base_lr", "T_0", "T_mult", "eta_min", "warmup", "cycle_decay", "cycle_limit"]


class ChangeAt(Callback):
    """Queues knob changes at batch_end of a given step (as a widget thread would)."""

    def __init__(self, step, **changes):
        self.at, self.changes = step, changes

    def batch_end(self, state):
        if state.step == self.at:
            state.controls.update(**self.changes)


def test_live_knob_change_rebuilds_the_schedule_at_the_next_step():
    model, opt, loss, loader = digits()
    n = len(loader)
    params = {"base_lr": 0.05, "T_0": 2}
    cb, see = LRScheduleCallback(params), SeeLR()
    change = ChangeAt(15, T_0=1, T_mult=2, base_lr=0.02)
    trainer = Trainer(model, opt, loss, loader, max_epochs=3, callbacks=[cb, see, change], progress=False)
    trainer.fit()
    old, new = schedule_from_params(params), schedule_from_params({"base_lr": 0.02, "T_0": 1, "T_mult": 2})
    got = [lrs[0] for _, _, lrs in see.seen]
    expected = [(old if k < 15 else new)(e + i / n) for k, (e, i, _) in enumerate(see.seen)]
    assert got == expected
    assert cb.state_dict()["params"] == validate_params({"base_lr": 0.02, "T_0": 1, "T_mult": 2})
    # Invalid live values are refused when typed, naming the knob; the run keeps its schedule.
    with pytest.raises(ParameterError) as e:
        trainer.controls.set("eta_min", 0.5)
    assert e.value.name == "eta_min" and "base_lr" in str(e.value)
    with pytest.raises(ParameterError) as e:
        trainer.controls.set("T_0", 0)
    assert e.value.name == "T_0"


def test_callback_state_dict_round_trip():
    cb = LRScheduleCallback({"base_lr": 0.1, "T_0": 5, "warmup": 1}, per="epoch")
    other = LRScheduleCallback({"base_lr": 0.3, "T_0": 2}, per="epoch")
    other.load_state_dict(cb.state_dict())
    assert other.params == cb.params and other.schedule == cb.schedule
    with pytest.raises(ParameterError, match="per"):
        LRScheduleCallback({"base_lr": 0.1, "T_0": 5}, per="batch").load_state_dict(cb.state_dict())
