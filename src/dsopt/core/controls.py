"""Controls: validated knob changes from any thread, applied only at step boundaries.

Widgets and code write (``set``); the training loop reads (``apply_pending``) once per step,
before ``batch_start``. A value is validated the moment it is set, so an invalid value is refused
with a message naming the knob and its allowed range, and the run keeps its last valid value.
Every applied change is kept with the step it took effect at, so an interactive session can be
replayed headless: ``as_parameters()`` gives papermill parameters, ``ReplayControls`` re-applies
them at the same steps.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Callable

from dsopt.util.validation import ParameterError


@dataclass(frozen=True)
class Knob:
    """A named, validated run parameter. ``validate`` returns the (coerced) value or raises."""

    name: str
    default: Any
    validate: Callable[[Any], Any]
    doc: str = ""


@dataclass(frozen=True)
class AppliedChange:
    """``name`` went from ``old`` to ``new`` at the boundary before optimizer step ``step``."""

    step: int
    name: str
    old: Any
    new: Any


class Controls:
    """Thread-safe store of knob values plus run flags (pause / stop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._knobs: dict[str, Knob] = {}
        self._values: dict[str, Any] = {}
        self._pending: dict[str, Any] = {}
        self._history: list[AppliedChange] = []
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._holding = threading.Event()  # set while the training thread waits in wait_while_paused

    # -- knobs ------------------------------------------------------------------------------
    def define(self, knob: Knob) -> None:
        """Register ``knob`` with its default value. Names must be unique."""
        with self._lock:
            if knob.name in self._knobs:
                raise ValueError(f"knob {knob.name!r} is defined twice (two callbacks claim it)")
            self._knobs[knob.name] = knob
            self._values[knob.name] = knob.validate(knob.default)

    def knobs(self) -> dict[str, Knob]:
        """The registered knobs by name."""
        with self._lock:
            return dict(self._knobs)

    def set(self, name: str, value: Any) -> Any:
        """Validate ``value`` now and queue it for the next step boundary; return the coerced value.

        Raises :class:`ParameterError` (nothing queued) for an unknown knob or an invalid value.
        """
        with self._lock:
            knob = self._knobs.get(name)
        if knob is None:
            allowed = ", ".join(sorted(self._knobs)) or "(none defined)"
            raise ParameterError(name, f"unknown control {name!r}; known controls: {allowed}")
        value = knob.validate(value)
        with self._lock:
            self._pending[name] = value
        return value

    def update(self, **values: Any) -> dict:
        """Validate all ``values`` first, then queue them together (all or nothing)."""
        checked = {}
        for name, value in values.items():
            with self._lock:
                knob = self._knobs.get(name)
            if knob is None:
                raise ParameterError(name, f"unknown control {name!r}; known controls: {', '.join(sorted(self._knobs))}")
            checked[name] = knob.validate(value)
        with self._lock:
            self._pending.update(checked)
        return checked

    def get(self, name: str) -> Any:
        """The currently applied value of ``name``."""
        with self._lock:
            return self._values[name]

    def values(self) -> dict[str, Any]:
        """A copy of all applied values."""
        with self._lock:
            return dict(self._values)

    def pending(self) -> dict[str, Any]:
        """Values queued but not yet applied."""
        with self._lock:
            return dict(self._pending)

    def apply_pending(self, step: int) -> dict[str, Any]:
        """Apply queued values (training thread, at a step boundary); return those that changed."""
        with self._lock:
            changed = {}
            for name, new in self._pending.items():
                old = self._values[name]
                if old != new:
                    self._values[name] = new
                    self._history.append(AppliedChange(int(step), name, old, new))
                    changed[name] = new
            self._pending.clear()
            return changed

    @property
    def history(self) -> list[AppliedChange]:
        """Every applied change, in order."""
        with self._lock:
            return list(self._history)

    def as_parameters(self) -> dict:
        """Papermill parameters reproducing this session: ``{"control_schedule": [[step, name, value], ...]}``."""
        return {"control_schedule": [[c.step, c.name, c.new] for c in self.history]}

    def state_dict(self) -> dict:
        """Applied values and history (for checkpoints)."""
        with self._lock:
            return {"values": dict(self._values), "history": [asdict(c) for c in self._history]}

    def load_state_dict(self, state: dict) -> None:
        """Restore values/history saved by :meth:`state_dict` (knobs must be defined already)."""
        with self._lock:
            for name, value in state["values"].items():
                if name in self._knobs:
                    self._values[name] = value
            self._history = [AppliedChange(**c) for c in state["history"]]
            self._pending.clear()

    # -- run flags --------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to stop at the next step boundary (it checkpoints first if configured)."""
        self._stop.set()
        self._running.set()  # a paused run must wake up to stop

    def pause(self) -> None:
        """Hold the run at the next step boundary until :meth:`resume` or :meth:`stop`."""
        self._running.clear()

    def resume(self) -> None:
        """Continue a paused run."""
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def clear_stop(self) -> None:
        """Reset the stop flag (the Trainer calls this when a new fit starts)."""
        self._stop.clear()

    @property
    def holding(self) -> bool:
        """True while a paused run actually waits at a step boundary (pause() was honoured)."""
        return self._holding.is_set()

    def wait_while_paused(self, poll: float = 0.05) -> None:
        """Block the training thread while paused; returns at once when running or stopping."""
        if self._running.is_set():
            return
        self._holding.set()
        try:
            while not self._running.wait(timeout=poll):
                if self._stop.is_set():
                    return
        finally:
            self._holding.clear()


#: The control-schedule entry name that stops a replayed run (not a knob).
STOP = "stop"


def replay_callback(control_schedule: list) -> "Callable":
    """Build a callback that re-applies ``[[step, name, value], ...]`` at the same steps.

    ``step`` counts optimizer steps completed when the change was applied (0-based index of the
    first step that used it). Changes are queued at ``batch_end`` once ``step`` steps are done (or
    at fit start for step 0), so the Trainer applies them at the same boundary as the live session.
    The entry ``[step, "stop", true]`` (a live session stopped by hand) stops the run at that same
    boundary, so the replay ends where the session ended.
    """
    from dsopt.core.callbacks import Callback  # local import: callbacks imports controls

    class _Replay(Callback):
        order = -100

        def __init__(self, schedule):
            self.schedule = sorted((int(s), n, v) for s, n, v in schedule)

        def _queue(self, state, step):
            for s, name, value in self.schedule:
                if s == step and name == STOP:
                    state.controls.stop()
                elif s == step:
                    state.controls.set(name, value)

        def fit_start(self, state):
            self._queue(state, state.step)

        def batch_end(self, state):
            self._queue(state, state.step)

    return _Replay(control_schedule)
