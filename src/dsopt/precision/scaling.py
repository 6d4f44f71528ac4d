"""Dynamic loss scaling: the update rule as a pure function, its four parameters, and previews.

fp16 gradients underflow to zero below 2**-24. Multiplying the loss by a scale S multiplies every
gradient of the backward pass by S and lifts small ones into range; the optimizer then sees the
gradients divided by S again ("unscaled"). Too large an S overflows to inf: that step is skipped and S
is multiplied by ``backoff_factor``; after ``growth_interval`` consecutive good steps S is multiplied by
``growth_factor``. :func:`next_scale` is that rule exactly as ``torch.amp.GradScaler`` applies it
(``torch._amp_update_scale_``), so a preview of a scale history, or a test of the scaler's
bookkeeping, does not need a training run.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Iterable

from dsopt.util.validation import ParameterError, check_number

#: GradScaler's defaults.
DEFAULTS = {"init_scale": 2.0**16, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000}
MAX_SCALE = 2.0**64
#: Smallest magnitude that rounds to inf in float32 (max float32 + half an ulp).
FLOAT32_OVERFLOW = 3.4028235677973366e38


def check_init_scale(value) -> float:
    return float(check_number("init_scale", value, low=0.0, high=MAX_SCALE, low_inclusive=False))


def check_growth_factor(value) -> float:
    return float(check_number("growth_factor", value, low=1.0, high=1024.0, low_inclusive=False))


def check_backoff_factor(value) -> float:
    return float(check_number("backoff_factor", value, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False))


def check_growth_interval(value) -> int:
    return int(check_number("growth_interval", value, low=1, high=10**9, integer=True))


VALIDATORS = {"init_scale": check_init_scale, "growth_factor": check_growth_factor,
              "backoff_factor": check_backoff_factor, "growth_interval": check_growth_interval}
DOCS = {
    "init_scale": "loss scale to (re)start from; set live, it replaces the current scale",
    "growth_factor": "scale multiplier after growth_interval steps without overflow (> 1)",
    "backoff_factor": "scale multiplier after an overflow, whose step is skipped (in (0, 1))",
    "growth_interval": "consecutive non-overflowing steps before the scale grows",
}


def scaler_params(**params) -> dict:
    """Validated scaler parameters (missing ones take GradScaler's defaults)."""
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        key = sorted(unknown)[0]
        raise ParameterError(key, f"{key} is not a loss-scaler parameter; parameters: {', '.join(DEFAULTS)}")
    return {k: VALIDATORS[k](params.get(k, DEFAULTS[k])) for k in DEFAULTS}


@dataclass(frozen=True)
class ScaleState:
    """The scaler's two numbers: the current scale and the count of consecutive good steps."""

    scale: float
    growth_tracker: int = 0


def _f32(x: float) -> float:
    """Round to float32, as GradScaler keeps its scale in a float32 tensor (beyond its range: inf)."""
    if not math.isfinite(x) or abs(x) >= FLOAT32_OVERFLOW:
        return math.copysign(math.inf, x) if not math.isnan(x) else x
    return struct.unpack("f", struct.pack("f", x))[0]


def next_scale(state: ScaleState, found_inf: bool, *, growth_factor: float, backoff_factor: float,
               growth_interval: int) -> ScaleState:
    """One update of the dynamic loss scale, after one optimizer step (skipped iff ``found_inf``).

    Overflow: scale x backoff_factor, tracker 0. Otherwise tracker + 1; when it reaches
    ``growth_interval`` the scale grows by ``growth_factor`` (only if the result is finite in float32)
    and the tracker restarts at 0. Arithmetic in float32, like torch.
    """
    if found_inf:
        return ScaleState(_f32(state.scale * backoff_factor), 0)
    successful = state.growth_tracker + 1
    if successful == growth_interval:
        grown = _f32(state.scale * growth_factor)
        if math.isfinite(grown):
            return ScaleState(grown, 0)
        return ScaleState(state.scale, 0)
    return ScaleState(state.scale, successful)


def scale_history(overflows: Iterable[bool], *, init_scale: float = DEFAULTS["init_scale"],
                  growth_factor: float = DEFAULTS["growth_factor"], backoff_factor: float = DEFAULTS["backoff_factor"],
                  growth_interval: int = DEFAULTS["growth_interval"]) -> list[float]:
    """The scale each step runs with, given which steps overflow: ``[S_0, S_1, ...]`` (S_0 = init_scale)."""
    p = scaler_params(init_scale=init_scale, growth_factor=growth_factor, backoff_factor=backoff_factor,
                      growth_interval=growth_interval)
    state, out = ScaleState(_f32(p["init_scale"])), []
    for inf in overflows:
        out.append(state.scale)
        state = next_scale(state, bool(inf), growth_factor=p["growth_factor"], backoff_factor=p["backoff_factor"],
                           growth_interval=p["growth_interval"])
    return out

