"""Check an exported session (``control_schedule``) against the live run it will replay, before the run trains.

A panel's Export gives ``[[step, knob, value], ...]``; ``dsopt run NN -p control_schedule ...`` replays it in a
fresh run. The registry refuses unknown knob names before a kernel starts; this module checks the rest once the
run exists: every value against its knob's own validator and the joint constraints (in the order the replay
applies them, so ``base_lr`` lowered at step 40 and ``eta_min`` at step 80 are checked as the run will see
them), and every step against the run's length. Without it a bad value failed the replay mid-run and a step past
the end (10^20) was silently never applied.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dsopt.core.controls import STOP
from dsopt.util.validation import ParameterError



def check_control_schedule(run: Any, schedule: Sequence, *, name: str = "control_schedule",
                           epochs_parameter: str = "live_epochs") -> None:
    """Raise :class:`ParameterError` naming ``name`` when ``schedule`` cannot replay in ``run`` (a Trainer or a
    stream replay: anything with ``controls`` and ``state.total_steps``); nothing is changed in ``run``."""
    if not schedule:
        return
    from dsopt.core.controls import Controls

    controls = run.controls
    total = int(run.state.total_steps)
    sim = Controls()
    for knob in controls.knobs().values():
        sim.define(knob)
    for check in getattr(controls, "_constraints", ()):  # joint checks (eta_min <= base_lr): the same functions
        sim.add_constraint(check)
    sim.load_state_dict({"values": controls.values(), "history": []})  # start where the run starts
    steps: dict[int, dict[str, Any]] = {}
    for step, knob, value in schedule:
        step = int(step)
        if step > total:
            raise ParameterError(name, f"{name}: step {step} ({knob} = {value!r}) is past the run's last step "
                                       f"{total}, so it would never apply. The session was exported from a longer "
                                       f"run: set -p {epochs_parameter} to its length, or drop the entry")
        if knob == STOP:
            if value is not True:
                raise ParameterError(name, f"{name}: the entry [{step}, 'stop', {value!r}] must be true")
            continue
        steps.setdefault(step, {})[knob] = value
    for step in sorted(steps):
        try:
            sim.update(**steps[step])
        except ParameterError as exc:
            raise ParameterError(name, f"{name} at step {step}: {exc}") from None
        sim.apply_pending(step)
