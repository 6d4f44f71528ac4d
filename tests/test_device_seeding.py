"""Device choice never assumes a GPU; seeding makes draws repeatable; validation messages."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from dsopt import ParameterError, check_choice, check_number, pick_device, rng_state, seed_everything, set_rng_state


def test_auto_device_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device().type == "cpu" and pick_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="device='cuda' was requested but torch.cuda.is_available\\(\\) is False"):
        pick_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"


def test_unknown_device_names_the_parameter():
    with pytest.raises(ParameterError, match="device must be one of 'auto', 'cpu', 'cuda', 'mps'; got 'tpu'"):
        pick_device("tpu")


def test_seed_everything_and_rng_snapshots():
    g = seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item())
    seed_everything(7)
    snap = rng_state()
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(snap)
    c = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a[:3] == b == c
    with pytest.raises(ParameterError, match="seed must be an integer"):
        seed_everything(-1)


def test_validation_messages():
    assert check_number("lr", 0.1, low=0, high=1) == 0.1
    assert check_number("n", 3.0, low=1, integer=True) == 3
    for bad in (True, "1", float("nan")):
        with pytest.raises(ParameterError, match="lr must be"):
            check_number("lr", bad, low=0, high=1)
    with pytest.raises(ParameterError, match=r"lr must be a number in \(0, 1\]; got 0"):
        check_number("lr", 0, low=0, high=1, low_inclusive=False)
    with pytest.raises(ParameterError, match="mode must be one of 'a', 'b'; got 'c'"):
        check_choice("mode", "c", ["a", "b"])
