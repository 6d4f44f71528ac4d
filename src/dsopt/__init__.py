"""dsopt: an interactive optimization workbench for deep learning.

Layout (each folder's rule is in docs/CONTRACTS.md and enforced by tests/test_layout.py):

* ``util/``  atomic writes, parameter validation            (imports nothing else of dsopt)
* ``core/``  the live run: Trainer, State, callbacks, Controls, Recorder, checkpoints, seeding, device
* ``models/``, ``data/`` (datasets, splits, tasks), ``metrics/``, ``stats/`` (shared building blocks)
* technique packages, pure (no plotting, no data loading): ``lr/``, ``pruning/``, ``weighting/``, ...
* ``studies/``  one controlled measurement per chapter (+ ``jobs``, the cached resumable runner)
* ``chapters/`` the chapter registry, the papermill runner, the ``dsopt`` command line

The live-run core's names are re-exported here (``from dsopt import Trainer, seed_everything``),
loaded lazily so that ``import dsopt`` (and the ``dsopt`` command) does not import torch.
"""
from __future__ import annotations

from dsopt.util.lazy import lazy_exports

__version__ = "0.1.0"

#: name -> submodule that defines it (imported on first access, PEP 562; see dsopt.util.lazy).
_EXPORTS = {
    **dict.fromkeys(["EVENTS", "Callback", "LambdaCallback", "StepHooks"], "core.callbacks"),
    **dict.fromkeys(["AppliedChange", "Controls", "Knob", "replay_callback"], "core.controls"),
    "pick_device": "core.device",
    **dict.fromkeys(["Record", "Recorder"], "core.recorder"),
    **dict.fromkeys(["rng_state", "seed_everything", "set_rng_state"], "core.seeding"),
    "State": "core.state",
    **dict.fromkeys(["Trainer", "evaluate"], "core.trainer"),
    **dict.fromkeys(["ParameterError", "check_choice", "check_number"], "util.validation"),
}

__all__ = [*_EXPORTS, "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def load_ipython_extension(ip) -> None:
    """``%load_ext dsopt``: register dsopt's magics (``%%distributed``, chapter 06); torch is not imported."""
    from dsopt.distributed.magic import load_ipython_extension as load

    load(ip)
