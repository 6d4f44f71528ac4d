"""Learning-rate schedules (chapter 01's technique): pure functions of the fractional epoch.

``schedules``: SGDR restarts, warmup / cycle-decay / cycle-limit combinators, baselines, flat parameters;
``callback``: :class:`LRScheduleCallback` (drives the optimizer, live knobs);
``range_test``: the LR range test. No plotting, no data loading.
"""
from dsopt.lr.callback import LRScheduleCallback
from dsopt.lr.range_test import RangeTestResult, lr_range_test, suggest_lrs
from dsopt.lr.schedules import (
    DEFAULT_PARAMS,
    PARAM_NAMES,
    Constant,
    CosineRestarts,
    CycleDecay,
    CycleLimit,
    OneCycleCosine,
    Schedule,
    Warmup,
    params_of,
    restart_positions,
    schedule_from_params,
    validate_params,
)

__all__ = [
    "Schedule", "CosineRestarts", "CycleDecay", "CycleLimit", "Warmup", "Constant", "OneCycleCosine",
    "PARAM_NAMES", "DEFAULT_PARAMS", "validate_params", "schedule_from_params", "params_of", "restart_positions",
    "LRScheduleCallback", "RangeTestResult", "lr_range_test", "suggest_lrs",
]
