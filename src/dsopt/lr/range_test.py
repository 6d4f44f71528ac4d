"""The learning-rate range test (Smith 2017; popularised by fastai's ``lr_find``).

Train for ``num_iters`` mini-batches while the learning rate grows exponentially from ``start_lr``
to ``end_lr``, record the loss at each rate, and read a sensible rate off the curve. Before a
schedule's ``base_lr`` is compared across recipes (chapter 01), it should come from a test like this
rather than from an article.

The sweep runs through the :class:`~dsopt.core.trainer.Trainer` with a :class:`RangeTestCallback`
(as fastai's ``lr_find`` runs its Learner with an ``LRFinder`` callback): one training loop in the
library, not two. The test is a *probe*: it must leave nothing behind. The model's and the optimizer's state dicts
are deep-copied before the first step and loaded back afterwards (also when the test fails), along
with the gradients and each module's train/eval mode. It does not restore random-number
generators: dropout and a shuffling loader consume random numbers, so seed after the test if a run
must be reproducible.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch

from dsopt.core.callbacks import Callback
from dsopt.core.modes import module_mode
from dsopt.core.trainer import Trainer
from dsopt.util.validation import ParameterError, check_number

__all__ = ["RangeTestCallback", "RangeTestResult", "lr_range_test", "suggest_lrs"]


@dataclass
class RangeTestResult:
    """The outcome of :func:`lr_range_test`.

    ``lrs[i]`` is the rate of step ``i``; ``losses[i]`` the raw loss of that step's batch (measured
    before the update, as fastai and torch-lr-finder do); ``smoothed[i]`` its bias-corrected EMA.
    ``suggestions`` maps ``steepest``, ``min_div_10`` and ``valley`` to a rate (see
    :func:`suggest_lrs`); ``stopped_early`` says the loss diverged (or became non-finite) before
    ``num_iters`` steps.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestions: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


def _trim(n: int) -> slice:
    """The part of the curve suggestions look at: drop the first n//10 and last min(5, n//10) points.

    fastai's convention: the start is flat noise, the end is the blow-up. Short curves keep all.
    """
    skip_start, skip_end = n // 10, min(5, n // 10)
    if n - skip_start - skip_end < 3:
        return slice(0, n)
    return slice(skip_start, n - skip_end)


def _valley_index(losses: np.ndarray) -> int:
    """fastai's valley rule on a (smoothed) loss curve; returns an index into ``losses``.

    The "valley" is the longest strictly decreasing subsequence of the curve; with ``end`` the first
    index where it can end and ``L`` its length, fastai takes ``start = end - L`` and picks
    ``start + int(L/3) + int(L/6)`` -- halfway along, i.e. the middle of the valley's middle third,
    where the loss falls steadily and is still well away from the minimum.
    """
    n = len(losses)
    lds = np.ones(n, dtype=np.int64)  # length of the longest decreasing run ending at i
    for i in range(1, n):
        higher = losses[:i] > losses[i]
        if higher.any():
            lds[i] = lds[:i][higher].max() + 1
    end = int(np.argmax(lds))
    start = end - int(lds[end])
    idx = start + int((end - start) / 3) + int((end - start) / 6)
    return min(max(idx, 0), n - 1)


def suggest_lrs(lrs: Any, smoothed: Any) -> dict[str, float]:
    """Suggested rates from a range-test curve, computed against log10(lr).

    * ``steepest``: where the smoothed loss falls fastest per decade (most negative
      ``d loss / d log10 lr``), searched up to the smoothed minimum only -- past it the loss is
      unstable, and a collapse back down after a spike can be steeper than the real descent;
    * ``min_div_10``: the rate at the smoothed minimum, divided by 10 (fastai's ``minimum``; held
      inside the swept range);
    * ``valley``: fastai's valley rule (:func:`_valley_index`), its default since 2021.

    All three ignore the first 10 % and the last few points (see :func:`_trim`).
    """
    lrs = np.asarray(lrs, dtype=np.float64)
    smoothed = np.asarray(smoothed, dtype=np.float64)
    if lrs.shape != smoothed.shape or lrs.ndim != 1 or len(lrs) < 2:
        raise ParameterError("lrs", f"lrs and smoothed must be 1-D of the same length >= 2; got {lrs.shape} and {smoothed.shape}")
    window = _trim(len(lrs))
    x, y = np.log10(lrs[window]), smoothed[window]
    slope = np.gradient(y, x)
    lowest = int(np.argmin(y))
    return {
        "steepest": float(lrs[window][int(np.argmin(slope[: lowest + 1]))]),
        "min_div_10": float(max(lrs[window][lowest] / 10.0, lrs[0])),
        "valley": float(lrs[window][_valley_index(y)]),
    }


