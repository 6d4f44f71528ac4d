"""LRScheduleCallback: drive an optimizer's learning rate from a pure schedule inside the Trainer.

The schedule's flat parameters are live knobs; a knob change rebuilds the schedule at the next step
boundary. ``per="batch"`` evaluates the schedule at the fractional epoch, ``per="epoch"`` at the epoch.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from dsopt.core.callbacks import Callback
from dsopt.core.controls import Knob
from dsopt.lr.schedules import (
    _PARAM_DOCS,
    MAX_LR,
    PARAM_NAMES,
    Schedule,
    _check_param,
    _coerce_schedule,
    params_of,
    schedule_from_params,
    validate_params,
)
from dsopt.util.validation import ParameterError, check_choice, check_number


class LRScheduleCallback(Callback):
    """Set the optimizer's learning rate from a schedule at every ``batch_start`` and log it.

    ``per="batch"``: ``lr = schedule(state.epoch_progress)`` (fractional epoch, the torch-documented
    ``scheduler.step(epoch + i / iters)`` pattern); ``per="epoch"``: ``lr = schedule(state.epoch)``
    (constant within an epoch, as torch stepped once per epoch). The choice is explicit because it
    is the pitfall. Batch ``i`` of epoch ``e`` uses ``schedule(e + i / n)`` itself (torch's pattern,
    which steps *after* the batch, lags one batch behind).

    ``param_groups``: indices of the optimizer groups to drive (default: all); each gets the same
    absolute rate. The rate of the first driven group is logged as ``lr`` every step.

    Knobs: when built from flat parameters (or a schedule :func:`params_of` understands) the
    callback declares the knobs ``base_lr, T_0, T_mult, eta_min, warmup, cycle_decay, cycle_limit``.
    At ``batch_start`` it compares ``state.knobs`` with its parameters and rebuilds the schedule if
    they differ, so a live change applies from the next step on; ``t`` keeps counting from the start
    of the run (a new ``T_0`` re-places every restart, it does not start a new cycle now).
    ``state_dict()`` holds the parameters; the Trainer restores the knob values alongside.
    """

    #: Before other callbacks, so that anything reading the rate at batch_start sees this step's.
    order = -10

    def __init__(self, schedule_or_params: Schedule | Mapping[str, Any], per: str = "batch",
                 param_groups: Sequence[int] | None = None):
        self.per = check_choice("per", per, ["batch", "epoch"])
        if param_groups is not None:
            if isinstance(param_groups, (str, bytes)) or not isinstance(param_groups, Sequence) or not param_groups:
                raise ParameterError(
                    "param_groups", f"param_groups must be None or a non-empty list of group indices; got {param_groups!r}"
                )
            param_groups = [check_number("param_groups", g, low=0, integer=True) for g in param_groups]
        self.param_groups = param_groups
        self.schedule = _coerce_schedule(schedule_or_params)
        self.params: dict | None = (validate_params(schedule_or_params) if isinstance(schedule_or_params, Mapping)
                                    else params_of(self.schedule))
        self.lr: float | None = None

    # -- knobs ----------------------------------------------------------------------------------
    def knobs(self) -> list[Knob]:
        """One knob per flat parameter, defaulting to the current value (none for custom schedules)."""
        if self.params is None:
            return []
        return [Knob(name, self.params[name], self._validator(name), _PARAM_DOCS[name]) for name in PARAM_NAMES]

    def _validator(self, name: str):
        def validate(value):
            return _check_param(name, value)
        return validate

    def constraints(self) -> list:
        """``eta_min <= base_lr``, checked on the values as they will be once everything queued applies
        (so a pair queued together, or one after the other before a boundary, is judged as a pair)."""
        if self.params is None:
            return []

        def eta_min_below_base_lr(values: dict) -> None:
            base, eta = values.get("base_lr"), values.get("eta_min")
            if base is not None and eta is not None and eta > base:
                raise ParameterError(
                    "eta_min", f"eta_min={eta!r} > base_lr={base!r}: eta_min must be a number in [0.0, base_lr] "
                               f"(base_lr at most {MAX_LR!r}); change both together, e.g. "
                               "controls.update(base_lr=..., eta_min=...), or lower eta_min first")
        return [eta_min_below_base_lr]

    def _sync_knobs(self, state) -> None:
        if self.params is None:
            return
        seen = {name: state.knobs[name] for name in PARAM_NAMES if name in state.knobs}
        if not seen or all(self.params[n] == v for n, v in seen.items()):
            return
        # Controls refused any inconsistent pair when it was set (see constraints), so this validates.
        self.params = validate_params({**self.params, **seen})
        self.schedule = schedule_from_params(self.params)

    # -- events ---------------------------------------------------------------------------------
    def _groups(self, optimizer) -> list[dict]:
        groups = optimizer.param_groups
        if self.param_groups is None:
            return list(groups)
        for g in self.param_groups:
            if g >= len(groups):
                raise ParameterError("param_groups", f"param_groups entries must be in [0, {len(groups) - 1}]; got {g}")
        return [groups[g] for g in self.param_groups]

    def fit_start(self, state) -> None:
        self._groups(state.optimizer)  # fail at the start, not at the first batch

    def batch_start(self, state) -> None:
        self._sync_knobs(state)
        t = state.epoch_progress if self.per == "batch" else float(state.epoch)
        lr = self.schedule(t)
        for group in self._groups(state.optimizer):
            group["lr"] = lr
        self.lr = lr
        state.recorder.log("lr", lr, step=state.step, epoch=state.epoch)

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"params": dict(self.params) if self.params is not None else None, "per": self.per,
                "param_groups": self.param_groups}

    def load_state_dict(self, state: dict) -> None:
        if state.get("per", self.per) != self.per:
            raise ParameterError("per", f"checkpoint was written with per={state['per']!r}; this callback has per={self.per!r}")
        if state.get("params") is not None:
            self.params = validate_params(state["params"])
            self.schedule = schedule_from_params(self.params)
