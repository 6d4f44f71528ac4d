"""The fixed event vocabulary of a run and the Callback base class.

Callbacks observe one explicit :class:`~dsopt.core.state.State`. They may change what the State hands
them to change (the optimizer's learning rate, the loss function's scheme) and log to the Recorder,
but they do not reach into the Trainer. Keeping the event list small and fixed is deliberate
(fastai's list is the model; its free-for-all is not).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from dsopt.core.controls import Knob
    from dsopt.core.state import State

#: Events in the order they fire. Per batch: batch_start -> forward/backward -> after_backward ->
#: optimizer.step() -> batch_end.
EVENTS = ("fit_start", "epoch_start", "batch_start", "after_backward", "batch_end", "epoch_end", "fit_end")


class Callback:
    """Base class: override any event method; each receives the run's State."""

    #: Lower runs first.
    order: int = 0

    def knobs(self) -> list["Knob"]:
        """Knobs this callback reads from ``state.knobs``; the Trainer defines them in Controls."""
        return []

    def constraints(self) -> list:
        """Joint checks of this callback's knobs, ``check(values) -> None`` raising ParameterError (see
        ``Controls.add_constraint``); the Trainer registers them, so an inconsistent pair is refused when set."""
        return []

    def state_dict(self) -> dict:
        """What this callback needs to resume from a checkpoint."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""

    def fit_start(self, state: "State") -> None: ...
    def epoch_start(self, state: "State") -> None: ...
    def batch_start(self, state: "State") -> None: ...
    def after_backward(self, state: "State") -> None: ...
    def batch_end(self, state: "State") -> None: ...
    def epoch_end(self, state: "State") -> None: ...
    def fit_end(self, state: "State") -> None: ...


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(batch_end=lambda s: ...)``."""

    def __init__(self, order: int = 0, **handlers):
        unknown = set(handlers) - set(EVENTS)
        if unknown:
            raise ValueError(f"unknown event(s) {sorted(unknown)}; events are {', '.join(EVENTS)}")
        self.order = order
        for event, fn in handlers.items():
            setattr(self, event, fn)
