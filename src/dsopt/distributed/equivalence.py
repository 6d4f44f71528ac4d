"""The correctness check of data parallelism: N workers at batch B == one process at batch N*B.

:func:`one_step` takes one SGD step of a small transformer (no dropout) on a seeded global batch;
:func:`optimizer_steps` takes several steps with each optimizer of :data:`OPTIMIZERS` (momentum, weight decay,
Adam's moments and step count: state a backend could get wrong) in float32 and float64. Called in N workers
(``launch("dsopt.distributed.equivalence:optimizer_steps", n, backend, ...)``) each rank takes its contiguous
slice of each global batch and the backend averages the gradients; called in one process it uses the whole
batch. The parameters after the steps must agree to float rounding.
"""
from __future__ import annotations

import numpy as np
import torch

from dsopt.distributed import runtime
from dsopt.models import TransformerClassifier


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return TransformerClassifier(patch_dim=4, n_tokens_max=16, d_model=32, n_layers=1, n_heads=2, d_ff=64,
                                 n_classes=10, dropout=0.0)


#: Optimizers whose state goes beyond the gradient: momentum + weight decay, Adam's moments and step count,
#: AdamW's decoupled decay.
OPTIMIZERS = {
    "sgd momentum wd": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=0.01),
    "adam": lambda params: torch.optim.Adam(params, lr=1e-3),
    "adamw": lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01),
}


def optimizer_steps(global_batch: int = 24, seed: int = 0, steps: int = 4, dtypes=("float32", "float64")) -> dict:
    """``{"OPTIMIZER / DTYPE": flat parameters (float64 list)}`` after ``steps`` steps of each of
    :data:`OPTIMIZERS` in each dtype, each from the same seeded model and batches (one process or N ranks)."""
    out = {}
    for name, make in OPTIMIZERS.items():
        for dtype in dtypes:
            torch_dtype = getattr(torch, dtype)
            g = torch.Generator().manual_seed(seed + 1)
            model = _model(seed).to(torch_dtype)
            model = runtime.wrap_model(model) if runtime.backend() else model
            opt = make(model.parameters())
            if runtime.backend():
                opt = runtime.wrap_optimizer(opt, model)
            for _ in range(steps):
                x = torch.randn(global_batch, 16, 4, generator=g).to(torch_dtype)
                y = torch.randint(0, 10, (global_batch,), generator=g)
                if runtime.backend():
                    x, y = runtime.shard(x, y)
                loss = torch.nn.functional.cross_entropy(model(patches=x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            inner = getattr(model, "module", model)
            out[f"{name} / {dtype}"] = np.concatenate(
                [p.detach().double().reshape(-1).numpy() for p in inner.parameters()]).tolist()
    return out


def one_step(global_batch: int = 32, seed: int = 0, lr: float = 0.1, bucket_cap_mb: float | None = None) -> list:
    """Parameters (flat, float64 list) after one SGD step on ``global_batch`` seeded examples.

    Inside a launched job every rank uses ``global_batch / world_size`` of them; outside one it is a
    plain single-process step. Deterministic given ``seed``.
    """
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(global_batch, 16, 4, generator=g)
    y = torch.randint(0, 10, (global_batch,), generator=g)
    model = runtime.wrap_model(_model(seed), bucket_cap_mb=bucket_cap_mb) if runtime.backend() else _model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    if runtime.backend():
        opt = runtime.wrap_optimizer(opt, model)
        x, y = runtime.shard(x, y)
    loss = torch.nn.functional.cross_entropy(model(patches=x), y)  # mean over the local batch
    opt.zero_grad()
    loss.backward()
    opt.step()
    inner = getattr(model, "module", model)
    return np.concatenate([p.detach().double().reshape(-1).numpy() for p in inner.parameters()]).tolist()
