"""Forward-pass latency measured on the model's own device: warm-up, then the median of repeats.

Under ``torch.inference_mode()`` with a stated number of CPU threads (set for the measurement and
restored), on synthetic full-length inputs (random token ids, no padding) of a stated batch size
and length, so that every model sees the same work. ``compare_latency`` interleaves the models
repeat by repeat, so a burst of load from other processes hits all of them alike; the median keeps
one slow repeat from moving the result.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Mapping

import torch
from torch import nn

from dsopt.core.modes import eval_mode
from dsopt.core.trainer import call_model
from dsopt.util.validation import check_number


@dataclass
class Latency:
    """Median seconds of one forward pass, with everything needed to reproduce the number."""

    median_s: float
    times_s: list[float] = field(repr=False)
    batch_size: int
    length: int
    repeats: int
    warmup: int
    threads: int
    device: str

    @property
    def median_ms(self) -> float:
        return 1000.0 * self.median_s

    def as_dict(self) -> dict:
        return {**asdict(self), "median_ms": self.median_ms}


def example_inputs(model: nn.Module, batch_size: int, length: int, seed: int = 0) -> dict:
    """Full-length inputs for ``model`` on its device: token ids (no padding) or digit patches."""
    B = check_number("batch_size", batch_size, low=1, integer=True)
    T = check_number("length", length, low=1, integer=True)
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    patch_dim = getattr(model, "patch_dim", None)
    if patch_dim:
        return {"patches": torch.rand(B, T, patch_dim, generator=g).to(dev)}
    emb = next(m for m in model.modules() if isinstance(m, nn.Embedding))
    ids = torch.randint(1, emb.num_embeddings, (B, T), generator=g)
    return {"input_ids": ids.to(dev), "attention_mask": torch.ones(B, T, dtype=torch.long, device=dev)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare_latency(models: Mapping[str, nn.Module], batch_size: int, length: int, *, repeats: int = 10,
                    warmup: int = 2, threads: int | None = 1, seed: int = 0) -> dict[str, Latency]:
    """Latency of each model on the same inputs, repeats interleaved across models.

    ``threads``: torch CPU threads during the measurement (None = leave as is); stated in the result.
    """
    repeats = check_number("repeats", repeats, low=1, integer=True)
    warmup = check_number("warmup", warmup, low=0, integer=True)
    if not models:
        raise ValueError("models is empty")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_number("threads", threads, low=1, integer=True))
    n_threads = torch.get_num_threads()
    try:
        inputs = {name: example_inputs(m, batch_size, length, seed) for name, m in models.items()}
        times: dict[str, list[float]] = {name: [] for name in models}
        with torch.inference_mode(), eval_mode(*models.values()):
            for r in range(warmup + repeats):
                for name, m in models.items():
                    dev = next(m.parameters()).device
                    _sync(dev)
                    t0 = time.perf_counter()
                    call_model(m, inputs[name])
                    _sync(dev)
                    if r >= warmup:
                        times[name].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(previous)
    return {name: Latency(statistics.median(ts), ts, batch_size, length, repeats, warmup, n_threads,
                          str(next(models[name].parameters()).device)) for name, ts in times.items()}


def measure_latency(model: nn.Module, batch_size: int, length: int, *, repeats: int = 10, warmup: int = 2,
                    threads: int | None = 1, seed: int = 0) -> Latency:
    """Median latency of one forward pass of ``model`` (see :func:`compare_latency`)."""
    return compare_latency({"model": model}, batch_size, length, repeats=repeats, warmup=warmup,
                           threads=threads, seed=seed)["model"]
