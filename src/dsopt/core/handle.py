"""The run-handle contract: what a panel (or a script) may do with any live run.

Three kinds of live run implement it: the :class:`~dsopt.core.trainer.Trainer`, chapter 07's stream
replay and chapter 06's distributed job. A panel is written against this protocol only, so the same
buttons (Start, Pause, Resume, Stop, Restart) and the same live figure work for all of them.

``state`` is where the run stands, read by panels: it has at least ``step`` (steps done),
``max_epochs`` and ``epoch_progress`` (fractional epochs done; a replay's "epochs" are its windows).
``recorder`` is the append-only metrics log panels read by cursor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

#: What ``status`` may say: not started, running, paused, stopped by request, finished, failed.
STATUSES = ("idle", "running", "paused", "stopped", "finished", "failed")


@dataclass
class Progress:
    """Where a run that is not a Trainer stands: the progress fields of :class:`~dsopt.core.state.State`.

    The stream replay (a window is a step and an "epoch") and the distributed job (rank 0's steps)
    expose one, so a panel reads ``step``, ``max_epochs``, ``epoch_progress`` and ``total_steps`` the
    same way from every run.
    """

    max_epochs: int
    batches_per_epoch: int = 1
    step: int = 0

    @property
    def epoch_progress(self) -> float:
        """Fractional epochs done: ``step / batches_per_epoch``."""
        return self.step / self.batches_per_epoch

    @property
    def total_steps(self) -> int:
        """Steps in the whole run."""
        return self.max_epochs * self.batches_per_epoch


@runtime_checkable
class RunHandle(Protocol):
    """A live run a person can steer: start, pause, resume, stop(wait), wait, state, recorder, status."""

    recorder: Any
    state: Any

    def start(self) -> "RunHandle":
        """Run in the background and return at once (``self``)."""

    def pause(self) -> None:
        """Hold the run at its next step boundary."""

    def resume(self) -> None:
        """Continue a paused run."""

    def stop(self, wait: float | None = None) -> None:
        """Ask the run to stop at its next step boundary; with ``wait``, join it for up to that many seconds."""

    def wait(self, timeout: float | None = None) -> Any:
        """Join the run; re-raise its exception if it failed; return its recorder."""

    @property
    def running(self) -> bool:
        """True while the background run is alive."""

    @property
    def status(self) -> str:
        """One of :data:`STATUSES`."""
