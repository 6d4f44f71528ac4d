"""Weighting panel logic without a browser: slider -> curves; Apply -> Controls -> loss switch; refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dsopt import Callback, Trainer, replay_callback, seed_everything
from dsopt.data.tasks import make_task
from dsopt.metrics.per_class import ClassMetricsCallback
from dsopt.util.validation import ParameterError
from dsopt.weighting import SCHEMES, WeightedLoss, WeightingCallback, focal_loss
from dsopt_widgets import WeightingPanel, has_frontend

FOCAL = list(SCHEMES).index("focal")


@pytest.fixture(scope="module")
def task():
    return make_task("credit_card_default", scale="tiny", seed=0, imbalance_ratio=20)


def small_trainer(task, epochs=2, extra=(), schedule=None):
    seed_everything(0)
    task.train_loader.generator.manual_seed(0)
    model = task.make_model()
    loss = WeightedLoss(class_counts=task.class_counts)
    cb = WeightingCallback(loss, task.class_counts, scheme="article")
    cbs = [cb, ClassMetricsCallback(task.val_loader), *extra] + ([replay_callback(schedule)] if schedule else [])
    tr = Trainer(model, torch.optim.AdamW(model.parameters(), lr=1e-3), loss, task.train_loader, None,
                 max_epochs=epochs, progress=False, callbacks=cbs)
    return tr, cb, loss


def test_slider_redraws_curves_without_touching_the_run(task):
    tr, _, _ = small_trainer(task)
    panel = WeightingPanel(tr)
    assert panel.scheme.value == "article" and panel.counts == task.class_counts
    focal = panel.preview.data[4 * FOCAL]  # focal in the overlay: minority sample vs p_t
    assert focal.visible and "focal (gamma=2, alpha=None)" in panel.message.value
    before = np.array(focal.y)
    panel.gamma.value = 1.0
    after = np.array(panel.preview.data[4 * FOCAL].y)
    assert not np.allclose(before, after) and after == pytest.approx((1 - np.linspace(0, 1, 201)) ** 1.0)
    assert "focal (gamma=1, alpha=None)" in panel.message.value
    assert panel.last_update_ms is not None and panel.last_update_ms < 1000
    assert tr.controls.get("gamma") == 2.0 and tr.controls.pending() == {}
    # overlay on request: class-balanced appears, focal goes
    panel.overlay.value = ("class_balanced",)
    vis = [t.visible for t in panel.preview.data]
    assert vis[4 * FOCAL] is False and vis[4 * list(SCHEMES).index("class_balanced")] is True
    assert panel.gamma.disabled and not panel.beta.disabled
    # the logit reading moves the article's confidence curves to the max-logit axis
    panel.confidence.value = "logit"
    art = list(SCHEMES).index("article")
    assert panel.preview.data[4 * art + 2].xaxis == "x3" and min(panel.preview.data[4 * art + 2].x) == -8


def test_apply_switches_the_loss_at_the_next_step(task):
    box, seen = {}, []

    class ApplyAtStep3(Callback):
        def batch_end(self, state):
            if state.step == 3:
                p = box["panel"]
                p.scheme.value = "focal"
                p.gamma.value = 1.5
                p.alpha_on.value = True
                p.alpha.value = 0.25
                assert state.knobs["scheme"] == "article"  # not yet applied
                assert p.apply() == {"scheme": "focal", "gamma": 1.5, "alpha": 0.25}

    class Watch(Callback):
        order = 100

        def batch_end(self, state):
            seen.append((state.step - 1, box["loss"].scheme.name, float(state.loss.detach()), state.outputs.detach(),
                         state.targets))

    tr, cb, loss = small_trainer(task, extra=[ApplyAtStep3(), Watch()], epochs=3)
    panel = WeightingPanel(tr)
    box["panel"], box["loss"] = panel, loss
    tr.fit()
    assert [name for _, name, *_ in seen[:3]] == ["article"] * 3 and {name for _, name, *_ in seen[3:]} == {"focal"}
    step, _, value, outputs, targets = seen[3]  # the first focal step used focal's formula
    assert step == 3 and value == pytest.approx(float(focal_loss(outputs, targets, 1.5, 0.25)), rel=1e-5)
    history = {c.name: (c.step, c.new) for c in tr.controls.history}
    assert history == {"scheme": (3, "focal"), "gamma": (3, 1.5), "alpha": (3, 0.25)}
    assert tr.recorder.series("knob/gamma") == ([3], [1.5]) and tr.recorder.series("knob/alpha") == ([3], [0.25])
    assert cb.switches == [(0, "article", {"confidence": "probability"}), (3, "focal", {"gamma": 1.5, "alpha": 0.25})]
    exported = panel.export()
    assert exported["control_schedule"] == [[3, "scheme", "focal"], [3, "gamma", 1.5], [3, "alpha", 0.25]]
    assert "control_schedule" in panel.export_area.value
    # the export replays headless: the same switch at the same step
    tr2, cb2, _ = small_trainer(task, epochs=3, schedule=exported["control_schedule"])
    tr2.fit()
    assert cb2.switches == cb.switches
    assert tr2.recorder.series("val_pr_auc") == tr.recorder.series("val_pr_auc")


def test_invalid_values_show_a_message_and_are_not_applied(task):
    tr, _, _ = small_trainer(task)
    panel = WeightingPanel(tr)
    panel.scheme.value = "class_balanced"
    panel.beta.value = 1.0
    assert "beta must be a number in [0.0, 1.0); got 1.0" in panel.message.value and "color:#b00020" in panel.message.value
    assert panel.apply() is None and "not applied" in panel.message.value
    assert tr.controls.pending() == {} and tr.controls.get("scheme") == "article"
    panel.beta.value = 0.99
    assert "class_balanced (beta=0.99)" in panel.message.value
    assert panel.apply() == {"scheme": "class_balanced", "beta": 0.99}
    assert "queued" in panel.message.value
    with pytest.raises(ParameterError, match="no WeightingCallback"):
        WeightingPanel(Trainer(torch.nn.Linear(2, 2), torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1),
                               torch.nn.functional.cross_entropy, task.train_loader, max_epochs=1))
    preview_only = WeightingPanel(counts=[90, 10], values={"scheme": "focal"})
    assert preview_only.apply() is None and "no run is attached" in preview_only.message.value


def test_live_refresh_reads_per_class_metrics_by_cursor(task):
    tr, _, _ = small_trainer(task, epochs=2)
    panel = WeightingPanel(tr)
    tr.fit()
    panel.refresh()
    by_name = {t.name: t for t in panel.live.data}
    assert len(by_name["recall class 1"].y) == 2 and len(by_name["PR-AUC"].y) == 2
    assert list(by_name["weight class 1"].y) == tr.recorder.series("weight_mean/class_1")[1]
    panel.refresh()  # nothing new: no duplicates
    assert len(by_name["PR-AUC"].y) == 2


def test_headless_show_renders_static_and_returns(task, monkeypatch):
    monkeypatch.setenv("DSOPT_FRONTEND", "0")
    assert not has_frontend()
    tr, _, _ = small_trainer(task, epochs=1)
    tr.fit()
    shown = []
    monkeypatch.setattr("dsopt_widgets.base.show_static", lambda fig: shown.append(fig))
    WeightingPanel(tr).show()
    assert len(shown) == 1
    names = [t.name for t in shown[0].data]
    assert "PR-AUC" in names and "article" in names and "article: majority (class 0)" in names
