"""Distributed training from notebook cells (chapter 06's technique): DDP and Horovod side by side.

* ``launcher``: :func:`launch` / :func:`start` N workers (cell code or an importable function), with
  rank-prefixed output, failure propagation, timeouts and no orphans (``supervisor`` + ``worker``);
* ``magic``: the ``%%distributed`` cell magic, loaded with ``%load_ext dsopt``;
* ``runtime``: what code inside a worker uses (rank, wrap_model, allreduce, streamed Recorder);
* ``cost_model``: the ring all-reduce cost model, its calibration and scaling-efficiency arithmetic;
* ``doctor``: which backends work here, and why not (``from dsopt.distributed.doctor import doctor``; the
  package does not re-export the function, which has the submodule's name);
* ``install_horovod.sh``: the Horovod build recipe.

No plotting, no data loading. Importing this package does not import torch.
"""
from __future__ import annotations

from dsopt.util.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["launch", "start", "DistributedJob", "LaunchResult", "DistributedError", "WorkerFailed",
                     "WorkerTimeout", "BackendUnavailable", "PauseUnsupported"], "launcher"),
    "load_ipython_extension": "magic",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
