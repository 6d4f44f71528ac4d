"""Train/eval mode switched for a block and restored exactly afterwards: written once for every caller.

``model.train(was)`` restores one flag for the whole tree and loses submodules that were in a
different mode (a frozen BatchNorm kept in eval inside a training model); these helpers save and
restore each module's own flag, also when the block raises.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def module_mode(*models: torch.nn.Module, training: bool) -> Iterator[None]:
    """Put ``models`` in train (``training=True``) or eval mode for the block; restore every module's mode."""
    saved = [(m, m.training) for model in models for m in model.modules()]
    try:
        for model in models:
            model.train(training)
        yield
    finally:
        for m, mode in saved:
            m.training = mode


def eval_mode(*models: torch.nn.Module) -> contextlib.AbstractContextManager:
    """``with eval_mode(model): ...`` evaluates in eval mode and restores each module's mode afterwards."""
    return module_mode(*models, training=False)


def train_mode(*models: torch.nn.Module) -> contextlib.AbstractContextManager:
    """``with train_mode(model): ...`` trains in train mode and restores each module's mode afterwards."""
    return module_mode(*models, training=True)


def module_modes(model: torch.nn.Module) -> dict[str, bool]:
    """Each submodule's own train/eval flag by qualified name (``""`` is the model itself)."""
    return {name: m.training for name, m in model.named_modules()}


def restore_modes(model: torch.nn.Module, modes: dict[str, bool] | None) -> None:
    """Set each submodule's flag from :func:`module_modes`; ``None`` (nothing saved) puts all in train mode."""
    if modes is None:
        model.train()
        return
    for name, m in model.named_modules():
        m.training = modes.get(name, True)