class RangeTestCallback(Callback):
    """The range test as a Trainer callback (fastai's ``LRFinder`` design): the Trainer runs the loop.

    ``batch_start`` sets step i's rate in every parameter group; ``after_backward`` records the loss
    of that step's batch (measured before the update), smooths it and asks the run to stop when it
    diverges; ``batch_end`` stops the run after ``num_iters`` steps.
    """

    order = -50  # the rate is set before any other callback reads it

    def __init__(self, start_lr: float, end_lr: float, num_iters: int, smooth: float, diverge_factor: float):
        self.start_lr, self.ratio, self.num_iters = start_lr, end_lr / start_lr, num_iters
        self.smooth, self.diverge_factor = smooth, diverge_factor
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.diverged = False
        self._avg, self._best, self._lr = 0.0, math.inf, start_lr

    def batch_start(self, state) -> None:
        i = state.step
        self._lr = self.start_lr * self.ratio ** (i / (self.num_iters - 1))
        for group in state.optimizer.param_groups:
            group["lr"] = self._lr

    def after_backward(self, state) -> None:
        i = state.step
        value = float(state.loss.detach())
        self._avg = (1.0 - self.smooth) * self._avg + self.smooth * value
        smooth_value = self._avg / (1.0 - (1.0 - self.smooth) ** (i + 1))
        self.lrs.append(self._lr)
        self.losses.append(value)
        self.smoothed.append(smooth_value)
        self._best = min(self._best, smooth_value)
        if i > 0 and smooth_value > self.diverge_factor * self._best:
            self.diverged = True
            state.controls.stop()  # the probe is restored afterwards, so this last update does not matter

    def batch_end(self, state) -> None:
        if state.step >= self.num_iters:
            state.controls.stop()


def lr_range_test(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    loader: Iterable,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iters: int = 100,
    smooth: float = 0.05,
    diverge_factor: float = 4.0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> RangeTestResult:
    """Run an exponential learning-rate sweep and return the loss curve with suggestions.

    Step ``i`` uses ``lr_i = start_lr * (end_lr / start_lr) ** (i / (num_iters - 1))`` in every
    parameter group. Batches are ``(inputs, targets)`` as in the Trainer (inputs a Tensor, tuple or
    dict) and the loader is cycled if it is shorter than ``num_iters``. The loss is smoothed with an
    exponential moving average ``avg = (1 - smooth) * avg + smooth * loss``, bias-corrected by
    ``1 - (1 - smooth) ** (i + 1)`` so early points are not pulled towards zero. The sweep stops
    when the smoothed loss exceeds ``diverge_factor`` times its best value so far (losses are
    assumed positive) or the loss is not finite.

    ``device``: where batches are moved; the model must already be there (moving it would strand
    the optimizer's state). Default: the device of the model's first parameter.

    Model weights and buffers, gradients, train/eval modes and the optimizer's state and rates are
    restored afterwards, also if an exception interrupts the test.
    """
    start_lr = float(check_number("start_lr", start_lr, low=0.0, low_inclusive=False))
    end_lr = float(check_number("end_lr", end_lr, low=start_lr, low_inclusive=False))
    num_iters = check_number("num_iters", num_iters, low=2, high=100_000, integer=True)
    smooth = float(check_number("smooth", smooth, low=0.0, high=1.0, low_inclusive=False))
    diverge_factor = float(check_number("diverge_factor", diverge_factor, low=1.0, low_inclusive=False))
    if not isinstance(model, torch.nn.Module):
        raise ParameterError("model", f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ParameterError("optimizer", f"optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)

    try:
        n_batches = len(loader)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ParameterError("loader", "loader must have a length (batches per pass); got "
                                       f"{type(loader).__name__}") from exc
    if n_batches < 1:
        raise ParameterError("loader", "loader yielded no batches; check the dataset size and batch_size")

    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
    probe = RangeTestCallback(start_lr, end_lr, num_iters, smooth, diverge_factor)
    stopped = False
    try:
        with module_mode(model, training=True):  # each module's own mode comes back afterwards
            trainer = Trainer(model, optimizer, loss_fn, loader, max_epochs=math.ceil(num_iters / n_batches),
                              callbacks=[probe], device=device, progress=progress)
            try:
                trainer.fit()
            except FloatingPointError:  # a non-finite loss: the sweep ends before recording it
                stopped = True
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        for p, g in zip(model.parameters(), saved_grads):
            p.grad = g

    stopped = stopped or probe.diverged
    lrs = probe.lrs
    result = RangeTestResult(np.array(lrs), np.array(probe.losses), np.array(probe.smoothed), stopped_early=stopped)
    if len(lrs) >= 2:
        result.suggestions = suggest_lrs(result.lrs, result.smoothed)
    return result
