"""dsopt: an interactive optimization workbench for deep learning.

Layout (each folder's rule is in docs/CONTRACTS.md and enforced by tests/test_layout.py):

* ``util/``  atomic writes, parameter validation            (imports nothing else of dsopt)
* ``core/``  the live run: Trainer, State, callbacks, Controls, Recorder, checkpoints, seeding, device
* ``models/``, ``data/`` (datasets, splits, tasks), ``metrics/``, ``stats/`` (shared building blocks)
* technique packages, pure (no plotting, no data loading): ``lr/``, ``pruning/``, ``weighting/``, ...
* ``studies/``  one controlled measurement per chapter (+ ``jobs``, the cached resumable runner)
* ``chapters/`` the chapter registry, the papermill runner, ``dsopt lab``'s notebook copy
* ``cli/``      the ``dsopt`` command line (may import anything in dsopt)

The live-run core's names are re-exported here (``from dsopt import Trainer, seed_everything``),
loaded lazily so that ``import dsopt`` (and the ``dsopt`` command) does not import torch.
"""
from __future__ import annotations

__version__ = "0.1.0"

#: name -> module that defines it (imported on first access, PEP 562).
_EXPORTS = {
    "EVENTS": "dsopt.core.callbacks", "Callback": "dsopt.core.callbacks", "LambdaCallback": "dsopt.core.callbacks",
    "StepHooks": "dsopt.core.callbacks",
    "AppliedChange": "dsopt.core.controls", "Controls": "dsopt.core.controls", "Knob": "dsopt.core.controls",
    "replay_callback": "dsopt.core.controls", "pick_device": "dsopt.core.device", "Record": "dsopt.core.recorder",
    "Recorder": "dsopt.core.recorder", "rng_state": "dsopt.core.seeding", "seed_everything": "dsopt.core.seeding",
    "set_rng_state": "dsopt.core.seeding", "State": "dsopt.core.state", "Trainer": "dsopt.core.trainer",
    "evaluate": "dsopt.core.trainer", "ParameterError": "dsopt.util.validation",
    "check_choice": "dsopt.util.validation", "check_number": "dsopt.util.validation",
}

__all__ = [*_EXPORTS, "__version__"]


def _load(module: str):
    """Import ``module`` (a value of ``_EXPORTS``) with a plain import statement, so that
    tests/test_layout.py sees every module this package depends on."""
    if module == "dsopt.core.callbacks":
        import dsopt.core.callbacks as loaded
    elif module == "dsopt.core.controls":
        import dsopt.core.controls as loaded
    elif module == "dsopt.core.device":
        import dsopt.core.device as loaded
    elif module == "dsopt.core.recorder":
        import dsopt.core.recorder as loaded
    elif module == "dsopt.core.seeding":
        import dsopt.core.seeding as loaded
    elif module == "dsopt.core.state":
        import dsopt.core.state as loaded
    elif module == "dsopt.core.trainer":
        import dsopt.core.trainer as loaded
    elif module == "dsopt.util.validation":
        import dsopt.util.validation as loaded
    else:
        raise ImportError(f"{module} is not among dsopt's lazy exports")
    return loaded


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dsopt' has no attribute {name!r}")
    value = getattr(_load(module), name)
    globals()[name] = value
    return value


def load_ipython_extension(ip) -> None:
    """``%load_ext dsopt``: register dsopt's magics (``%%distributed``, chapter 06); torch is not imported."""
    from dsopt.distributed.magic import load_ipython_extension as load

    load(ip)


def __dir__():
    return sorted(__all__)
