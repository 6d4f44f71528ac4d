"""Where training memory goes, per precision mode, on any device.

A training step holds four kinds of memory: parameters, gradients, optimizer state (Adam: two fp32
moments per parameter) and the tensors autograd saves for backward ("activations"). Autocast changes
only the last: parameters, gradients and optimizer state stay fp32 master copies. The activations are
measured, not estimated: :class:`SavedTensorMeter` wraps the forward in
``torch.autograd.graph.saved_tensors_hooks`` and adds up the distinct storages autograd keeps.
Saved tensors that *are* parameters are already counted under parameters; the low-precision copies
of parameters that autocast makes and saves are counted apart ("parameter copies"): they are memory
AMP adds. On CUDA the device's own peak (``torch.cuda.max_memory_allocated``) is reported beside.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from dsopt.core.device import move_to
from dsopt.core.trainer import call_model
from dsopt.precision.amp import autocast, check_supported

#: The parts of a training step's memory, in the order they are stacked in plots.
PARTS = ("parameters", "gradients", "optimizer_state", "activations", "parameter_copies")
#: autograd nodes that only re-view their single input (followed when looking for a parameter's cast).
_VIEW_NODES = ("TBackward", "TransposeBackward", "ViewBackward", "PermuteBackward", "ExpandBackward",
               "UnsafeViewBackward", "ReshapeAliasBackward", "AliasBackward", "SliceBackward", "SelectBackward")


def _storage_key(t: torch.Tensor) -> tuple:
    s = t.untyped_storage()
    return (str(t.device), s.data_ptr(), s.nbytes())


def _producer(t: torch.Tensor) -> str:
    """The op that made ``t`` (its autograd node without "Backward0"), looking through views; "input" for leaves."""
    node = t.grad_fn
    while node is not None:
        name = type(node).__name__
        parents = [n for n, _ in node.next_functions if n is not None]
        if not name.startswith(_VIEW_NODES) or len(parents) != 1:
            return name.split("Backward")[0]
        node = parents[0]
    return "input"


def _is_parameter_cast(t: torch.Tensor, depth: int = 4) -> bool:
    """True when ``t`` is (a view of) a dtype cast of a leaf tensor: autocast's copy of a weight."""
    node = t.grad_fn
    for _ in range(depth):
        if node is None:
            return False
        parents = [n for n, _ in node.next_functions if n is not None]
        name = type(node).__name__
        if name.startswith("ToCopyBackward"):
            return len(parents) == 1 and type(parents[0]).__name__ == "AccumulateGrad"
        if len(parents) != 1 or not name.startswith(_VIEW_NODES):
            return False
        node = parents[0]
    return False


@dataclass
class SavedTensorMeter:
    """Measure the tensors autograd saves for backward while the context is active.

    Each distinct storage is counted once, with its full size (a saved view keeps its whole base
    alive). ``exclude`` are tensors not to count as activations (the model's parameters; their
    storages go to ``parameter_bytes``).
    """

    exclude: Iterable[torch.Tensor] = ()
    activation_bytes: int = 0
    parameter_copy_bytes: int = 0
    parameter_bytes: int = 0
    by_dtype: dict = field(default_factory=dict)
    by_op: dict = field(default_factory=dict)
    n_saved: int = 0

    def __post_init__(self):
        self._params = {_storage_key(p) for p in self.exclude}
        self._seen: set = set()

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        self.n_saved += 1
        key = _storage_key(t)
        if key in self._seen:
            return t
        self._seen.add(key)
        nbytes = key[2]
        if key in self._params:
            self.parameter_bytes += nbytes
        elif _is_parameter_cast(t):
            self.parameter_copy_bytes += nbytes
        else:
            self.activation_bytes += nbytes
            name = str(t.dtype).removeprefix("torch.")
            self.by_dtype[name] = self.by_dtype.get(name, 0) + nbytes
            op = _producer(t)
            self.by_op[op] = self.by_op.get(op, 0) + nbytes
        return t

    @staticmethod
    def _unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def __enter__(self) -> "SavedTensorMeter":
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._ctx.__exit__(*exc)


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of distinct storages among ``tensors`` (shared storages counted once)."""
    seen, total = set(), 0
    for t in tensors:
        key = _storage_key(t)
        if key not in seen:
            seen.add(key)
            total += key[2]
    return total


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor in the optimizer's state (Adam: exp_avg, exp_avg_sq, step)."""
    return tensor_bytes(v for st in optimizer.state.values() for v in st.values() if isinstance(v, torch.Tensor))


def memory_breakdown(model: torch.nn.Module, batch: tuple[Any, Any], loss_fn: Callable, precision: str = "fp32", *,
                     optimizer_factory: Callable | None = None, device: str | torch.device | None = None) -> dict:
    """Bytes of one training step of a COPY of ``model`` on ``batch`` in ``precision`` (the model is untouched).

    Returns ``parameters``, ``gradients``, ``optimizer_state`` (after one step of
    ``optimizer_factory(params)``, default AdamW), ``activations`` (saved for backward, parameters
    excluded), ``parameter_copies`` (autocast's low-precision weight copies saved for backward),
    ``total`` (their sum), ``activations_by_dtype``, ``activations_by_op`` (bytes per producing op, looking
    through views, largest first), ``n_saved`` (tensors saved, before de-duplication)
    and ``device_peak`` (CUDA ``max_memory_allocated`` over the step; None on other devices, which
    keep no allocator statistics).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    check_supported(precision, device)
    m = copy.deepcopy(model).to(device).train()
    params = [p for p in m.parameters() if p.requires_grad]
    opt = (optimizer_factory or (lambda ps: torch.optim.AdamW(ps, lr=1e-4)))(params)
    inputs, targets = move_to(batch[0], device), move_to(batch[1], device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    meter = SavedTensorMeter(exclude=list(m.parameters()) + list(m.buffers()))
    with meter, autocast(precision, device):
        loss = loss_fn(call_model(m, inputs), targets)
    loss.float().backward()
    grads = tensor_bytes(p.grad for p in params if p.grad is not None)
    opt.step()
    peak = None
    if cuda:
        torch.cuda.synchronize(device)
        peak = int(torch.cuda.max_memory_allocated(device))
    out = {
        "precision": precision,
        "parameters": tensor_bytes(m.parameters()),
        "gradients": grads,
        "optimizer_state": optimizer_state_bytes(opt),
        "activations": meter.activation_bytes,
        "parameter_copies": meter.parameter_copy_bytes,
        "activations_by_dtype": dict(meter.by_dtype),
        "activations_by_op": dict(sorted(meter.by_op.items(), key=lambda kv: -kv[1])),
        "n_saved": meter.n_saved,
        "device_peak": peak,
    }
    out["total"] = sum(out[k] for k in PARTS)
    return out


def max_saving(breakdown_fp32: dict) -> float:
    """Upper bound on the fraction of the accounted total AMP can save: all activations halved, nothing else.

    (Halving is the best a 16-bit format does to a 32-bit tensor; master weights, gradients and Adam
    state do not shrink.) "40 % less memory" therefore needs activations >= 80 % of the total.
    """
    total = breakdown_fp32["total"]
    return 0.5 * breakdown_fp32["activations"] / total if total else float("nan")
