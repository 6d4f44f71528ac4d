"""Loss-weighting schemes (chapter 04): hand-computed values, ranges, focal parity, live switching."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from dsopt import Callback, Recorder, Trainer, seed_everything
from dsopt.util.validation import ParameterError
from dsopt.weighting import (
    SCHEMES,
    WeightedLoss,
    WeightingCallback,
    article_weight_range,
    article_weights,
    binary_focal_loss,
    class_balanced_class_weights,
    class_balanced_weights,
    focal_loss,
    focal_weights,
    inverse_frequency_class_weights,
    inverse_frequency_weights,
    make_scheme,
    weight_curve,
)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def t(*rows, dtype=torch.float64):
    return torch.tensor(rows, dtype=dtype)


# ----------------------------------------------------------------------------- article rule
def test_article_hand_values_both_readings():
    logits = t([0.0, 0.0], [math.log(3.0), 0.0], [2.0, -1.0])
    y = torch.tensor([0, 1, 1])
    w = article_weights(logits, y)  # max softmax probs: 0.5, 0.75, e^2/(e^2+e^-1)
    p3 = math.exp(2) / (math.exp(2) + math.exp(-1))
    expected = [1 + 0.5 * (1 - sig(0.5)), 1 + 0.5 * (1 - sig(0.75)), 1 + 0.5 * (1 - sig(p3))]
    assert w.tolist() == pytest.approx(expected, abs=1e-12)
    assert w[0].item() == pytest.approx(1.18877033, abs=1e-8)
    w = article_weights(logits, y, confidence="logit")  # max logits: 0, log 3, 2
    assert w.tolist() == pytest.approx([1.25, 1 + 0.5 * (1 - sig(math.log(3))), 1 + 0.5 * (1 - sig(2.0))], abs=1e-12)
    assert w[1].item() == pytest.approx(1.125, abs=1e-12)  # sigmoid(log 3) = 3/4


def test_article_weight_is_label_agnostic():
    logits = t([3.0, -1.0], [3.0, -1.0])
    w = article_weights(logits, torch.tensor([0, 1]))
    assert w[0] == w[1]  # a confidently wrong prediction gets the same (smallest) weight as a right one


def test_article_ranges_exact_and_respected():
    lo2, hi2 = article_weight_range("probability", 2)
    assert lo2 == pytest.approx(1.1344707107, abs=1e-9) and hi2 == pytest.approx(1.1887703344, abs=1e-9)
    lo, hi = article_weight_range("probability", 1000)
    assert lo == lo2 and 1.2498 < hi < 1.25
    assert 1.13 <= lo2 and hi <= 1.25
    assert article_weight_range("logit", 10) == (1.0, 1.5)
    gen = torch.Generator().manual_seed(0)
    for k in (2, 5, 10):
        logits = torch.randn(2000, k, generator=gen, dtype=torch.float64) * 4
        y = torch.zeros(2000, dtype=torch.long)
        lo, hi = article_weight_range("probability", k)
        w = article_weights(logits, y)
        assert lo - 1e-12 <= w.min() and w.max() <= hi + 1e-12
        # both ends are reached: uniform logits give the top, a saturated softmax the bottom
        ends = article_weights(torch.cat([torch.zeros(1, k), torch.tensor([[60.0] + [0.0] * (k - 1)])]).double(),
                               torch.zeros(2, dtype=torch.long))
        assert ends.tolist() == pytest.approx([hi, lo], abs=1e-12)
        w = article_weights(logits, y, confidence="logit")
        assert 1.0 < w.min() and w.max() < 1.5
    extreme = article_weights(t([10.0, 0.0], [-10.0, -20.0]), torch.tensor([0, 0]), confidence="logit")
    assert 1.0 < extreme[0] < 1.0001 and 1.4999 < extreme[1] < 1.5


def test_article_detach_and_gradient_direction():
    logits = t([1.0, 0.0], [1.0, 0.0]).requires_grad_()
    y = torch.tensor([0, 1])  # first correct, second wrong; class 0 predicted in both
    ce = F.cross_entropy(logits, y, reduction="none")
    w = article_weights(logits, y)
    assert not w.requires_grad
    (g_det,) = torch.autograd.grad((w * ce).sum(), logits, retain_graph=True)
    (g_ce,) = torch.autograd.grad(ce.sum(), logits)
    assert torch.allclose(g_det, w[:, None] * g_ce)  # detached: a pure re-weighting
    for reading in ("probability", "logit"):
        ce = F.cross_entropy(logits, y, reduction="none")
        w = article_weights(logits, y, confidence=reading, detach=False)
        (g_full,) = torch.autograd.grad((w * ce).sum(), logits)
        extra = g_full - g_det if reading == "probability" else g_full - article_weights(
            logits, y, confidence="logit")[:, None] * g_ce
        # a descent step -extra raises the predicted class (0) against the other, for the wrong sample too
        assert (-extra[:, 0] + extra[:, 1] > 0).all()


# ----------------------------------------------------------------------------- focal
def published_focal(x: float, target: int, gamma: float, alpha: float | None) -> float:
    """FL = -a_t (1 - p_t)^gamma log p_t (Lin et al. 2017), written out independently."""
    p = 1.0 / (1.0 + math.exp(-x))
    p_t = p if target == 1 else 1.0 - p
    a_t = 1.0 if alpha is None else (alpha if target == 1 else 1.0 - alpha)
    return -a_t * (1.0 - p_t) ** gamma * math.log(p_t)


@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (0.0, None), (0.5, 0.75), (5.0, None), (1.0, 0.0)])
def test_binary_focal_matches_published_formula(gamma, alpha):
    gen = torch.Generator().manual_seed(1)
    x = torch.empty(500, dtype=torch.float64).uniform_(-8, 8, generator=gen)
    y = torch.randint(0, 2, (500,), generator=gen).double()
    got = binary_focal_loss(x, y, gamma, alpha, reduction="none")
    ref = torch.tensor([published_focal(a, int(b), gamma, alpha) for a, b in zip(x.tolist(), y.tolist())],
                       dtype=torch.float64)
    assert torch.allclose(got, ref, atol=1e-6, rtol=0)
    got32 = binary_focal_loss(x.float(), y.float(), gamma, alpha, reduction="none")
    assert torch.allclose(got32.double(), ref, atol=1e-6, rtol=1e-5)
    assert binary_focal_loss(x, y, gamma, alpha).item() == pytest.approx(ref.mean().item(), abs=1e-6)
    assert binary_focal_loss(x, y, gamma, alpha, reduction="sum").item() == pytest.approx(ref.sum().item(), abs=1e-6)


def test_focal_hand_values():
    ln2 = math.log(2.0)
    # p_t = 0.5: (1 - 0.5)^2 * ln 2
    assert focal_loss(t([0.0, 0.0]), torch.tensor([0]), gamma=2.0).item() == pytest.approx(0.25 * ln2, abs=1e-12)
    # float alpha, C = 2: class 0 gets 1 - alpha
    assert focal_loss(t([0.0, 0.0]), torch.tensor([0]), 2.0, 0.25).item() == pytest.approx(0.75 * 0.25 * ln2, abs=1e-12)
    # binary, logit 0 and target 1: p_t = 0.5, a_t = alpha = 0.25 (torchvision's default)
    zero, one = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    assert binary_focal_loss(zero, one).item() == pytest.approx(0.25 * 0.25 * ln2, abs=1e-12)
    # three classes, p_t = 1/2 from logits [ln 2, 0, 0] -> probs [1/2, 1/4, 1/4]; gamma 1
    v = focal_loss(t([math.log(2.0), 0.0, 0.0]), torch.tensor([0]), gamma=1.0).item()
    assert v == pytest.approx(0.5 * ln2, abs=1e-12)
    v = focal_loss(t([math.log(2.0), 0.0, 0.0]), torch.tensor([1]), gamma=1.0).item()  # p_t = 1/4
    assert v == pytest.approx(0.75 * math.log(4.0), abs=1e-12)


def test_focal_multiclass_gamma0_is_ce_and_alpha_handling():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(64, 5, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, 5, (64,), generator=gen)
    assert torch.allclose(focal_loss(logits, y, gamma=0.0), F.cross_entropy(logits, y), atol=1e-12)
    a = torch.tensor([0.1, 0.2, 0.3, 0.4, 5.0], dtype=torch.float64)
    assert torch.allclose(focal_loss(logits, y, 0.0, a, "none"), a[y] * F.cross_entropy(logits, y, reduction="none"))
    with pytest.raises(ParameterError, match="alpha") as e:
        focal_loss(logits, y, 2.0, 0.25)
    assert e.value.name == "alpha"
    with pytest.raises(ParameterError, match="alpha"):
        focal_loss(logits, y, 2.0, [1.0, 2.0])  # wrong length
    # softmax over [0, z] is sigmoid(z): the two-class focal loss equals the binary one
    z = torch.randn(64, generator=gen, dtype=torch.float64) * 3
    yb = torch.randint(0, 2, (64,), generator=gen)
    two = focal_loss(torch.stack([torch.zeros_like(z), z], 1), yb, 2.0, 0.25, "none")
    assert torch.allclose(two, binary_focal_loss(z, yb.double(), 2.0, 0.25, "none"), atol=1e-12)


def test_focal_weights_times_ce_is_focal_including_gradient():
    gen = torch.Generator().manual_seed(3)
    logits = (torch.randn(32, 4, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    y = torch.randint(0, 4, (32,), generator=gen)
    fl = focal_loss(logits, y, 2.0, reduction="sum")
    wce = (focal_weights(logits, y, gamma=2.0) * F.cross_entropy(logits, y, reduction="none")).sum()
    assert fl.item() == pytest.approx(wce.item(), abs=1e-12)
    (g1,) = torch.autograd.grad(fl, logits)
    (g2,) = torch.autograd.grad(wce, logits)
    assert torch.allclose(g1, g2)


def test_focal_saturated_fractional_gamma_has_finite_gradient():
    logits = torch.tensor([[100.0, 0.0], [0.0, 0.0]], requires_grad=True)
    focal_loss(logits, torch.tensor([0, 0]), gamma=0.5).backward()
    assert torch.isfinite(logits.grad).all()
    x = torch.tensor([100.0, -100.0], requires_grad=True)
    binary_focal_loss(x, torch.tensor([1.0, 0.0]), gamma=0.3).backward()
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------- class-level weights
def test_class_balanced_hand_values_and_limits():
    counts = [10, 100]
    raw = [(1 - 0.9) / (1 - 0.9 ** 10), (1 - 0.9) / (1 - 0.9 ** 100)]
    expected = [2 * r / sum(raw) for r in raw]
    assert class_balanced_class_weights(counts, 0.9).tolist() == pytest.approx(expected, abs=1e-12)
    assert class_balanced_class_weights([3, 7, 500], 0.0).tolist() == pytest.approx([1, 1, 1], abs=1e-15)
    w = class_balanced_class_weights([3, 7, 500], 0.5)
    assert w.sum() == pytest.approx(3.0, abs=1e-12)
    inv = inverse_frequency_class_weights([3, 7, 500])
    near1 = class_balanced_class_weights([3, 7, 500], 1 - 1e-9)
    assert (near1 / near1.sum()).tolist() == pytest.approx((inv / inv.sum()).tolist(), rel=1e-6)
    far = class_balanced_class_weights([3, 7, 500], 0.99)
    assert not np.allclose(far / far.sum(), inv / inv.sum(), rtol=1e-3)


def test_inverse_frequency_hand_values_and_per_sample():
    assert inverse_frequency_class_weights([10, 100]).tolist() == pytest.approx([5.5, 0.55], abs=1e-12)
    assert inverse_frequency_class_weights([4, 4, 4]).tolist() == [1.0, 1.0, 1.0]
    logits = torch.zeros(3, 2, dtype=torch.float64)
    y = torch.tensor([1, 0, 1])
    assert inverse_frequency_weights(logits, y, [10, 100]).tolist() == pytest.approx([0.55, 5.5, 0.55])
    cb = class_balanced_class_weights([10, 100], 0.9)
    assert class_balanced_weights(logits, y, [10, 100], beta=0.9).tolist() == pytest.approx(cb[[1, 0, 1]].tolist())


def test_class_weight_validation_names_parameter():
    for bad, name in (([10, 0], "counts"), ([5], "counts"), (None, "counts")):
        with pytest.raises(ParameterError) as e:
            inverse_frequency_class_weights(bad)
        assert e.value.name == name and "counts" in str(e.value)
    with pytest.raises(ParameterError, match=r"beta must be a number in \[0\.0, 1\.0\); got 1\.0"):
        class_balanced_class_weights([1, 2], 1.0)
    with pytest.raises(ParameterError, match="counts must have one entry per class"):
        inverse_frequency_weights(torch.zeros(2, 3), torch.tensor([0, 1]), [1, 2])


# ----------------------------------------------------------------------------- registry
def test_registry_and_make_scheme_validation():
    assert list(SCHEMES) == ["none", "article", "focal", "class_balanced", "inverse_frequency"]
    s = make_scheme("focal", gamma=1)
    assert s.params == {"gamma": 1.0, "alpha": None}
    assert make_scheme("article").params == {"confidence": "probability", "detach": True}
    with pytest.raises(ParameterError, match=r"gamma must be a number in \[0\.0, 10\.0\]; got -1") as e:
        make_scheme("focal", gamma=-1)
    assert e.value.name == "gamma"
    with pytest.raises(ParameterError, match="beta is not a parameter of scheme 'focal'; allowed: gamma, alpha"):
        make_scheme("focal", beta=0.9)
    with pytest.raises(ParameterError, match="scheme must be one of") as e:
        make_scheme("smote")
    assert e.value.name == "scheme"
    with pytest.raises(ParameterError, match="confidence must be one of 'probability', 'logit'"):
        make_scheme("article", confidence="prob")
    with pytest.raises(ParameterError, match="alpha must be a number in"):
        make_scheme("focal", alpha=1.5)


# ----------------------------------------------------------------------------- WeightedLoss
def test_weighted_loss_switching_and_normalisation():
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (16,), generator=gen)
    ce = F.cross_entropy(logits, y, reduction="none")
    wl = WeightedLoss(class_counts=[90, 10])
    assert wl(logits, y).item() == pytest.approx(ce.mean().item(), abs=1e-12)
    assert wl.last_weights.tolist() == [1.0] * 16
    wl.scheme = "article"
    w = article_weights(logits, y)
    assert wl(logits, y).item() == pytest.approx((w * ce).mean().item(), abs=1e-12)  # mean, not / sum(w)
    assert torch.equal(wl.last_weights, w)
    wl.scheme = make_scheme("inverse_frequency")
    inv = torch.tensor([100 / 180, 100 / 20], dtype=torch.float64)[y]
    assert wl(logits, y).item() == pytest.approx((inv * ce).mean().item(), abs=1e-12)
    wl.scheme = make_scheme("focal", gamma=2.0, alpha=0.25)
    assert wl(logits, y).item() == pytest.approx(focal_loss(logits, y, 2.0, 0.25).item(), abs=1e-12)
    assert not wl.last_weights.requires_grad
    with pytest.raises(ParameterError, match="class_counts"):
        WeightedLoss().scheme = "class_balanced"
    assert WeightedLoss("focal", gamma=3.0).scheme.params["gamma"] == 3.0


# ----------------------------------------------------------------------------- curves
def test_weight_curve():
    p = np.linspace(0.0, 1.0, 11)
    assert weight_curve("none", None, p, 2)["weight"].tolist() == [1.0] * 11
    c = weight_curve("focal", {"gamma": 2.0}, p, 3)
    assert c["weight"] == pytest.approx((1 - p) ** 2, abs=1e-9)
    c = weight_curve("article", {}, p, 2)
    lo, hi = article_weight_range("probability", 2)
    assert c["weight"][5] == pytest.approx(hi) and c["weight"][10] == pytest.approx(lo)
    assert c["weight"][0] == pytest.approx(lo)  # p_t = 0 with two classes: confidently wrong, smallest weight
    assert c["confidence"][0] == 0.5 and c["weight_vs_confidence"][-1] == pytest.approx(lo)
    c = weight_curve("class_balanced", {"beta": 0.9}, p, 2, counts=[10, 100], target_class=0)
    assert c["weight"] == pytest.approx([class_balanced_class_weights([10, 100], 0.9)[0]] * 11)
    with pytest.raises(ParameterError, match="p_grid"):
        weight_curve("none", None, [0.5, 1.5], 2)


# ----------------------------------------------------------------------------- callback
def test_callback_statistics_with_manual_state():
    wl = WeightedLoss(class_counts=[3, 1])
    cb = WeightingCallback(wl, [3, 1], scheme="inverse_frequency")
    state = SimpleNamespace(knobs={k.name: k.default for k in cb.knobs()}, step=0, epoch=0, recorder=Recorder())
    cb.fit_start(state)
    cb.epoch_start(state)
    for targets in (torch.tensor([0, 0, 1]), torch.tensor([0, 1])):
        state.targets = targets
        cb.batch_start(state)
        wl(torch.zeros(len(targets), 2), targets)
        state.step += 1
        cb.batch_end(state)
    saved = cb.state_dict()  # mid-epoch checkpoint: the partial statistics travel with it
    cb2 = WeightingCallback(WeightedLoss(), [3, 1], scheme="inverse_frequency")
    cb2.load_state_dict(saved)
    cb.epoch_end(state)
    cb2.epoch_end(SimpleNamespace(step=state.step, epoch=0, recorder=(r2 := Recorder())))
    per_epoch = [row for row in state.recorder.rows if not row.name.startswith("weight_batch/")]
    assert r2.rows == per_epoch and cb2.switches == cb.switches
    r = state.recorder
    assert r.series("weight_batch/class_1") == ([0, 1], [pytest.approx(2.0), pytest.approx(2.0)])  # per batch
    assert r.last("weight_mean/class_0") == pytest.approx(4 / 6) and r.last("weight_mean/class_1") == pytest.approx(2.0)
    assert r.last("weight_q90/class_1") == pytest.approx(2.0) and r.series("weight_q50/class_0") == ([2], [pytest.approx(4 / 6)])
    assert cb.switches == [(0, "inverse_frequency", {})]


def test_callback_switches_scheme_live_in_trainer():
    seed_everything(0)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 4, generator=gen)
    y = (X[:, 0] > 1.0).long()  # ~16 % positives
    loader = DataLoader(TensorDataset(X, y), batch_size=50, shuffle=True, generator=gen)
    model = torch.nn.Linear(4, 2)
    wl = WeightedLoss()
    counts = torch.bincount(y, minlength=2)
    cb = WeightingCallback(wl, counts, scheme="none", gamma=1.0)

    class Switch(Callback):
        def batch_end(self, state):
            if state.step == 6:
                state.controls.set("scheme", "focal")

    tr = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), wl, loader, max_epochs=3,
                 callbacks=[cb, Switch()], progress=False, device="cpu")
    assert {"scheme", "gamma", "alpha", "beta", "confidence"} <= set(tr.controls.knobs())
    with pytest.raises(ParameterError, match="gamma"):
        tr.controls.set("gamma", 11)
    rec = tr.fit()
    assert cb.switches == [(0, "none", {}), (6, "focal", {"gamma": 1.0, "alpha": None})]
    assert wl.scheme.name == "focal"
    steps, means = rec.series("weight_mean/class_1")
    assert steps == [4, 8, 12] and means[0] == 1.0 and means[2] < 1.0  # epoch 1 mixes none and focal
    assert rec.series("weight_q10/class_0")[1][2] <= rec.series("weight_q90/class_0")[1][2]
    # per batch, logged at the step the batch started from: plain 1.0 up to step 5, focal (< 1) from step 6 on
    steps, batch_means = rec.series("weight_batch/class_0")
    assert steps == list(range(12)) and set(batch_means[:6]) == {1.0} and max(batch_means[6:]) < 1.0
    with pytest.raises(ParameterError, match="delta is not a weighting knob"):
        WeightingCallback(wl, counts, delta=1)


@pytest.mark.parametrize("name, params", [("none", {}), ("article", {}), ("article", {"confidence": "logit"}),
                                          ("focal", {"gamma": 2.0, "alpha": 0.25}), ("focal", {"gamma": 0.5}),
                                          ("class_balanced", {"beta": 0.99}), ("inverse_frequency", {})])
def test_weighted_loss_fast_paths_match_the_reference(name, params):
    """WeightedLoss.forward's fused paths give the values, gradients and weights of Scheme.per_sample_loss."""
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=gen)
    counts = [50, 30, 5]
    if name == "focal" and "alpha" in params:
        logits, counts = logits[:, :2].contiguous(), [50, 5]
        y = y % 2
    sch = make_scheme(name, **params)
    ref_logits, fast_logits = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ref, ref_w = sch.per_sample_loss(ref_logits, y, counts)
    ref.mean().backward()
    wl = WeightedLoss(sch, class_counts=counts)
    for _ in range(2):  # the second call uses the cached class weights
        fast_logits.grad = None
        fast = wl(fast_logits, y)
        fast.backward()
    assert fast.item() == pytest.approx(ref.mean().item(), abs=1e-12)
    assert torch.allclose(fast_logits.grad, ref_logits.grad, atol=1e-12)
    assert torch.allclose(wl.last_weights, ref_w, atol=1e-12) and not wl.last_weights.requires_grad
    wl.class_counts = np.asarray([10, 10, 10] if logits.shape[1] == 3 else [10, 10], dtype=np.float64)
    if name in ("class_balanced", "inverse_frequency"):  # new counts -> new cached weights
        wl(logits, y)
        assert torch.allclose(wl.last_weights, torch.ones(64, dtype=torch.float64))
