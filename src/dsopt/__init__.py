"""dsopt: an interactive optimization workbench for deep learning.

The live-run core (Trainer, Recorder, Controls, callbacks), seeding and device helpers are
re-exported here; technique modules (schedules, data, models, ...) are imported from their
submodules, e.g. ``from dsopt.schedules import CosineRestarts``.
"""
from .callbacks import EVENTS, Callback, LambdaCallback
from .controls import AppliedChange, Controls, Knob, replay_callback
from .device import pick_device
from .recorder import Record, Recorder
from .seeding import rng_state, seed_everything, set_rng_state
from .state import State
from .trainer import Trainer, evaluate
from .validation import ParameterError, check_choice, check_number

__version__ = "0.1.0"

__all__ = [
    "EVENTS", "Callback", "LambdaCallback", "AppliedChange", "Controls", "Knob", "replay_callback",
    "pick_device", "Record", "Recorder", "rng_state", "seed_everything", "set_rng_state", "State",
    "Trainer", "evaluate", "ParameterError", "check_choice", "check_number", "__version__",
]
