"""Automatic mixed precision (``torch.amp``) modes: fp32, bf16 autocast, fp16 autocast + dynamic loss
scaling -- and what a device supports.

Autocast comes from ``torch.amp.autocast(device_type, dtype)`` (the article's ``torch.cuda.amp`` API is
deprecated). It runs matmul-like ops in the low-precision dtype and keeps precision-sensitive ops
(losses, reductions) in fp32; parameters, gradients and optimizer state stay fp32 ("master weights").
bf16 has fp32's exponent range, so its gradients do not underflow and it needs no loss scaling; fp16's
range is tiny (smallest subnormal 2**-24), so fp16 needs a GradScaler.

Whether a device can autocast to a dtype is *probed* (a small linear layer under autocast must return
that dtype), because torch silently falls back to fp32 (with a warning) where a dtype is unsupported --
exactly what dsopt must not do.
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import dataclass

import torch

from dsopt.util.validation import ParameterError, check_choice

MODES = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class PrecisionMode:
    """One mode: its name, the autocast dtype (None = fp32, no autocast) and whether it scales the loss."""

    name: str
    dtype: torch.dtype | None
    scaled: bool
    doc: str


_MODES = {
    "fp32": PrecisionMode("fp32", None, False, "fp32 throughout (no autocast)"),
    "bf16": PrecisionMode("bf16", torch.bfloat16, False,
                          "bf16 autocast; no loss scaling (bf16 has fp32's exponent range)"),
    "fp16": PrecisionMode("fp16", torch.float16, True, "fp16 autocast + dynamic loss scaling (GradScaler)"),
}


def get_mode(name: str) -> PrecisionMode:
    """The :class:`PrecisionMode` called ``name`` (one of :data:`MODES`)."""
    return _MODES[check_choice("precision", name, MODES)]


def device_type_of(device: str | torch.device) -> str:
    """``"cuda:1"`` / ``torch.device("cuda", 1)`` -> ``"cuda"`` (what ``torch.amp`` wants)."""
    return torch.device(device).type


@functools.lru_cache(maxsize=None)
def _probe(device_type: str, dtype: torch.dtype) -> tuple[bool, str]:
    if not torch.amp.is_autocast_available(device_type):
        return False, f"torch {torch.__version__} has no autocast for device type {device_type!r}"
    try:  # explicit tensors, no nn.Linear: a probe must never draw from the global RNG (exact resume)
        w = torch.ones(4, 4, device=device_type, requires_grad=True)
        x = torch.ones(2, 4, device=device_type)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with torch.amp.autocast(device_type, dtype=dtype):
                out = torch.nn.functional.linear(x, w)
            out.float().sum().backward()
    except Exception as exc:  # a kernel missing for this dtype on this device
        return False, f"{type(exc).__name__}: {exc}"
    if out.dtype != dtype:
        why = "; ".join(str(w.message) for w in caught) or f"the output came back as {out.dtype}"
        return False, why
    return True, ""


def autocast_support(device: str | torch.device, dtype: torch.dtype) -> tuple[bool, str]:
    """``(True, "")`` when ``torch.amp.autocast(device type, dtype)`` really computes in ``dtype``;
    else ``(False, reason)``. Probed once per (device type, dtype) with a tiny forward and backward."""
    return _probe(device_type_of(device), dtype)


def check_supported(name: str, device: str | torch.device) -> PrecisionMode:
    """Return mode ``name`` if ``device`` can run it; else raise a :class:`ParameterError` saying why.

    fp16 on a device without fp16 autocast is refused with that reason instead of running fp32.
    """
    mode = get_mode(name)
    if mode.dtype is None:
        return mode
    ok, why = autocast_support(device, mode.dtype)
    if not ok:
        dt = device_type_of(device)
        others = ", ".join(m for m in supported_modes(device) if m != name)
        raise ParameterError("precision", f"precision={name!r} is not available on {dt} with torch "
                                          f"{torch.__version__}: {why}. Modes that run here: {others}")
    return mode


def supported_modes(device: str | torch.device) -> list[str]:
    """The modes ``device`` can run (fp32 always)."""
    return [m for m in MODES if _MODES[m].dtype is None or autocast_support(device, _MODES[m].dtype)[0]]


def autocast(name: str, device: str | torch.device) -> contextlib.AbstractContextManager:
    """The context that runs mode ``name`` on ``device``: ``torch.amp.autocast`` or a no-op for fp32."""
    mode = get_mode(name)
    if mode.dtype is None:
        return contextlib.nullcontext()
    return torch.amp.autocast(device_type_of(device), dtype=mode.dtype)
