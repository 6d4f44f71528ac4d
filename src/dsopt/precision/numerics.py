"""What fp16 and bf16 can represent, and which real gradients fall outside it.

fp16 has 5 exponent bits: normal numbers from 2**-14 to 65504, subnormals down to 2**-24 (with ever
fewer significant bits), and anything below half of that rounds to zero. bf16 keeps fp32's 8 exponent
bits (down to 2**-133) with only 8 significant bits. Gradients of a real model span many powers of
two, and a large share can sit below fp16's range: loss scaling multiplies them all by S (a shift of
log2 S on a log2 axis) to lift them in, without pushing the largest past 65504.

Fractions here are exact: values are multiplied by the scale and *cast* to the format, and a value
counts as underflowed when it is non-zero in fp32 and zero after the cast.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from dsopt.core.device import move_to
from dsopt.core.modes import eval_mode
from dsopt.core.trainer import call_model
from dsopt.util.validation import check_choice, check_number


@dataclass(frozen=True)
class FloatFormat:
    """A floating-point format's range: largest finite, smallest normal, smallest subnormal, mantissa bits."""

    name: str
    dtype: torch.dtype
    max: float
    min_normal: float
    min_subnormal: float
    mantissa_bits: int


def _format(name: str, dtype: torch.dtype) -> FloatFormat:
    fi = torch.finfo(dtype)
    # smallest subnormal = smallest normal x machine epsilon (2**-mantissa_bits)
    return FloatFormat(name, dtype, float(fi.max), float(fi.tiny), float(fi.tiny) * float(fi.eps),
                       int(round(-np.log2(float(fi.eps)))))


FORMATS = {"fp16": _format("fp16", torch.float16), "bf16": _format("bf16", torch.bfloat16),
           "fp32": _format("fp32", torch.float32)}


def format_table() -> list[dict]:
    """Every format's range as rows (log2 values too, for a log2 axis)."""
    return [{"format": f.name, "max": f.max, "min_normal": f.min_normal, "min_subnormal": f.min_subnormal,
             "log2_max": float(np.log2(f.max)), "log2_min_normal": float(np.log2(f.min_normal)),
             "log2_min_subnormal": float(np.log2(f.min_subnormal)), "mantissa_bits": f.mantissa_bits}
            for f in FORMATS.values()]


def representation(values: Any, fmt: str = "fp16", scale: float = 1.0) -> dict:
    """How ``values * scale`` fare when cast to ``fmt``: fractions of the NON-ZERO values that become
    zero (``underflow``), subnormal (``subnormal``, precision lost), inf (``overflow``) or stay normal.

    ``n`` counts the non-zero values (zeros are zero in every format and are left out).
    """
    f = FORMATS[check_choice("fmt", fmt, list(FORMATS))]
    scale = float(check_number("scale", scale, low=0.0, low_inclusive=False))
    v = torch.as_tensor(np.asarray(values, dtype=np.float64)).flatten()
    v = v[v != 0]
    n = int(v.numel())
    if n == 0:
        return {"format": fmt, "scale": scale, "n": 0, "underflow": 0.0, "subnormal": 0.0, "overflow": 0.0,
                "normal": 0.0}
    cast = (v * scale).to(torch.float32).to(f.dtype).to(torch.float64).abs()
    zero = int((cast == 0).sum())
    inf = int(torch.isinf(cast).sum())
    sub = int(((cast > 0) & (cast < f.min_normal)).sum())
    return {"format": fmt, "scale": scale, "n": n, "underflow": zero / n, "subnormal": sub / n, "overflow": inf / n,
            "normal": (n - zero - inf - sub) / n}


def log2_histogram(values: Any, lo: int = -64, hi: int = 20) -> dict:
    """Histogram of log2|v| over the non-zero values, one bin per power of two in ``[lo, hi)``.

    Values outside are clipped into the end bins. Returns ``edges`` (hi - lo + 1 powers), ``counts``,
    ``zeros`` (exact zeros, not binned) and ``n``.
    """
    v = np.abs(np.asarray(values, dtype=np.float64).ravel())
    nz = v[v > 0]
    e = np.clip(np.floor(np.log2(nz)), lo, hi - 1).astype(int) if nz.size else np.zeros(0, int)
    counts = np.bincount(e - lo, minlength=hi - lo)
    return {"edges": np.arange(lo, hi + 1), "counts": counts, "zeros": int(v.size - nz.size), "n": int(v.size)}


def collect_gradients(model: torch.nn.Module, batch: tuple, loss_fn: Callable, *,
                      device: str | torch.device | None = None, max_values: int = 200_000, seed: int = 0) -> dict:
    """True (fp32) gradient magnitudes of one backward pass of ``model`` on ``batch``.

    ``weights``: |dL/dθ| of every parameter entry; ``activations``: |dL/dy| of the output of every
    leaf module (Linear, LayerNorm, Embedding, ...) -- the tensors an fp16 backward computes and that
    underflow first. At most ``max_values`` of each (a seeded uniform sample), as float32 NumPy
    arrays. Computed in eval mode (no dropout, so no random number is drawn and a run that goes on
    afterwards is unchanged) and without autocast; the model's ``.grad`` and modes are restored.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    acts: list[torch.Tensor] = []

    def capture(_module, _inp, out):
        if isinstance(out, torch.Tensor) and out.requires_grad and out.is_floating_point():
            out.register_hook(lambda g: acts.append(g.detach().abs().flatten().float().cpu()))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(capture) for m in leaves]
    saved = {p: p.grad for p in model.parameters()}
    try:
        for p in model.parameters():
            p.grad = None
        inputs, targets = move_to(batch[0], device), move_to(batch[1], device)
        with eval_mode(model), torch.autocast(device.type, enabled=False):
            loss = loss_fn(call_model(model, inputs), targets)
        loss.backward()
        weights = [p.grad.detach().abs().flatten().float().cpu() for p in model.parameters() if p.grad is not None]
    finally:
        for h in handles:
            h.remove()
        for p, g in saved.items():
            p.grad = g
    gen = torch.Generator().manual_seed(seed)

    def sample(parts):
        x = torch.cat(parts) if parts else torch.zeros(0)
        if x.numel() > max_values:
            x = x[torch.randperm(x.numel(), generator=gen)[:max_values]]
        return x.numpy().astype(np.float32)

    return {"weights": sample(weights), "activations": sample(acts), "loss": float(loss.detach())}


def underflow_table(grads: dict, scales: list[float], fmt: str = "fp16") -> list[dict]:
    """:func:`representation` of each kind of gradient in ``grads`` at each scale, as rows."""
    rows = []
    for kind in ("activations", "weights"):
        if kind in grads:
            for s in scales:
                rows.append({"gradients": kind, **representation(grads[kind], fmt, s)})
    return rows
