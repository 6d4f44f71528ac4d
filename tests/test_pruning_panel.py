"""Pruning panel logic without a browser: slider -> pruned set and accuracy; Remove -> a smaller model, timed."""
from __future__ import annotations

import pytest
import torch

from dsopt import Trainer, seed_everything
from dsopt.data.tasks import make_task
from dsopt.pruning import head_counts
from dsopt_widgets import PruningPanel, has_frontend


@pytest.fixture(scope="module")
def trained():
    """A small transformer on digits (2 layers x 4 heads), reading its first token: heads matter."""
    seed_everything(0)
    task = make_task("digits", scale="workshop", seed=0)
    model = task.make_model()
    model.pooling = "cls"
    Trainer(model, torch.optim.AdamW(model.parameters(), lr=2e-3), torch.nn.functional.cross_entropy,
            task.train_loader, None, max_epochs=4, progress=False).fit()
    return model.eval(), list(task.val_loader)


def gates_of(model):
    return [a.head_gate.tolist() for a in model.attention_layers()]


def test_slider_changes_pruned_set_heatmap_and_accuracy(trained):
    model, val = trained
    panel = PruningPanel(model, val, value=0.0, latency_repeats=2)
    assert panel.heads == {} and panel.accuracy_ == panel.baseline_accuracy
    assert len(panel.heatmap.data[1].x) == 0 and panel.last_update_ms is not None
    panel.slider.value = 0.75  # 6 of 8 heads: one per layer is left
    assert sum(map(len, panel.heads.values())) == 6 and all(len(v) == 3 for v in panel.heads.values())
    assert len(panel.heatmap.data[1].x) == 6
    assert panel.accuracy_ != panel.baseline_accuracy
    assert "6 of 8 heads pruned (75 %)" in panel.status.value and "whole-model FLOPs -" in panel.status.value
    # the live model carries the mask (gates at 0) until restore()
    assert sum(g.count(0.0) for g in gates_of(model)) == 6
    acc = panel.accuracy_
    panel.slider.value = 0.25
    panel.slider.value = 0.75
    assert panel.accuracy_ == acc  # memoised per head set
    panel.restore()
    assert all(v == 1.0 for g in gates_of(model) for v in g)


def test_threshold_mode_scope_and_method(trained):
    model, val = trained
    panel = PruningPanel(model, val, value=0.5)
    z_gradient = list(map(list, panel.heatmap.data[0].z))
    panel.mode.value = "threshold"
    assert panel.slider.description == "threshold"
    panel.slider.value = 1.0
    assert all(len(v) <= 3 for v in panel.heads.values())  # never the last head of a layer
    panel.scope.value = "per layer"
    assert sorted(panel.heads) == [0, 1] and all(len(v) == 3 for v in panel.heads.values())
    panel.method.value = "confidence"
    assert list(map(list, panel.heatmap.data[0].z)) != z_gradient
    assert "confidence" in panel.heatmap.layout.title.text
    panel.restore()


def test_remove_button_builds_a_smaller_model_and_times_both(trained):
    model, val = trained
    panel = PruningPanel(model, val, value=0.5, latency_batch=16, latency_repeats=3)
    masked_gates = gates_of(model)
    panel.remove_button.click()
    r = panel.removal_
    assert r is not None and panel.pruned_model_ is not None
    assert head_counts(panel.pruned_model_) == [4 - len(panel.heads.get(i, [])) for i in range(2)]
    assert r["params_after"] < r["params_before"] == sum(p.numel() for p in model.parameters())
    assert r["latency_before_ms"] > 0 and r["latency_after_ms"] > 0 and r["repeats"] == 3 and r["threads"] == 1
    assert 0 < r["flops_cut"] < r["attention_flops_cut"] == pytest.approx(0.5)
    assert r["accuracy_after"] == pytest.approx(panel.accuracy_)  # removal == masking
    assert "latency (ms)" in panel.removal_html.value and "cost model" in panel.removal_html.value
    assert head_counts(model) == [4, 4] and gates_of(model) == masked_gates  # the live model keeps its mask
    panel.restore()


def test_remove_with_nothing_selected_says_so(trained):
    model, val = trained
    panel = PruningPanel(model, val, value=0.0)
    assert panel.remove() is None and "nothing selected" in panel.status.value


def test_headless_show_renders_static_and_returns(trained, monkeypatch):
    monkeypatch.setenv("DSOPT_FRONTEND", "0")
    assert not has_frontend()
    model, val = trained
    shown = []
    monkeypatch.setattr("dsopt_widgets.base.show_static", lambda fig: shown.append(fig))
    panel = PruningPanel(model, val, value=0.25).show()
    assert len(shown) == 1 and len(shown[0].data) == 4  # heatmap, pruned markers, accuracy curve, setting
    xs, accs = list(shown[0].data[2].x), list(shown[0].data[2].y)
    assert xs[0] == 0 and accs[0] == panel.baseline_accuracy and max(xs) == 0.75  # last heads protected
    times = panel.measure_updates([0.5, 0.25, 0.5])
    assert len(times["evaluated"]) == 2 and len(times["memoised"]) == 1 and panel.heads == panel.selection()
    panel.restore()
