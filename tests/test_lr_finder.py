"""The learning-rate range test: on a real small problem, restores everything, stops on divergence."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from dsopt import seed_everything
from dsopt.lr.range_test import RangeTestResult, lr_range_test, suggest_lrs
from dsopt.util.validation import ParameterError


def digits(seed=0, batch_size=64, n=None):
    g = seed_everything(seed)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)[:n]
    y = torch.tensor(y, dtype=torch.long)[:n]
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True, generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(64, 10))
    return model, loader


def snapshot(model, opt):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [m.training for m in model.modules()],
        [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
        {id_: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
         for id_, s in opt.state_dict()["state"].items()},
    )


def assert_same(a, b):
    (wa, ga, ma, pa, sa), (wb, gb, mb, pb, sb) = a, b
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert all((x is None and y is None) or torch.equal(x, y) for x, y in zip(ga, gb))
    assert ma == mb and pa == pb
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].keys() == sb[k].keys()
        for name in sa[k]:
            x, y = sa[k][name], sb[k][name]
            assert torch.equal(x, y) if torch.is_tensor(x) else x == y


def used_adam(model, loader, steps=3):
    """An AdamW with real state (moments, step counts) and gradients left on the parameters."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for (x, y), _ in zip(loader, range(steps)):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return opt


def test_range_test_on_digits_suggests_rates_inside_the_sweep_and_restores_everything():
    model, loader = digits(seed=0)
    opt = used_adam(model, loader)
    model[2].eval()  # a submodule in its own mode must come back that way
    before = snapshot(model, opt)
    # end_lr=100 (not 10): AdamW on this MLP then blows up for every seed tried, not just most.
    r = lr_range_test(model, opt, torch.nn.functional.cross_entropy, loader, end_lr=100.0, progress=False)
    assert_same(before, snapshot(model, opt))

    assert isinstance(r, RangeTestResult) and len(r.lrs) == len(r.losses) == len(r.smoothed)
    assert r.lrs[0] == pytest.approx(1e-7) and np.allclose(np.diff(np.log(r.lrs)), math.log(1e9) / 99)
    assert r.stopped_early and len(r.lrs) < 100
    assert r.smoothed[-1] > 4.0 * r.smoothed.min()
    assert set(r.suggestions) == {"steepest", "min_div_10", "valley"}
    for name, lr in r.suggestions.items():
        assert r.lrs[0] <= lr <= r.lrs[-1], name
    divergence = r.lrs[-1]
    assert r.suggestions["steepest"] < divergence
    assert r.suggestions["valley"] < r.lrs[int(np.argmin(r.smoothed))]  # on the way down, not past the minimum
    # The loss really falls over the sweep: the smoothed minimum is well below the start.
    assert r.smoothed.min() < 0.8 * r.smoothed[0]


