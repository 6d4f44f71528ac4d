"""Mixed-precision panel logic without a browser: scale slider -> histogram; Apply -> Controls -> next step;
live traces and gradient snapshots from the run (never the model)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_core import digits_problem

from dsopt import Callback, Trainer
from dsopt.precision import MODES, GradientProbe, MixedPrecision, memory_breakdown, representation
from dsopt.util.validation import ParameterError
from dsopt_widgets import MixedPrecisionPanel
from dsopt_widgets.mixed_precision_figures import histogram_data
from dsopt.precision.memory import PARTS


def run(extra=(), precision="fp16", epochs=1):
    model, opt, loss, train, val = digits_problem(0)
    mp = MixedPrecision(precision, growth_interval=4)
    probe = GradientProbe(every=3, scale_of=mp)
    return Trainer(model, opt, loss, train, val, max_epochs=epochs, progress=False, callbacks=[mp, probe, *extra])


def memory_of(trainer):
    x, y = next(iter(trainer.train_loader))
    per = [{m: memory_breakdown(trainer.model, (x, y), trainer.loss_fn, m) for m in MODES}]
    return {"batches": per, "mean": {m: {k: float(v) for k, v in per[0][m].items() if isinstance(v, (int, float))}
                                     for m in MODES}}


def test_scale_slider_shifts_the_histogram_and_leaves_the_run_alone():
    t = run()
    t.fit()
    panel = MixedPrecisionPanel(t)
    panel.refresh()  # picks up the probe's latest gradients
    assert panel.grads_step == t.callbacks[1].latest()["step"]
    acts = panel.grads["activations"]
    panel.scale_exp.value = 0
    x0 = np.array(panel.preview.data[0].x)
    panel.scale_exp.value = 10
    x1 = np.array(panel.preview.data[0].x)
    assert np.allclose(x1 - x0, 10.0)  # x 2^10 is a shift by 10 on the log2 axis
    shown = panel.preview.widget.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert np.allclose(shown["data"][0]["x"], x1)  # what the browser gets is the redrawn figure
    rep = representation(acts, "fp16", 2.0**10)
    assert f"{100 * rep['underflow']:.2f} % of the non-zero activations gradients flush to 0" in panel.readout.value
    assert panel.last_update_ms is not None and panel.last_update_ms < 1000
    assert t.controls.pending() == {} and t.controls.get("init_scale") == 65536.0


def test_apply_reaches_the_run_at_the_next_step_boundary():
    box = {}

    class ApplyAtStep3(Callback):
        def batch_end(self, state):
            if state.step == 3:
                p = box["panel"]
                p.scale_exp.value = 5
                p.growth_interval.value = "1000"
                assert state.knobs["init_scale"] == 65536.0  # not yet applied
                assert p.apply() is not None

    t = run([ApplyAtStep3()])
    box["panel"] = panel = MixedPrecisionPanel(t)
    t.fit()
    changes = {c.name: (c.step, c.new) for c in t.controls.history}
    assert changes["init_scale"] == (3, 32.0) and changes["growth_interval"] == (3, 1000)
    scales = t.recorder.series("loss_scale")[1]
    assert scales[3] == 32.0 and scales[2] != 32.0  # the 4th step ran with the new scale
    assert "init_scale=2^5, growth_interval=1000" in panel.message.value  # the change, as the panel names it


def test_live_traces_follow_the_recorder_and_the_timings():
    t = run(epochs=1)
    panel = MixedPrecisionPanel(t)
    t.fit()
    panel.refresh()
    n = t.state.step
    assert list(panel.live.data[1].y) == t.recorder.series("loss_scale")[1]  # loss scale
    assert list(panel.live.data[2].y) == t.recorder.series("skipped_steps")[1]
    assert len(panel.live.data[4].y) == n and min(panel.live.data[4].y) > 0  # step time (ms), from the timings
    assert panel.live.data[1].x[-1] == pytest.approx(1.0)  # x axis in epochs


def test_memory_bars_and_headless_figure():
    t = run()
    t.fit()
    mem = memory_of(t)
    panel = MixedPrecisionPanel(t, memory=mem)
    stacked = {tr.name: list(tr.y) for tr in panel.memory_fig.data if tr.type == "bar"}
    assert stacked["Adam state (fp32)"][0] == stacked["Adam state (fp32)"][1] == stacked["Adam state (fp32)"][2]
    assert stacked["autocast's weight copies"][0] == 0 < stacked["autocast's weight copies"][1]
    fig = panel.static_figure()
    assert any(tr.type == "bar" for tr in fig.data) and len(fig.data) >= 7


def test_memory_changes_are_relative_to_fp32_whatever_the_order_of_the_modes():
    """Issue 20 item 4: the panel said fp32 "+9 %" and bf16 "+0 %" (relative to the first mode it was given, bf16)
    while section 2 says fp32 +0 %, bf16 -8 %."""
    from dsopt_widgets.mixed_precision_figures import memory_figure

    parts = {"total": 0.0}
    mean = {"bf16": {**parts, "total": 29.3e6}, "fp16": {**parts, "total": 30.0e6}, "fp32": {**parts, "total": 31.9e6}}
    fig = memory_figure({m: {**{k: 0.0 for k in PARTS}, **v} for m, v in mean.items()})
    labels = dict(zip(fig.data[-1].x, fig.data[-1].text))
    assert list(fig.data[-1].x) == ["fp32", "bf16", "fp16"]  # the reference first
    assert labels == {"fp32": "31.9 MB", "bf16": "29.3 MB (-8 % vs fp32)", "fp16": "30.0 MB (-6 % vs fp32)"}


def test_preview_only_panel_and_refusals():
    with pytest.raises(ParameterError, match="gradients are required"):
        MixedPrecisionPanel()
    g = {"activations": np.array([2.0**-30, 2.0**-10, 1.0]), "weights": np.array([2.0**-5])}
    panel = MixedPrecisionPanel(gradients=g)
    panel.scale_exp.value = 0
    assert "33.33 % of the non-zero activations gradients flush to 0" in panel.readout.value
    assert panel.apply() is None and "no run is attached" in panel.message.value
    x, y, rep = histogram_data({"edges": [-2, -1, 0, 1], "counts": [1, 0, 3]}, 4.0)  # a stored histogram
    assert x == [0.5, 1.5, 2.5] and y == [0.25, 0.0, 0.75] and rep is None
    model, opt, loss, train, _ = digits_problem(0)
    with pytest.raises(ParameterError, match="no MixedPrecision callback"):
        MixedPrecisionPanel(Trainer(model, opt, loss, train, max_epochs=1, progress=False))
    assert math.isclose(panel.scale, 1.0)
    assert torch.get_num_threads() >= 1
