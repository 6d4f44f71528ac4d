"""Learning-rate schedules as pure functions of the (possibly fractional) epoch ``t``.

Why pure functions: torch's schedulers keep hidden counters that ``step()`` advances, so the same
object gives a different curve depending on *how often* it is stepped. The classic pitfall (chapter
01): ``CosineAnnealingWarmRestarts(T_0=5)`` stepped once per *batch* without the fractional epoch
restarts every 5 iterations, not every 5 epochs. Here a schedule is a value ``lr = schedule(t)``; the
caller says what ``t`` is (``state.epoch`` or ``state.epoch_progress``), a whole curve can be drawn
before training (:meth:`Schedule.preview`, vectorised) and a live knob change simply builds a new
schedule.

Building blocks (frozen dataclasses; every one has ``__call__(t)`` and ``preview(ts)``):

* :class:`CosineRestarts` -- SGDR, numerically identical to torch's ``CosineAnnealingWarmRestarts``
  (|difference| <= 1e-12) whether torch is stepped per epoch or per batch with fractional epochs;
* :class:`CycleDecay` -- peak of cycle ``i`` is ``base_lr * decay**i`` (timm's ``cycle_decay``);
* :class:`CycleLimit` -- after ``limit`` cycles the rate stays at ``eta_min`` (timm's ``cycle_limit``);
* :class:`Warmup` -- a linear ramp *prepended* to any schedule (timm's ``warmup_prefix=True``);
* :class:`Constant`, :class:`OneCycleCosine` -- the two baselines a restart schedule is judged against.

:func:`schedule_from_params` builds the usual stack from the flat knobs a panel or papermill uses,
:func:`restart_positions` says where the restarts fall, and :class:`~dsopt.lr.callback.LRScheduleCallback` drives an
optimizer from a schedule inside :class:`~dsopt.core.trainer.Trainer`, rebuilding it when a knob changes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from dsopt.util.validation import ParameterError, check_choice, check_number

__all__ = [
    "Schedule", "CosineRestarts", "CycleDecay", "CycleLimit", "Warmup", "Constant", "OneCycleCosine",
    "PARAM_NAMES", "DEFAULT_PARAMS", "validate_params", "schedule_from_params", "restart_positions",
]

#: Upper bound for any learning rate a schedule produces (a typo guard, not a recommendation).
MAX_LR = 10.0


def _as_times(ts: Any) -> np.ndarray:
    """``ts`` as a float64 array, refusing negative or non-finite times (torch refuses them too)."""
    arr = np.asarray(ts, dtype=np.float64)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise ParameterError("t", f"t (epoch or step) must be a finite number >= 0; got {arr[bad].flat[0]!r}")
    return arr


def _check_base_lr(name: str, value: Any) -> float:
    return float(check_number(name, value, low=0.0, high=MAX_LR, low_inclusive=False))


class Schedule:
    """Base class. Subclasses implement :meth:`preview`; ``__call__`` is the same computation.

    ``__call__`` goes through ``preview`` on a one-element array, so a drawn preview and the values
    a run actually uses agree bit for bit.
    """

    def __call__(self, t: float) -> float:
        """The learning rate at (fractional) epoch or step ``t``."""
        return float(self.preview(np.array([t], dtype=np.float64))[0])

    def preview(self, ts: Any) -> np.ndarray:
        """Learning rates at all times ``ts`` at once (vectorised; same shape as ``ts``)."""
        raise NotImplementedError

    def restart_times(self, horizon: float) -> list[float]:
        """Times ``0 < t < horizon`` at which the rate jumps back up (a warm restart)."""
        return []


# -- SGDR ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017).

    Cycle ``i`` lasts ``T_i = T_0 * T_mult**i`` and starts at ``s_i = T_0 * (T_mult**i - 1) /
    (T_mult - 1)`` (``i * T_0`` when ``T_mult == 1``). Within it, with ``T_cur = t - s_i``::

        lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2

    so each cycle starts at ``base_lr`` and approaches ``eta_min`` just before the next restart.
    T_0=5, T_mult=2 restarts at 5, 15, 35, 75, ...

    Parity with torch: the arithmetic is torch's (same operations in the same order), so values
    match ``CosineAnnealingWarmRestarts`` to ~1e-16. The cycle index, however, is found exactly by
    comparing ``t`` with the integer cycle starts, not with torch's ``int(log(...))``: that float
    log is sometimes a hair below an integer at an exact restart (T_mult=3 at t=121*T_0, T_mult=10
    at t=111*T_0, ...), where torch's fractional-epoch path then reports the *end* of the old cycle
    (``eta_min``) while its own per-epoch path reports the restart (``base_lr``). We follow the
    exact (per-epoch) answer.
    """

    base_lr: float
    T_0: int
    T_mult: int = 1
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        base_lr = _check_base_lr("base_lr", self.base_lr)
        object.__setattr__(self, "base_lr", base_lr)
        object.__setattr__(self, "T_0", check_number("T_0", self.T_0, low=1, integer=True))
        object.__setattr__(self, "T_mult", check_number("T_mult", self.T_mult, low=1, integer=True))
        object.__setattr__(self, "eta_min", float(check_number("eta_min", self.eta_min, low=0.0, high=base_lr)))

    def _starts(self, t_max: float) -> np.ndarray:
        """Exact cycle starts s_0=0 < s_1 < ... up to the first one beyond ``t_max`` (T_mult > 1).

        Computed with Python integers and converted once, exactly as torch's
        ``T_0 * (T_mult**n - 1) / (T_mult - 1)`` (an exact integer quotient, correctly rounded).
        The table has ~log(t_max) entries, so this is cheap even once per batch.
        """
        starts, length = [0], self.T_0
        while starts[-1] <= t_max:
            starts.append(starts[-1] + length)
            length *= self.T_mult
        return np.array([float(s) for s in starts])

    def cycles(self, ts: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per time: the cycle index ``i`` (int64), ``T_cur`` (time into the cycle) and ``T_i``."""
        ts = _as_times(ts)
        if self.T_mult == 1:
            # torch: T_cur = epoch % T_0. numpy's floor_divide/remainder come from one divmod,
            # so index and T_cur always agree.
            index = np.floor_divide(ts, self.T_0).astype(np.int64)
            t_cur = np.remainder(ts, self.T_0)
            t_i = np.full(ts.shape, float(self.T_0))
            return index, t_cur, t_i
        t_max = float(ts.max()) if ts.size else 0.0
        starts = self._starts(t_max)
        index = np.searchsorted(starts, ts, side="right") - 1
        lengths = np.array([float(self.T_0 * self.T_mult**k) for k in range(len(starts))])
        return index.astype(np.int64), ts - starts[index], lengths[index]

    def _cosine(self, peak: Any, t_cur: np.ndarray, t_i: np.ndarray) -> np.ndarray:
        # Same operations, same order as torch's get_lr().
        return self.eta_min + (peak - self.eta_min) * (1 + np.cos(np.pi * t_cur / t_i)) / 2

    def preview(self, ts: Any) -> np.ndarray:
        _, t_cur, t_i = self.cycles(ts)
        return self._cosine(self.base_lr, t_cur, t_i)

    def restart_times(self, horizon: float) -> list[float]:
        if self.T_mult == 1:
            return [float(s) for s in range(self.T_0, math.ceil(horizon), self.T_0) if s < horizon]
        return [float(s) for s in self._starts(horizon)[1:] if s < horizon]


def _root(schedule: Schedule) -> CosineRestarts:
    """The CosineRestarts under a CycleDecay / CycleLimit stack."""
    while isinstance(schedule, (CycleDecay, CycleLimit)):
        schedule = schedule.restarts
    if not isinstance(schedule, CosineRestarts):
        raise ParameterError("restarts", f"restarts must be built on a CosineRestarts; got {type(schedule).__name__}")
    return schedule


@dataclass(frozen=True)
class CycleDecay(Schedule):
    """Restarts whose peaks shrink geometrically: cycle ``i`` peaks at ``base_lr * decay**i``.

    This is timm's ``cycle_decay``: the floor stays at ``eta_min``, only the peak decays. One
    difference: a peak that would fall below ``eta_min`` is held at ``eta_min`` (timm would draw an
    upside-down cosine, rising from the decayed peak to ``eta_min``).
    """

    restarts: CosineRestarts
    decay: float

    def __post_init__(self) -> None:
        if not isinstance(self.restarts, CosineRestarts):
            raise ParameterError("restarts", f"restarts must be a CosineRestarts; got {type(self.restarts).__name__}")
        object.__setattr__(self, "decay", float(check_number("decay", self.decay, low=0.0, high=1.0, low_inclusive=False)))

    def preview(self, ts: Any) -> np.ndarray:
        r = self.restarts
        index, t_cur, t_i = r.cycles(ts)
        peak = np.maximum(r.base_lr * np.power(self.decay, index), r.eta_min)
        return r._cosine(peak, t_cur, t_i)

    def restart_times(self, horizon: float) -> list[float]:
        return self.restarts.restart_times(horizon)


@dataclass(frozen=True)
class CycleLimit(Schedule):
    """Only the first ``limit`` cycles run; from the start of cycle ``limit`` on the rate is ``eta_min``.

    ``restarts`` is a :class:`CosineRestarts` or a :class:`CycleDecay`. Matches timm's
    ``cycle_limit`` (timm's default of 1 is plain cosine annealing without restarts).
    """

    restarts: Schedule
    limit: int

    def __post_init__(self) -> None:
        if not isinstance(self.restarts, (CosineRestarts, CycleDecay)):
            raise ParameterError(
                "restarts", f"restarts must be a CosineRestarts or CycleDecay; got {type(self.restarts).__name__}"
            )
        object.__setattr__(self, "limit", check_number("limit", self.limit, low=1, integer=True))

    def preview(self, ts: Any) -> np.ndarray:
        ts = _as_times(ts)
        root = _root(self.restarts)
        index, _, _ = root.cycles(ts)
        return np.where(index >= self.limit, root.eta_min, self.restarts.preview(ts))

    def restart_times(self, horizon: float) -> list[float]:
        # Restarts 1..limit-1 happen; at the start of cycle `limit` the rate is already at eta_min.
        return self.restarts.restart_times(horizon)[: self.limit - 1]


@dataclass(frozen=True)
class Warmup(Schedule):
    """A linear warmup of ``warmup`` time units prepended to ``schedule`` (which is shifted right).

    For ``t < warmup`` the rate ramps linearly from ``start_factor * schedule(0)`` towards
    ``schedule(0)``; from ``t = warmup`` on it is ``schedule(t - warmup)``. So the curve is
    continuous at the end of the warmup, and every restart moves ``warmup`` later. This is timm's
    ``warmup_t`` with ``warmup_prefix=True`` (``warmup_lr_init = start_factor * base_lr``); timm's
    default (``warmup_prefix=False``) would instead overwrite the first ``warmup`` units of the
    schedule and leave the restarts in place.

    ``start_factor`` defaults to 0.1 rather than timm's 0: with a per-epoch update and
    ``warmup=1`` a start at 0 would spend the whole first epoch not training.
    """

    schedule: Schedule
    warmup: float
    start_factor: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise ParameterError("schedule", f"schedule must be a Schedule; got {type(self.schedule).__name__}")
        object.__setattr__(self, "warmup", float(check_number("warmup", self.warmup, low=0.0)))
        object.__setattr__(self, "start_factor", float(check_number("start_factor", self.start_factor, low=0.0, high=1.0)))

    def preview(self, ts: Any) -> np.ndarray:
        ts = _as_times(ts)
        ramp = ts < self.warmup
        out = np.empty(ts.shape, dtype=np.float64)
        if ramp.any():
            peak = self.schedule(0.0)
            out[ramp] = peak * (self.start_factor + (1.0 - self.start_factor) * ts[ramp] / self.warmup)
        if (~ramp).any():
            out[~ramp] = self.schedule.preview(ts[~ramp] - self.warmup)
        return out

    def restart_times(self, horizon: float) -> list[float]:
        return [t + self.warmup for t in self.schedule.restart_times(max(horizon - self.warmup, 0.0))
                if t + self.warmup < horizon]


@dataclass(frozen=True)
class Constant(Schedule):
    """A fixed learning rate (the baseline every schedule should be compared with)."""

    lr: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _check_base_lr("lr", self.lr))

    def preview(self, ts: Any) -> np.ndarray:
        return np.full(_as_times(ts).shape, self.lr)


@dataclass(frozen=True)
class OneCycleCosine(Schedule):
    """One cosine decay from ``base_lr`` to ``eta_min`` over exactly ``total`` units, then ``eta_min``.

    The budget-matched alternative to restarts: SGDR with ``T_0 = total`` and no second cycle
    (``CycleLimit(CosineRestarts(base_lr, total, 1, eta_min), 1)``), so the run ends at the bottom
    of a cycle instead of mid-cycle at a high rate.
    """

    base_lr: float
    total: int
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        base_lr = _check_base_lr("base_lr", self.base_lr)
        object.__setattr__(self, "base_lr", base_lr)
        object.__setattr__(self, "total", check_number("total", self.total, low=1, integer=True))
        object.__setattr__(self, "eta_min", float(check_number("eta_min", self.eta_min, low=0.0, high=base_lr)))

    def _as_limit(self) -> CycleLimit:
        return CycleLimit(CosineRestarts(self.base_lr, self.total, 1, self.eta_min), 1)

    def preview(self, ts: Any) -> np.ndarray:
        return self._as_limit().preview(ts)


# -- flat parameters (panel knobs, papermill) ---------------------------------------------------
#: The knob names, in panel order.
PARAM_NAMES = ("base_lr", "T_0", "T_mult", "eta_min", "warmup", "cycle_decay", "cycle_limit")
#: Defaults for the optional ones (``base_lr`` and ``T_0`` are required).
DEFAULT_PARAMS = {"T_mult": 1, "eta_min": 0.0, "warmup": 0.0, "cycle_decay": 1.0, "cycle_limit": 0}

_PARAM_DOCS = {
    "base_lr": "peak learning rate of the first cycle, in (0, 10]",
    "T_0": "length of the first cycle (epochs, or the unit of t), integer >= 1",
    "T_mult": "each cycle is T_mult times longer than the last, integer >= 1",
    "eta_min": "floor of every cycle, in [0, base_lr]",
    "warmup": "linear warmup prepended to the schedule (shifts the restarts), >= 0",
    "cycle_decay": "peak of cycle i is base_lr * cycle_decay**i, in (0, 1]",
    "cycle_limit": "stay at eta_min after this many cycles; 0 = unlimited",
}


def _check_param(name: str, value: Any) -> Any:
    """Validate one flat parameter on its own (cross-checks live in :func:`validate_params`)."""
    if name == "base_lr":
        return _check_base_lr(name, value)
    if name in ("T_0", "T_mult"):
        return check_number(name, value, low=1, integer=True)
    if name == "eta_min":
        return float(check_number(name, value, low=0.0, high=MAX_LR))
    if name == "warmup":
        return float(check_number(name, value, low=0.0))
    if name == "cycle_decay":
        return float(check_number(name, value, low=0.0, high=1.0, low_inclusive=False))
    if name == "cycle_limit":
        return check_number(name, value, low=0, integer=True)
    check_choice("parameter", name, PARAM_NAMES)
    raise AssertionError("unreachable")


def validate_params(params: Mapping[str, Any]) -> dict:
    """Check flat schedule parameters and return them complete (defaults filled in, values coerced).

    Raises :class:`ParameterError` naming the parameter: unknown names, missing ``base_lr``/``T_0``,
    out-of-range values, and ``eta_min > base_lr``.
    """
    if not isinstance(params, Mapping):
        raise ParameterError("params", f"params must be a dict of {', '.join(PARAM_NAMES)}; got {type(params).__name__}")
    for name in params:
        if name not in PARAM_NAMES:
            raise ParameterError(name, f"unknown schedule parameter {name!r}; expected one of {', '.join(PARAM_NAMES)}")
    for name in ("base_lr", "T_0"):
        if name not in params:
            raise ParameterError(name, f"{name} is required ({_PARAM_DOCS[name]})")
    out = {**DEFAULT_PARAMS, **params}
    out = {name: _check_param(name, out[name]) for name in PARAM_NAMES}
    if out["eta_min"] > out["base_lr"]:
        raise ParameterError("eta_min", f"eta_min must be a number in [0.0, base_lr={out['base_lr']!r}]; got {out['eta_min']!r}")
    return out


def schedule_from_params(params: Mapping[str, Any]) -> Schedule:
    """Build ``Warmup(CycleLimit(CycleDecay(CosineRestarts(...))))`` from flat parameters.

    ``params`` holds ``base_lr`` and ``T_0`` (required) and optionally ``T_mult``, ``eta_min``,
    ``warmup``, ``cycle_decay``, ``cycle_limit`` (see :data:`DEFAULT_PARAMS`). Layers that would do
    nothing (decay 1, limit 0, warmup 0) are left out, so the plain case is a bare CosineRestarts.
    """
    p = validate_params(params)
    schedule: Schedule = CosineRestarts(p["base_lr"], p["T_0"], p["T_mult"], p["eta_min"])
    if p["cycle_decay"] != 1.0:
        schedule = CycleDecay(schedule, p["cycle_decay"])
    if p["cycle_limit"] > 0:
        schedule = CycleLimit(schedule, p["cycle_limit"])
    if p["warmup"] > 0:
        schedule = Warmup(schedule, p["warmup"])
    return schedule


def params_of(schedule: Schedule) -> dict | None:
    """The flat parameters that rebuild ``schedule``, or None if it is not of that shape.

    Inverse of :func:`schedule_from_params` (``OneCycleCosine`` maps to ``cycle_limit=1``); used so
    that a callback given a schedule object can still offer knobs.
    """
    p: dict = {}
    s = schedule
    if isinstance(s, Warmup):
        if s.start_factor != Warmup.__dataclass_fields__["start_factor"].default:
            return None
        p["warmup"], s = s.warmup, s.schedule
    if isinstance(s, OneCycleCosine):
        s = s._as_limit()
    if isinstance(s, CycleLimit):
        p["cycle_limit"], s = s.limit, s.restarts
    if isinstance(s, CycleDecay):
        p["cycle_decay"], s = s.decay, s.restarts
    if not isinstance(s, CosineRestarts):
        return None
    p.update(base_lr=s.base_lr, T_0=s.T_0, T_mult=s.T_mult, eta_min=s.eta_min)
    return validate_params(p)


def restart_positions(schedule_or_params: Schedule | Mapping[str, Any], horizon: float) -> list[float]:
    """Times ``0 < t < horizon`` where the schedule restarts (jumps back up).

    >>> restart_positions({"base_lr": 1e-3, "T_0": 5, "T_mult": 2}, 100)
    [5.0, 15.0, 35.0, 75.0]

    A warmup shifts every restart by its length; a cycle limit drops the restarts after it.
    """
    horizon = float(check_number("horizon", horizon, low=0.0, low_inclusive=False))
    schedule = _coerce_schedule(schedule_or_params)
    return schedule.restart_times(horizon)


def _coerce_schedule(schedule_or_params: Any) -> Schedule:
    if isinstance(schedule_or_params, Schedule):
        return schedule_or_params
    if isinstance(schedule_or_params, Mapping):
        return schedule_from_params(schedule_or_params)
    raise ParameterError(
        "schedule_or_params",
        f"schedule_or_params must be a Schedule or a dict of {', '.join(PARAM_NAMES)}; got {type(schedule_or_params).__name__}",
    )


# -- Trainer adapter ----------------------------------------------------------------------------
