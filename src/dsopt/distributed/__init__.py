"""Distributed training from notebook cells (chapter 06's technique): DDP and Horovod side by side.

* ``launcher``: :func:`launch` / :func:`start` N workers (cell code or an importable function), with
  rank-prefixed output, failure propagation, timeouts and no orphans (``supervisor`` + ``worker``);
* ``magic``: the ``%%distributed`` cell magic, loaded with ``%load_ext dsopt``;
* ``runtime``: what code inside a worker uses (rank, wrap_model, allreduce, streamed Recorder);
* ``cost_model``: the ring all-reduce cost model, its calibration and scaling-efficiency arithmetic;
* ``doctor``: which backends work here, and why not; ``install_horovod.sh``: the Horovod build recipe.

No plotting, no data loading. Importing this package does not import torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "launch": "dsopt.distributed.launcher", "start": "dsopt.distributed.launcher",
    "DistributedJob": "dsopt.distributed.launcher", "LaunchResult": "dsopt.distributed.launcher",
    "DistributedError": "dsopt.distributed.launcher", "WorkerFailed": "dsopt.distributed.launcher",
    "WorkerTimeout": "dsopt.distributed.launcher", "BackendUnavailable": "dsopt.distributed.launcher",
    "PauseUnsupported": "dsopt.distributed.launcher",
    "doctor": "dsopt.distributed.doctor", "load_ipython_extension": "dsopt.distributed.magic",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dsopt.distributed' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
