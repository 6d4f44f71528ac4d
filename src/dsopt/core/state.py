"""State: the one explicit object a run's callbacks see."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from dsopt.core.controls import Controls
from dsopt.core.recorder import Recorder


@dataclass
class State:
    """Everything a callback may read at an event. Counters are plain fields, never hidden.

    ``step`` counts optimizer steps completed; ``epoch`` and ``batch_index`` locate the current
    batch (both 0-based); ``epoch_progress`` is the fractional epoch a per-batch schedule uses.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[Any, Any], torch.Tensor]
    device: torch.device
    recorder: Recorder
    controls: Controls
    max_epochs: int
    batches_per_epoch: int
    epoch: int = 0
    batch_index: int = 0
    step: int = 0
    inputs: Any = None
    targets: Any = None
    outputs: Any = None
    loss: torch.Tensor | None = None
    knobs: dict = field(default_factory=dict)

    @property
    def epoch_progress(self) -> float:
        """Fractional epoch of the current batch: ``epoch + batch_index / batches_per_epoch``."""
        return self.epoch + self.batch_index / self.batches_per_epoch

    @property
    def total_steps(self) -> int:
        """Optimizer steps in the whole run."""
        return self.max_epochs * self.batches_per_epoch

    def log(self, name: str, value: Any) -> None:
        """Log ``value`` under ``name`` at the current step and epoch."""
        self.recorder.log(name, value, step=self.step, epoch=self.epoch)
