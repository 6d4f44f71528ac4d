"""What code running INSIDE a worker uses: rank, world size, wrapping, all-reduce, a streamed Recorder.

A cell run with ``%%distributed`` (or a function given to :func:`dsopt.distributed.launch`) finds the
process group already initialised by the worker bootstrap and uses this module (it is injected into
the cell as ``dist``) to stay backend-neutral:

* ``rank()``, ``world_size()``, ``backend()``, ``device()``;
* ``wrap_model(model)`` (DDP: ``DistributedDataParallel``; Horovod: broadcast rank 0's weights) and
  ``wrap_optimizer(opt, model)`` (Horovod: ``hvd.DistributedOptimizer``; DDP: unchanged), with the
  knobs ``bucket_cap_mb`` (DDP) and ``fusion_threshold_mb`` (Horovod, set before launch);
* ``allreduce_mean_(tensor)``, ``barrier()``, ``broadcast_(tensor)``;
* ``recorder()``: a :class:`~dsopt.core.recorder.Recorder` whose rows are also appended to
  ``rank{R}.records.jsonl`` in the run folder, which the kernel tails to feed the live panel;
* ``shard(inputs, targets)``: this rank's contiguous slice of a global batch.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from dsopt.core.recorder import Recorder

BACKENDS = ("ddp", "horovod")

_STATE: dict[str, Any] = {"initialised": False, "backend": None, "rank": 0, "world_size": 1, "device": "cpu",
                          "run_dir": None, "recorder": None}


class StreamingRecorder(Recorder):
    """A Recorder that also appends every row as one JSON line to ``path`` (flushed at once).

    The kernel reads the file by offset while the run goes on; rows are never rewritten, so a
    reader that stops at the last complete line sees a prefix of the log.
    """

    def __init__(self, path: str | os.PathLike, rank: int):
        super().__init__()
        self.path = Path(path)
        self.rank = rank
        self._fh = open(self.path, "a", buffering=1)

    def log(self, name: str, value: Any, *, step: int, epoch: int) -> None:
        super().log(name, value, step=step, epoch=epoch)
        row = self.rows[-1]
        self._fh.write(json.dumps({"step": row.step, "epoch": row.epoch, "name": row.name, "value": row.value,
                                   "time": time.time()}) + "\n")

    def close(self) -> None:
        self._fh.close()


def init(backend: str, *, run_dir: str | None = None, device: str = "cpu", timeout_s: float = 600.0) -> None:
    """Initialise the process group for ``backend`` from the launcher's environment (idempotent).

    DDP reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and either ``DSOPT_RENDEZVOUS_FILE`` (dsopt's launcher on
    one machine: a ``FileStore`` in the run folder, so nothing listens on the network) or ``MASTER_ADDR`` /
    ``MASTER_PORT`` (torch's TCPStore: several machines, or an outside launcher such as torchrun), and uses
    gloo on CPU, nccl on GPUs (each worker pins ``cuda:LOCAL_RANK`` before touching CUDA). Horovod reads what
    ``horovodrun --gloo`` set.
    """
    import datetime

    import torch

    if _STATE["initialised"]:
        return
    if backend == "ddp":
        import torch.distributed as td

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device == "cuda":
            torch.cuda.set_device(local_rank)
        kind, limit = "nccl" if device == "cuda" else "gloo", datetime.timedelta(seconds=timeout_s)
        store_file = os.environ.get("DSOPT_RENDEZVOUS_FILE")
        if store_file:  # dsopt's launcher on one machine: a file, not a TCP server listening on every interface
            size = int(os.environ["WORLD_SIZE"])
            td.init_process_group(kind, store=td.FileStore(store_file, size), rank=int(os.environ["RANK"]),
                                  world_size=size, timeout=limit)
        else:  # several machines (--nnodes), or an outside launcher such as torchrun
            td.init_process_group(kind, init_method="env://", timeout=limit)
        rank, size = td.get_rank(), td.get_world_size()
    elif backend == "horovod":
        import horovod.torch as hvd

        hvd.init()
        if device == "cuda":
            torch.cuda.set_device(hvd.local_rank())
        rank, size = hvd.rank(), hvd.size()
    else:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    _STATE.update(initialised=True, backend=backend, rank=rank, world_size=size,
                  device=f"cuda:{torch.cuda.current_device()}" if device == "cuda" else "cpu", run_dir=run_dir)


def shutdown() -> None:
    """Tear the process group down (the bootstrap calls this after the cell)."""
    rec = _STATE.get("recorder")
    if isinstance(rec, StreamingRecorder):
        rec.close()
    if _STATE["initialised"] and _STATE["backend"] == "ddp":
        import torch.distributed as td

        if td.is_initialized():
            td.destroy_process_group()
    elif _STATE["initialised"] and _STATE["backend"] == "horovod":
        import horovod.torch as hvd

        hvd.shutdown()
    _STATE.update(initialised=False, recorder=None)


def rank() -> int:
    return int(_STATE["rank"])


def world_size() -> int:
    return int(_STATE["world_size"])


def backend() -> str | None:
    return _STATE["backend"]


def device():
    import torch

    return torch.device(_STATE["device"])


def recorder() -> Recorder:
    """This rank's Recorder (streamed to the kernel through ``rank{R}.records.jsonl``)."""
    if _STATE["recorder"] is None:
        run_dir = _STATE["run_dir"]
        _STATE["recorder"] = (StreamingRecorder(Path(run_dir) / f"rank{rank()}.records.jsonl", rank())
                              if run_dir else Recorder())
    return _STATE["recorder"]


def mark(name: str) -> None:
    """Write a wall-clock timestamp ``name`` for this rank (e.g. ``first_step``, read by the benchmark)."""
    if _STATE["run_dir"]:
        path = Path(_STATE["run_dir"]) / f"rank{rank()}.marks.jsonl"
        with open(path, "a") as fh:
            fh.write(json.dumps({"name": name, "time": time.time()}) + "\n")


# -- collectives ----------------------------------------------------------------------------------
def barrier() -> None:
    if _STATE["backend"] == "ddp":
        import torch.distributed as td

        td.barrier()
    elif _STATE["backend"] == "horovod":
        import horovod.torch as hvd

        hvd.barrier()


def allreduce_mean_(tensor):
    """Average ``tensor`` over all ranks in place (returns it)."""
    if _STATE["backend"] == "ddp":
        import torch.distributed as td

        td.all_reduce(tensor, op=td.ReduceOp.SUM)
        tensor.div_(world_size())
    elif _STATE["backend"] == "horovod":
        import horovod.torch as hvd

        hvd.allreduce_(tensor, op=hvd.Average)
    return tensor


def allreduce_sum_(tensor):
    """Sum ``tensor`` over all ranks in place (the raw collective the all-reduce timings use)."""
    if _STATE["backend"] == "ddp":
        import torch.distributed as td

        td.all_reduce(tensor, op=td.ReduceOp.SUM)
    elif _STATE["backend"] == "horovod":
        import horovod.torch as hvd

        hvd.allreduce_(tensor, op=hvd.Sum)
    return tensor


def broadcast_(tensor, root: int = 0):
    if _STATE["backend"] == "ddp":
        import torch.distributed as td

        td.broadcast(tensor, src=root)
    elif _STATE["backend"] == "horovod":
        import horovod.torch as hvd

        hvd.broadcast_(tensor, root_rank=root)
    return tensor


def gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (on every rank)."""
    if _STATE["backend"] == "ddp":
        import torch.distributed as td

        out: list[Any] = [None] * world_size()
        td.all_gather_object(out, obj)
        return out
    if _STATE["backend"] == "horovod":
        import horovod.torch as hvd

        return hvd.allgather_object(obj)
    return [obj]


# -- model / optimizer wrapping ---------------------------------------------------------------------
def _world_of_one(state, bucket):
    """DDP communication hook for a world of one: the bucket already holds the average (its own gradient)."""
    import torch

    fut = torch.futures.Future()
    fut.set_result(bucket.buffer())
    return fut


def wrap_model(model, *, bucket_cap_mb: float | None = None):
    """Make ``model`` data-parallel. DDP: ``DistributedDataParallel`` (``bucket_cap_mb``: gradient bucket
    size, torch's default 25). Horovod: rank 0's weights broadcast to all; the model is returned as is.

    DDP's gradients are views into its buckets (``gradient_as_bucket_view``: no copy between the two each
    step), and a world of one skips the all-reduce of one rank (a hook that returns the bucket as it is): on
    2 CPU cores torch's DDP at N=1 cost 1.47x the plain step, most of it those two
    (benchmarks/distributed_training.py prints each part). The numbers are the same: the average over one rank
    is its own gradient."""
    model = model.to(device())
    if _STATE["backend"] == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        kw = {} if bucket_cap_mb is None else {"bucket_cap_mb": float(bucket_cap_mb)}
        ids = [device().index] if device().type == "cuda" else None
        ddp = DDP(model, device_ids=ids, gradient_as_bucket_view=True, **kw)
        if _STATE["world_size"] == 1:
            ddp.register_comm_hook(None, _world_of_one)
        return ddp
    if _STATE["backend"] == "horovod":
        import horovod.torch as hvd

        hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    return model


def wrap_optimizer(optimizer, model):
    """Horovod: ``hvd.DistributedOptimizer`` averaging gradients during backward (fusion threshold from
    ``HOROVOD_FUSION_THRESHOLD``, which the launcher sets); rank 0's optimizer state and hyperparameters on every
    rank. DDP: unchanged.

    A fresh optimizer (no state yet) gets only rank 0's hyperparameters: Horovod's ``broadcast_optimizer_state``
    first takes a zero-gradient ``step()`` to create the state, which moves the weights under weight decay and
    advances Adam's step count, so N Horovod workers (even one) differed from one process by up to 1.5e-2 after
    8 steps for Adam/AdamW and 1.5e-3 for SGD with weight decay, where DDP matches to float rounding. An
    optimizer that has state (a resumed run) is broadcast whole, with nothing to create.
    """
    if _STATE["backend"] == "horovod":
        import horovod.torch as hvd
        import torch

        opt = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters(), op=hvd.Average)
        if any(len(state) for state in optimizer.state.values()):
            hvd.broadcast_optimizer_state(opt, root_rank=0)
        else:
            groups = hvd.broadcast_object([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
                                          root_rank=0, name="dsopt.optimizer_hyperparameters")
            for group, rank0 in zip(opt.param_groups, groups):
                group.update(rank0)
        horovod_zero_grad = opt.zero_grad

        def zero_grad(set_to_none: bool = True) -> None:
            # Horovod 0.28.1's zero_grad() takes no argument (the Trainer passes set_to_none=True); it
            # checks for pending all-reduces, then calls torch's, whose default is set_to_none=True.
            horovod_zero_grad()
            if not set_to_none:
                for group in opt.param_groups:
                    for p in group["params"]:
                        if p.grad is None:
                            p.grad = torch.zeros_like(p)

        opt.zero_grad = zero_grad
        return opt
    return optimizer


def shard(inputs, targets, rank_: int | None = None, world: int | None = None):
    """Rank ``rank_``'s contiguous slice of a global batch (sizes must divide evenly).

    Every rank draws the same global batch (same seeded loader) and keeps its slice, so N workers
    with per-worker batch B see exactly the examples of one process with batch N*B.
    """
    r = rank() if rank_ is None else rank_
    n = world_size() if world is None else world
    size = int(targets.shape[0])
    if size % n:
        raise ValueError(f"global batch of {size} does not split evenly over {n} workers")
    per = size // n
    sl = slice(r * per, (r + 1) * per)
    if isinstance(inputs, dict):
        return {k: v[sl] for k, v in inputs.items()}, targets[sl]
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(v[sl] for v in inputs), targets[sl]
    return inputs[sl], targets[sl]


class ShardedLoader:
    """Wrap a loader of GLOBAL batches so that this rank sees only its slice of each (keeps ``len``).

    ``drop_last=True`` skips a final global batch smaller than the loader's ``batch_size`` (it would not
    split evenly); use it at every world size, 1 included, so that all arms train on the same batches.
    Exposes the wrapped loader's ``generator`` so the Trainer's exact-resume machinery still works.
    """

    def __init__(self, loader, rank_: int | None = None, world: int | None = None, drop_last: bool = False):
        self.loader = loader
        self.rank = rank() if rank_ is None else rank_
        self.world = world_size() if world is None else world
        self.drop_last = drop_last
        self.generator = getattr(loader, "generator", None)

    def __len__(self) -> int:
        if self.drop_last and getattr(self.loader, "batch_size", None):
            return len(self.loader.dataset) // self.loader.batch_size
        return len(self.loader)

    def __iter__(self):
        full = getattr(self.loader, "batch_size", None)
        for inputs, targets in self.loader:
            if self.drop_last and full and int(targets.shape[0]) != full:
                continue
            yield shard(inputs, targets, self.rank, self.world)
