"""Seeding and RNG capture so that CPU runs are bitwise reproducible and resumable.

``seed_everything`` seeds Python's ``random``, NumPy's legacy global generator and torch (CPU and
CUDA). ``rng_state``/``set_rng_state`` snapshot and restore all of them, which the Trainer stores
in checkpoints so that dropout masks and shuffles after a resume are the ones an uninterrupted
run would have drawn.
"""
from __future__ import annotations

import random

import numpy as np
import torch

from dsopt.util.validation import check_number


def seed_everything(seed: int, *, deterministic: bool = False) -> torch.Generator:
    """Seed every global RNG with ``seed`` and return a fresh ``torch.Generator`` seeded with it.

    Use the returned generator for DataLoader shuffling (``DataLoader(..., generator=g)``) so
    the batch order does not depend on how many random numbers the model drew.
    ``deterministic=True`` also asks torch for deterministic kernels (matters on CUDA only;
    CPU kernels used here are already deterministic).
    """
    seed = check_number("seed", seed, low=0, high=2**63 - 1, integer=True)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def rng_state() -> dict:
    """Snapshot every global RNG (python, numpy, torch CPU and, when present, CUDA)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore a snapshot taken by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
