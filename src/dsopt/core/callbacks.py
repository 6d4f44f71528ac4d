"""The fixed event vocabulary of a run and the Callback base class.

Callbacks observe one explicit :class:`~dsopt.core.state.State`. They may change what the State hands
them to change (the optimizer's learning rate, the loss function's scheme) and log to the Recorder,
but they do not reach into the Trainer. Keeping the event list small and fixed is deliberate
(fastai's list is the model; its free-for-all is not).
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from dsopt.core.controls import Knob
    from dsopt.core.state import State

#: Events in the order they fire. Per batch: batch_start -> forward/backward -> after_backward ->
#: optimizer.step() -> batch_end. A :class:`StepHooks` callback may take over how forward, backward
#: and the optimizer step run (mixed precision); the events stay the same. ``fit_error`` fires
#: instead of the rest when the run raises (``fit_error(state, exc)``), before the exception leaves
#: ``fit()`` or is stored for ``wait()``; an exception inside a ``fit_error`` handler is reported as a
#: warning and never replaces the run's own.
EVENTS = ("fit_start", "epoch_start", "batch_start", "after_backward", "batch_end", "epoch_end", "fit_end",
          "fit_error")


class Callback:
    """Base class: override any event method; each receives the run's State.

    ``name`` keys this callback's :meth:`state_dict` in checkpoints, so a checkpoint resumes into a
    Trainer with callbacks added, removed or reordered. It defaults to the class name (set for every
    subclass that does not define its own ``name``); set ``cb.name = "..."`` on an instance to tell two
    callbacks of one class apart, or leave them and the Trainer numbers the repeats (see
    :func:`callback_names`).
    """

    #: Lower runs first.
    order: int = 0
    #: Stable key of this callback's state in checkpoints (the class name unless overridden).
    name: str = "Callback"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

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
    def fit_error(self, state: "State", exc: BaseException) -> None: ...


def callback_names(callbacks: Iterable[Callback]) -> list[str]:
    """The checkpoint key of each callback, in order: its ``name``; a repeated name gets ``#2``, ``#3``, ...

    Numbering follows the Trainer's callback order (sorted by ``order``, stable), so it is deterministic:
    the second ``LambdaCallback`` is ``LambdaCallback#2`` in every run built the same way. Give such
    callbacks their own ``name`` when they carry state and the set of callbacks may change between runs.
    """
    names, seen = [], {}
    for cb in callbacks:
        name = getattr(cb, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"callback {cb!r} has name {name!r}; a callback's name must be a non-empty string")
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    if len(set(names)) != len(names):  # e.g. one callback explicitly named "A#2" next to two "A"
        raise ValueError(f"callback names collide after numbering repeats: {names}; give them distinct names")
    return names


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(batch_end=lambda s: ...)``."""

    def __init__(self, order: int = 0, name: str | None = None, **handlers):
        unknown = set(handlers) - set(EVENTS)
        if unknown:
            raise ValueError(f"unknown event(s) {sorted(unknown)}; events are {', '.join(EVENTS)}")
        self.order = order
        if name is not None:
            self.name = name
        for event, fn in handlers.items():
            setattr(self, event, fn)


class StepHooks(Callback):
    """A callback that also decides HOW a batch's training step runs; at most one per Trainer.

    Events can observe a step but not wrap it, and mixed precision needs both: autocast must wrap
    the forward pass and the loss, and a loss scaler must own the backward pass, the unscaling of
    the gradients and the optimizer step. The Trainer calls, per batch::

        batch_start -> with forward_context(state): outputs, loss -> backward(state)
                    -> after_backward -> optimizer_step(state) -> step += 1 -> batch_end

    ``backward`` must leave true (unscaled) gradients in ``.grad``, so ``after_backward`` callbacks
    (clipping, statistics) see the same thing with or without scaling. The defaults below are the
    plain fp32 step; :class:`dsopt.precision.MixedPrecision` is the implementation.
    """

    def forward_context(self, state: "State") -> contextlib.AbstractContextManager:
        """Context entered around ``outputs = model(inputs); loss = loss_fn(outputs, targets)``."""
        return contextlib.nullcontext()

    def backward(self, state: "State") -> None:
        """Compute gradients of ``state.loss`` (unscaled when this returns)."""
        state.loss.backward()

    def optimizer_step(self, state: "State") -> None:
        """Apply the gradients (or skip the step, e.g. on a loss-scale overflow)."""
        state.optimizer.step()
