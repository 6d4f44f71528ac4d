"""Mixed precision: modes through torch.amp, the loss scaler's bookkeeping on constructed overflows,
bitwise resume with the scaler's state, live scaler knobs, memory accounting counted by hand, numerics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_core import digits_problem, weights

from dsopt import Callback, Trainer
from dsopt.core.callbacks import StepHooks
from dsopt.precision import (
    FORMATS,
    MixedPrecision,
    SavedTensorMeter,
    ScaleState,
    check_supported,
    collect_gradients,
    log2_histogram,
    max_saving,
    memory_breakdown,
    next_scale,
    representation,
    scale_history,
    scaler_params,
    supported_modes,
)
from dsopt.util.validation import ParameterError


# ----------------------------------------------------------------------------------------- modes
def test_cpu_runs_all_three_modes_in_their_own_dtype():
    assert supported_modes("cpu") == ["fp32", "bf16", "fp16"]  # torch >= 2.4 autocasts fp16 on CPU too
    seen = {}

    def note(module, inputs, output):
        seen.setdefault(mode, output.dtype)

    class Dtypes(Callback):
        def batch_start(self, state):
            self.h = state.model[0].register_forward_hook(note)

        def after_backward(self, state):
            self.h.remove()
            # parameters and their gradients stay fp32 ("master weights") in every mode
            assert all(p.grad.dtype == torch.float32 for p in state.model.parameters())

    for mode in ("fp32", "bf16", "fp16"):
        model, opt, loss, train, val = digits_problem(0)
        Trainer(model, opt, loss, train, max_epochs=1, callbacks=[MixedPrecision(mode), Dtypes()], progress=False).fit()
    assert seen == {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def test_unsupported_mode_is_refused_with_the_reason_not_run_as_fp32():
    msg = r"precision='fp16' is not available on meta .*no autocast.*Modes that run here: fp32"
    with pytest.raises(ParameterError, match=msg):
        check_supported("fp16", "meta")
    with pytest.raises(ParameterError, match=r"precision must be one of 'fp32', 'bf16', 'fp16'; got 'fp8'"):
        MixedPrecision("fp8")
    mp = MixedPrecision("fp32", device="meta")
    with pytest.raises(ParameterError, match="not available on meta"):
        mp.knobs()[0].validate("bf16")  # the live knob refuses it too


def test_support_probe_leaves_the_global_rng_alone():
    from dsopt.precision.amp import _probe, autocast_support

    _probe.cache_clear()
    before = torch.get_rng_state()
    assert autocast_support("cpu", torch.bfloat16) == (True, "")
    assert torch.equal(before, torch.get_rng_state())  # else a resumed run draws different dropout masks


def test_at_most_one_step_owner():
    model, opt, loss, train, val = digits_problem(0)
    with pytest.raises(ValueError, match="at most one StepHooks"):
        Trainer(model, opt, loss, train, max_epochs=1, callbacks=[MixedPrecision("bf16"), StepHooks()])


# ----------------------------------------------------------------------------------------- scaler
def test_next_scale_is_gradscalers_rule():
    s = ScaleState(8.0, 0)
    s = next_scale(s, False, growth_factor=2.0, backoff_factor=0.5, growth_interval=2)
    assert s == ScaleState(8.0, 1)
    s = next_scale(s, False, growth_factor=2.0, backoff_factor=0.5, growth_interval=2)
    assert s == ScaleState(16.0, 0)
    s = next_scale(ScaleState(16.0, 1), True, growth_factor=2.0, backoff_factor=0.5, growth_interval=2)
    assert s == ScaleState(8.0, 0)
    # growth that would overflow float32 keeps the scale (and restarts the count)
    assert next_scale(ScaleState(2.0**127, 0), False, growth_factor=2.0, backoff_factor=0.5, growth_interval=1) == \
        ScaleState(2.0**127, 0)
    assert scale_history([False, False, True, False], init_scale=4.0, growth_interval=2) == [4.0, 4.0, 8.0, 4.0]


class InjectOverflow(Callback):
    """``loss`` is cross-entropy x 1e8 at the given steps: finite in fp32, but its scaled fp16 gradients overflow."""

    order = -50

    def __init__(self, steps):
        self.steps, self.factor = set(steps), 1.0

    def batch_start(self, state):
        self.factor = 1e8 if state.step in self.steps else 1.0

    def batch_end(self, state):
        self.factor = 1.0  # validation losses are never inflated

    def loss(self, out, y):
        return F.cross_entropy(out, y) * self.factor


class WeightsAround(Callback):
    """Remembers whether each optimizer step changed the weights."""

    def __init__(self):
        self.changed = []

    def batch_start(self, state):
        self.before = weights(state.model)

    def batch_end(self, state):
        self.changed.append(any(not torch.equal(a, b) for a, b in zip(self.before, weights(state.model))))


def test_scaler_bookkeeping_on_constructed_overflows():
    overflows = {2, 3, 9}
    model, opt, _, train, _ = digits_problem(0)
    n = len(train)
    mp, spy, inject = MixedPrecision("fp16", init_scale=1024.0, growth_interval=3), WeightsAround(), \
        InjectOverflow(overflows)
    t = Trainer(model, opt, inject.loss, train, max_epochs=1, callbacks=[mp, spy, inject], progress=False)
    rec = t.fit()
    flags = [k in overflows for k in range(n)]
    assert rec.series("overflow")[1] == [float(f) for f in flags]
    expected = scale_history(flags, init_scale=1024.0, growth_interval=3)
    assert rec.series("loss_scale") == (list(range(1, n + 1)), expected)
    assert rec.series("skipped_steps")[1] == list(np.cumsum(flags).astype(float))
    assert spy.changed == [not f for f in flags]  # skipped steps leave every weight untouched
    norms = rec.series("grad_norm")[1]
    assert [not math.isfinite(v) for v in norms] == flags  # inf or NaN exactly on the overflowing steps
    assert mp.scaler.get_scale() == scale_history(flags + [False], init_scale=1024.0, growth_interval=3)[-1]


def test_grad_norm_is_unscaled():
    """fp16's recorded gradient norm (after unscaling) matches the fp32 run's at the first step."""
    norms = {}
    for mode in ("fp32", "fp16"):
        model, opt, loss, train, _ = digits_problem(0)
        rec = Trainer(model, opt, loss, train, max_epochs=1, callbacks=[MixedPrecision(mode)], progress=False).fit()
        norms[mode] = rec.series("grad_norm")[1][0]
    assert norms["fp16"] == pytest.approx(norms["fp32"], rel=1e-2)
    assert rec.series("loss_scale")[1][0] == 65536.0


@pytest.mark.parametrize("mode,stop_at", [("fp16", 6), ("fp16", 13), ("bf16", 6)])
def test_resume_with_scaler_state_is_bitwise_identical(tmp_path, mode, stop_at):
    overflows = {1, 4}

    def build(callbacks=(), **kw):
        model, opt, _, train, val = digits_problem(1)
        mp, inject = MixedPrecision(mode, init_scale=2.0**12, growth_interval=2), InjectOverflow(overflows)
        t = Trainer(model, opt, inject.loss, train, val, max_epochs=2, callbacks=[mp, inject, *callbacks],
                    progress=False, **kw)
        return t, mp

    full, mp_full = build()
    rec_full = full.fit()

    class StopAt(Callback):
        def batch_end(self, state):
            if state.step == stop_at:
                state.controls.stop()

    ck = tmp_path / "amp.ckpt"
    part, mp_part = build([StopAt()], checkpoint_path=ck)
    part.fit()
    assert part.stopped_early and part.state.step == stop_at
    saved = torch.load(ck, weights_only=False)["callbacks"]["MixedPrecision"]  # callback states keyed by name
    if mode == "fp16":
        # the scale moved away from init_scale (overflows and growth), so a resume without it would differ
        assert saved["scaler"]["scale"] == mp_part.scaler.get_scale() != 2.0**12
        assert saved["skipped"] == 2
    torch.manual_seed(999)  # a fresh process: scrambled RNG, fresh model, fresh scaler
    resumed, mp_res = build([StopAt()])
    rec = resumed.fit(resume_from=ck)
    assert all(torch.equal(a, b) for a, b in zip(weights(full.model), weights(resumed.model)))
    for name in ("train_loss", "loss_scale", "overflow", "skipped_steps", "grad_norm", "val_loss"):
        (s1, v1), (s2, v2) = rec.series(name), rec_full.series(name)
        assert s1 == s2 and np.array_equal(v1, v2, equal_nan=True), name  # NaN: a norm on an overflow step
    if mode == "fp16":
        assert mp_res.scaler.state_dict() == mp_full.scaler.state_dict()


def test_scaler_knobs_apply_live_and_invalid_values_are_refused():
    model, opt, loss, train, _ = digits_problem(0)

    class Turn(Callback):
        def batch_end(self, state):
            if state.step == 2:
                state.controls.update(init_scale=8.0, growth_interval=2, growth_factor=4.0)

    mp = MixedPrecision("fp16", growth_interval=1000)
    t = Trainer(model, opt, loss, train, max_epochs=1, callbacks=[mp, Turn()], progress=False)
    with pytest.raises(ParameterError, match=r"backoff_factor must be a number in \(0.0, 1.0\); got 1.5"):
        t.controls.set("backoff_factor", 1.5)
    with pytest.raises(ParameterError, match=r"growth_interval must be an integer in \[1, 1000000000\]; got 0"):
        t.controls.set("growth_interval", 0)
    rec = t.fit()
    scales = rec.series("loss_scale")[1]
    # steps 0-1 at the default 2**16; from step 2 the scale restarts at 8 and grows x4 every 2 good steps
    assert scales[:6] == [65536.0, 65536.0, 8.0, 8.0, 32.0, 32.0]
    assert rec.series("knob/init_scale") == ([2], [8.0])


def test_precision_switches_live_between_modes():
    model, opt, loss, train, _ = digits_problem(0)
    dtypes = []

    class Switch(Callback):
        def batch_start(self, state):
            self.h = state.model[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))

        def batch_end(self, state):
            self.h.remove()
            if state.step == 2:
                state.controls.set("precision", "fp16")

    t = Trainer(model, opt, loss, train, max_epochs=1, callbacks=[MixedPrecision("bf16"), Switch()], progress=False)
    rec = t.fit()
    assert dtypes[:4] == [torch.bfloat16, torch.bfloat16, torch.float16, torch.float16]
    assert rec.series("loss_scale")[1][:3] == [1.0, 1.0, 65536.0]


def test_scaler_params_validate():
    assert scaler_params() == {"init_scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                               "growth_interval": 2000}
    with pytest.raises(ParameterError, match=r"growth_factor must be a number in \(1.0, 1024.0\]; got 1.0"):
        scaler_params(growth_factor=1.0)
    with pytest.raises(ParameterError, match="scale is not a loss-scaler parameter"):
        scaler_params(scale=2.0)


# ----------------------------------------------------------------------------------------- memory
def small_mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def test_memory_breakdown_counted_by_hand():
    """Linear(4,8) -> ReLU -> Linear(8,2) -> cross-entropy, batch 5.

    Saved for backward: the input x [5,4] (first matmul; its weight needs no saving because x needs no
    gradient), the ReLU output [5,8] (also the second matmul's input: one storage), the second weight
    (a parameter, fp32 mode; its autocast copy in bf16/fp16), log_softmax's output [5,2] fp32, nll's
    int64 targets [5] and its fp32 total weight (a scalar).
    """
    m, B = small_mlp(), 5
    x, y = torch.randn(B, 4), torch.tensor([0, 1, 0, 1, 1])
    n_params = 4 * 8 + 8 + 8 * 2 + 2
    fp32 = memory_breakdown(m, (x, y), F.cross_entropy, "fp32")
    assert fp32["parameters"] == fp32["gradients"] == 4 * n_params
    assert fp32["optimizer_state"] == 2 * 4 * n_params + 4 * 4  # AdamW: 2 moments + a step counter per tensor
    assert fp32["activations_by_dtype"] == {"float32": 4 * (B * 4 + B * 8 + B * 2 + 1), "int64": 8 * B}
    assert fp32["parameter_copies"] == 0
    for mode, dt in (("bf16", "bfloat16"), ("fp16", "float16")):
        low = memory_breakdown(m, (x, y), F.cross_entropy, mode)
        assert low["activations_by_dtype"] == {dt: 2 * (B * 4 + B * 8), "float32": 4 * (B * 2 + 1), "int64": 8 * B}
        assert low["parameter_copies"] == 2 * 8 * 2  # the second weight, cast to 16 bits and saved
        for k in ("parameters", "gradients", "optimizer_state"):
            assert low[k] == fp32[k]  # master weights, gradients and Adam state do not shrink
    assert fp32["total"] == sum(fp32[k] for k in ("parameters", "gradients", "optimizer_state", "activations"))
    assert max_saving(fp32) == pytest.approx(0.5 * fp32["activations"] / fp32["total"])
    assert [p.grad for p in m.parameters()] == [None] * 4  # the model itself was not touched


def test_saved_tensor_meter_counts_each_storage_once():
    x = torch.randn(10, 10, requires_grad=True)
    with SavedTensorMeter() as meter:
        y = x * x  # saves x twice (self and other): one storage
        z = y.sin()  # saves y
    z.sum().backward()
    assert meter.n_saved == 3 and meter.activation_bytes == 2 * 400


# ----------------------------------------------------------------------------------------- numerics
def test_representation_is_exact_at_the_fp16_edges():
    sub = 2.0**-24  # fp16's smallest subnormal
    vals = [sub, 2.0**-25, 2.0**-26, 1e-3, 70000.0]  # 2**-25 is the tie: rounds to even, i.e. to 0
    r = representation(vals, "fp16")
    assert r["n"] == 5 and r["underflow"] == pytest.approx(2 / 5) and r["overflow"] == pytest.approx(1 / 5)
    assert r["subnormal"] == pytest.approx(1 / 5) and r["normal"] == pytest.approx(1 / 5)
    r = representation(vals, "fp16", scale=2.0**10)  # every small one lifted into range; 70000 * 1024 overflows
    assert r["underflow"] == 0 and r["overflow"] == pytest.approx(1 / 5)
    assert representation(vals, "bf16")["underflow"] == 0  # bf16 reaches 2**-133
    assert FORMATS["fp16"].min_subnormal == sub and FORMATS["fp16"].max == 65504.0
    assert FORMATS["bf16"].min_subnormal == 2.0**-133


def test_log2_histogram_bins_powers_of_two():
    h = log2_histogram([0.0, 1.0, 1.5, 0.25, 2.0**-70], lo=-64, hi=4)
    counts = dict(zip(h["edges"][:-1].tolist(), h["counts"].tolist()))
    assert counts[0] == 2 and counts[-2] == 1 and counts[-64] == 1 and h["zeros"] == 1 and sum(h["counts"]) == 4


def test_collect_gradients_real_model():
    m = small_mlp()
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 0, 1, 1])
    g = collect_gradients(m, (x, y), F.cross_entropy)
    assert g["weights"].shape == (58,) and g["weights"].dtype == np.float32
    assert g["activations"].shape == (5 * 8 + 5 * 8 + 5 * 2,)  # outputs of Linear, ReLU, Linear
    assert all(p.grad is None for p in m.parameters())
