"""Whole-number fields of the panels (issue 20 item 3), without a browser: what a person types reaches
Python as typed. "2.5" is refused with the range message (it reached the kernel as 25 through
ipywidgets' IntText), "1e3" is 1000 (it was 13), "-1" and "abc" are refused, and what Start/Restart/
Apply use is the number the field shows. Chapter 07's fields are tested in test_monitoring_panel.py,
the augmentation panel's seed and epochs (they need data) in test_augmentation_panel.py."""
from __future__ import annotations

import functools
import html

import ipywidgets as W
import pytest

from dsopt.data.tasks import make_task
from dsopt.studies.lr_restarts import live_trainer
from dsopt.util.validation import ParameterError
from dsopt_widgets import LRPanel

#: What a person typed -> what the field must answer: the int, or the end of the refusal.
TYPED = {"2.5": "got 2.5", "1e3": 1000, "-1": "got -1", "abc": "got 'abc'", " 7 ": 7, "40.0": 40}


@pytest.mark.parametrize("text, expected", TYPED.items())
def test_parse_whole_takes_the_number_typed_or_refuses_it(text, expected):
    from dsopt_widgets.fields import parse_whole

    if isinstance(expected, int):
        assert parse_whole("n", text, low=-5, high=10**6) == expected
    else:
        with pytest.raises(ParameterError) as exc:
            parse_whole("n", text, low=0, high=10**6)
        assert str(exc.value) == f"n must be an integer in [0, 1000000]; {expected}"
    with pytest.raises(ParameterError, match=r"n must be an integer in \[0, 64\]; got 1000$"):
        parse_whole("n", "1e3", low=0, high=64)  # out of range: refused with the number it is, never 13


def refusals(field, act, message, prefix: str, name: str, range_: str, thousand_ok: bool = False) -> None:
    """Type each bad value in ``field``; ``act()`` must refuse it with exactly the range message ("1e3" too,
    unless 1000 is in range: ``thousand_ok``)."""
    assert isinstance(field, W.Text)  # no browser-side filtering of '.', 'e' or '-'
    for text, got in (("2.5", "2.5"), ("1e3", "1000"), ("-1", "-1"), ("abc", "'abc'")):
        if text == "1e3" and thousand_ok:
            continue
        field.value = text
        assert not act(), f"{text!r} was accepted"
        said = html.unescape(message())
        assert f"{prefix}: {name} must be an integer in {range_}; got {got}<" in said, said


# -- chapter 06: workers ---------------------------------------------------------------------------------
def test_distributed_workers_field_refuses_non_integers_and_launches_what_it_shows():
    from dsopt_widgets.distributed_panel import DistributedPanel

    p = DistributedPanel({"scale": "tiny"}, horovod_ok=False)
    refusals(p.workers, lambda: p.start() is not None, lambda: p.message.value, "not launched", "workers", "[1, 64]")
    assert p.job is None  # nothing was launched
    p.workers.value = "3"
    assert p.launch_values()["workers"] == 3  # what Start launches is what the field shows


# -- the run budget of every RunPanel (05's epochs, 07's windows, ...) -------------------------------------
@pytest.fixture
def lr_panel(monkeypatch):
    monkeypatch.setenv("DSOPT_FRONTEND", "1")  # a panel as in JupyterLab: not started until Start
    task = make_task("digits", scale="tiny", seed=0)
    p = LRPanel(factory=functools.partial(live_trainer, task, {"base_lr": 1e-3, "T_0": 5, "T_mult": 2}, seed=0),
                epochs=1, interactive_epochs=3)
    yield p
    p.close()


def test_budget_field_refuses_non_integers_on_restart_and_start(lr_panel):
    p = lr_panel
    first = p.trainer
    assert p.budget.value == "3" == str(first.max_epochs)  # the field shows the run's budget
    refusals(p.budget, p.restart, lambda: p.message.value, "not restarted", "epochs", "[1, 200]")
    refusals(p.budget, lambda: (p.start(), p.trainer is not first or first.running)[1], lambda: p.message.value,
              "not started", "epochs", "[1, 200]")
    assert p.trainer is first and p.run_state() == "not started"


def test_start_and_restart_run_the_budget_the_field_shows(lr_panel):
    p = lr_panel
    p.budget.value = "2"
    p.start()  # the box was changed before Start: a fresh run of 2 epochs, not the 3 it was built with
    assert p.trainer.max_epochs == 2 and "a fresh run of 2 epochs" in p.message.value
    p.budget.value = "1e0"
    assert p.restart() is True and p.trainer.max_epochs == 1
    assert "a fresh run of 1 epochs" in p.message.value


# -- chapter 05: growth interval -----------------------------------------------------------------------------
def test_precision_growth_interval_field():
    from test_core import digits_problem

    from dsopt import Trainer
    from dsopt.precision import MixedPrecision
    from dsopt_widgets import MixedPrecisionPanel

    model, opt, loss, train, val = digits_problem(0)
    t = Trainer(model, opt, loss, train, val, max_epochs=1, progress=False, callbacks=[MixedPrecision("fp32")])
    p = MixedPrecisionPanel(t)
    refusals(p.growth_interval, lambda: p.apply() is not None, lambda: p.message.value, "not applied",
              "growth_interval", "[1, 1000000000]", thousand_ok=True)
    p.growth_interval.value = "1e3"
    assert p.apply()["growth_interval"] == 1000 and t.controls.pending()["growth_interval"] == 1000
