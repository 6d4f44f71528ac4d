"""Mixed precision (chapter 05's technique): modes, dynamic loss scaling, memory accounting, numerics.

``amp``: the precision modes (fp32 / bf16 autocast / fp16 autocast + loss scaling) through ``torch.amp``
with the device type, and a probe of what a device really supports; ``scaling``: GradScaler's update
rule as a pure function and its validated parameters; ``callback``: :class:`MixedPrecision`, the Trainer's precision
switch (live knobs, per-step loss scale / overflow / gradient norm records, scaler state in checkpoints);
``memory``: parameters, gradients, optimizer state and saved-for-backward bytes per mode;
``numerics``: fp16/bf16 ranges, exact underflow fractions, gradient magnitudes of a real model.
No plotting, no data loading.
"""
from dsopt.precision.callback import RECORDS, GradientProbe, MixedPrecision
from dsopt.precision.memory import SavedTensorMeter, max_saving, memory_breakdown, optimizer_state_bytes, tensor_bytes
from dsopt.precision.amp import (
    MODES,
    PrecisionMode,
    autocast,
    autocast_support,
    check_supported,
    get_mode,
    supported_modes,
)
from dsopt.precision.numerics import (
    FORMATS,
    FloatFormat,
    collect_gradients,
    format_table,
    log2_histogram,
    representation,
    underflow_table,
)
from dsopt.precision.scaling import DEFAULTS, ScaleState, next_scale, scale_history, scaler_params

__all__ = [
    "MODES", "PrecisionMode", "get_mode", "autocast", "autocast_support", "check_supported", "supported_modes",
    "DEFAULTS", "ScaleState", "next_scale", "scale_history", "scaler_params", "MixedPrecision", "RECORDS",
    "GradientProbe",
    "SavedTensorMeter", "memory_breakdown", "max_saving", "optimizer_state_bytes", "tensor_bytes",
    "FORMATS", "FloatFormat", "format_table", "representation", "log2_histogram", "collect_gradients",
    "underflow_table",
]