def test_smoothing_is_a_bias_corrected_ema():
    model, loader = digits(seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = lr_range_test(model, opt, torch.nn.functional.cross_entropy, loader, start_lr=1e-4, end_lr=1e-2,
                      num_iters=30, smooth=0.1, progress=False)
    avg, expected = 0.0, []
    for i, loss in enumerate(r.losses):
        avg = 0.9 * avg + 0.1 * loss
        expected.append(avg / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(r.smoothed, expected, rtol=1e-12)
    assert r.smoothed[0] == pytest.approx(r.losses[0], rel=1e-15) and not r.stopped_early and len(r.lrs) == 30
    assert r.lrs[-1] == pytest.approx(1e-2)


def test_divergence_stops_early():
    """Plain SGD on least squares diverges once lr > 2 / lambda_max: the sweep must stop there."""
    torch.manual_seed(0)
    X = torch.randn(256, 8) * 3.0
    y = X @ torch.randn(8, 1)
    loader = DataLoader(TensorDataset(X, y), batch_size=256)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = snapshot(model, opt)
    r = lr_range_test(model, opt, torch.nn.functional.mse_loss, loader, start_lr=1e-5, end_lr=10.0,
                      num_iters=200, progress=False)
    assert r.stopped_early and len(r.lrs) < 200
    lam_max = float(torch.linalg.eigvalsh(2 * X.T @ X / X.shape[0]).max())
    assert r.lrs[-1] > 2 / lam_max  # it stopped past the stability limit ...
    assert r.lrs[-1] < 100 * (2 / lam_max)  # ... but not long after
    assert r.suggestions["steepest"] < r.lrs[-1]
    assert_same(before, snapshot(model, opt))


def test_non_finite_loss_stops_and_restores():
    model, loader = digits(seed=2, n=256)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def loss_fn(out, y):
        calls.append(1)
        loss = torch.nn.functional.cross_entropy(out, y)
        return loss * float("nan") if len(calls) == 12 else loss

    before = snapshot(model, opt)
    r = lr_range_test(model, opt, loss_fn, loader, num_iters=50, progress=False)
    assert r.stopped_early and len(r.lrs) == 11 and np.all(np.isfinite(r.losses))
    assert_same(before, snapshot(model, opt))


def test_restores_on_exception():
    model, loader = digits(seed=3)
    opt = used_adam(model, loader)
    model.eval()
    before = snapshot(model, opt)
    calls = []

    def loss_fn(out, y):
        calls.append(1)
        if len(calls) == 7:
            raise RuntimeError("boom")
        return torch.nn.functional.cross_entropy(out, y)

    with pytest.raises(RuntimeError, match="boom"):
        lr_range_test(model, opt, loss_fn, loader, progress=False)
    assert_same(before, snapshot(model, opt))
    assert not model.training


def test_short_loader_cycles_and_dict_inputs():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X[:96] / 16.0, dtype=torch.float32)
    y = torch.tensor(y[:96])

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(64, 10)

        def forward(self, pixels, scale=1.0):
            return self.lin(pixels * scale)

    batches = [({"pixels": X[i:i + 32], "scale": 1.0}, y[i:i + 32]) for i in range(0, 96, 32)]  # 3 batches
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    r = lr_range_test(net, opt, torch.nn.functional.cross_entropy, batches, start_lr=1e-3, end_lr=0.3,
                      num_iters=20, progress=False)
    assert len(r.lrs) == 20 and not r.stopped_early
    tuple_batches = [((xb["pixels"],), yb) for xb, yb in batches]  # tuple inputs: model(*inputs)
    r2 = lr_range_test(net, opt, torch.nn.functional.cross_entropy, tuple_batches, start_lr=1e-3, end_lr=0.3,
                       num_iters=20, progress=False)
    np.testing.assert_allclose(r2.losses, r.losses, rtol=1e-6)  # same model state, same batches
    with pytest.raises(ParameterError, match="no batches"):
        lr_range_test(net, opt, torch.nn.functional.cross_entropy, [], progress=False)


@pytest.mark.parametrize("name, value", [
    ("start_lr", 0.0), ("start_lr", -1e-3), ("end_lr", 1e-8), ("num_iters", 1), ("num_iters", 10.5),
    ("smooth", 0.0), ("smooth", 1.5), ("diverge_factor", 1.0),
])
def test_arguments_are_validated(name, value):
    model, loader = digits(n=64)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ParameterError) as e:
        lr_range_test(model, opt, torch.nn.functional.cross_entropy, loader, progress=False, **{name: value})
    assert e.value.name == name and name in str(e.value)


def test_suggestions_on_a_known_curve():
    """A smooth S-shaped curve falling fastest at lr = 1e-2, turning up again beyond 0.3."""
    lrs = np.logspace(-6, 1, 141)
    x = np.log10(lrs)
    loss = 2.0 - np.tanh(x + 2.0) + 0.6 * np.clip(x - math.log10(0.3), 0, None) ** 2
    s = suggest_lrs(lrs, loss)
    assert s["steepest"] == pytest.approx(1e-2, rel=0.13)
    assert 0.3 < lrs[np.argmin(loss)] < 0.6 and s["min_div_10"] == lrs[np.argmin(loss)] / 10
    assert 1e-5 < s["valley"] < 0.3
    with pytest.raises(ParameterError):
        suggest_lrs(lrs, loss[:-1])


def test_figure_marks_each_suggestion_on_a_log_axis():
    lrs = np.logspace(-5, 0, 60)
    smoothed = 2.0 - np.tanh(np.log10(lrs) + 2.5)
    r = RangeTestResult(lrs, smoothed + 0.01, smoothed, suggest_lrs(lrs, smoothed), stopped_early=True)
    from dsopt_widgets.lr_restarts_figures import range_test_figure

    fig = range_test_figure(r)
    assert isinstance(fig, go.Figure) and fig.layout.xaxis.type == "log"
    assert len(fig.data) == 2 and len(fig.layout.shapes) == 3
    assert sorted(s.x0 for s in fig.layout.shapes) == sorted(r.suggestions.values())
    # plotly puts annotations on log axes in log10 units
    assert sorted(a.x for a in fig.layout.annotations) == pytest.approx(sorted(math.log10(v) for v in r.suggestions.values()))
    assert all(any(name in a.text for a in fig.layout.annotations) for name in r.suggestions)
