"""An exported session (`-p control_schedule`) is checked before anything trains: unknown knobs before a kernel
starts (the registry), values and steps against the live run itself once it is built (dsopt.studies.replay)."""
from __future__ import annotations

import pytest

from dsopt.chapters.registry import LIVE_KNOBS, get_chapter
from dsopt.util.validation import ParameterError


def test_the_registry_knows_each_live_runs_knobs_as_the_library_defines_them():
    from dsopt.lr.schedules import PARAM_NAMES
    from dsopt.precision.scaling import DEFAULTS
    from dsopt.studies.monitoring.live import _VALIDATORS
    from dsopt.weighting.callback import _KNOB_PARAMS

    assert LIVE_KNOBS == {"01": PARAM_NAMES, "04": ("scheme", *_KNOB_PARAMS), "05": ("precision", *DEFAULTS),
                          "07": tuple(_VALIDATORS)}


@pytest.mark.parametrize("chapter, bad", [("01", "bse_lr"), ("04", "gama"), ("05", "scale"), ("07", "lamda")])
def test_an_unknown_knob_is_refused_up_front_naming_the_known_ones(chapter, bad):
    with pytest.raises(ParameterError) as err:
        get_chapter(chapter).validate({"control_schedule": [[0, LIVE_KNOBS[chapter][0], None], [12, bad, 1]]})
    assert f"no knob {bad!r} (at step 12)" in str(err.value) and LIVE_KNOBS[chapter][1] in str(err.value)
    get_chapter(chapter).validate({"control_schedule": [[3, LIVE_KNOBS[chapter][-1], 1], [9, "stop", True]]})
    with pytest.raises(ParameterError, match="triples"):
        get_chapter(chapter).validate({"control_schedule": [[True, LIVE_KNOBS[chapter][0], 1]]})


def test_cli_refuses_a_misspelt_knob_before_any_kernel(capsys):
    from dsopt.cli import main

    rc = main(["run", "01", "-p", "tasks", "digits", "-p", "control_schedule", '[[3, "bse_lr", 0.01]]'])
    assert rc == 2 and "no knob 'bse_lr'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def live_run():
    from dsopt.studies.catalog import get_study

    return get_study("01").live({"scale": "tiny"})


@pytest.mark.parametrize("schedule, message", [
    ([[3, "base_lr", -1.0]], "control_schedule at step 3: "),
    ([[10**20, "base_lr", 1e-3]], "step 100000000000000000000 (base_lr = 0.001) is past the run's last step"),
    ([[2, "eta_min", 0.5]], "control_schedule at step 2: "),                  # eta_min above base_lr (1e-3)
    ([[2, "base_lr", 1e-2], [5, "eta_min", 5e-3], [7, "base_lr", 1e-3]], "control_schedule at step 7: "),  # in order
    ([[4, "stop", "yes"]], "must be true"),
])
def test_values_and_steps_are_checked_against_the_run_in_the_order_they_apply(live_run, schedule, message):
    from dsopt.studies.replay import check_control_schedule

    trainer = live_run(epochs=2, control_schedule=schedule)
    with pytest.raises(ParameterError) as err:
        check_control_schedule(trainer, schedule)
    assert message in str(err.value) and str(err.value).startswith("control_schedule")
    assert trainer.controls.pending() == {} and trainer.state.step == 0  # the run itself was not touched


def test_a_good_session_passes_and_a_panel_refuses_a_bad_one_before_training(live_run):
    from dsopt.studies.replay import check_control_schedule
    from dsopt_widgets import LRPanel

    good = [[2, "base_lr", 1e-2], [2, "eta_min", 5e-3], [6, "base_lr", 8e-3], [8, "stop", True]]  # 8 steps
    check_control_schedule(live_run(epochs=2, control_schedule=good), good)
    built = []

    def factory(**kw):
        built.append(live_run(**kw))
        return built[-1]

    with pytest.raises(ParameterError, match="past the run's last step"):
        LRPanel(factory=factory, epochs=2, control_schedule=[[10**6, "T_0", 3]])
    assert built and built[0].status == "idle", "the run never started"
