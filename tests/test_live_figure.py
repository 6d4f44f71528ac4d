"""LiveFigure, the panels' one drawing path: its redraw throttle (``min_interval``) on an injected clock."""
from __future__ import annotations

import plotly.graph_objects as go

from dsopt_widgets.figure import LiveFigure


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def figure(clock, min_interval=2.0) -> LiveFigure:
    fig = LiveFigure(go.Figure(go.Scatter(x=[], y=[])), min_interval=min_interval, clock=clock)
    assert fig.renders == 1 and not fig.stale  # drawn once when made
    return fig


def drawn_x(fig: LiveFigure) -> list:
    """The x values of the drawing the browser was last sent."""
    bundle = fig.widget.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    return list(bundle["data"][0].get("x", []))


def test_changes_within_the_interval_wait_and_are_drawn_once_due():
    clock = Clock()
    fig = figure(clock)
    clock.t += 0.5
    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = [1], [1]
    assert fig.renders == 1 and fig.stale and drawn_x(fig) == []  # held back: 0.5 s < 2 s
    clock.t += 1.0
    assert not fig.due() and fig.redraw() is False and fig.renders == 1
    clock.t += 0.5  # 2 s since the last drawing
    assert fig.due() and fig.redraw() is True
    assert fig.renders == 2 and not fig.stale and drawn_x(fig) == [1]


def test_a_change_after_the_interval_is_drawn_at_once():
    clock = Clock()
    fig = figure(clock)
    clock.t += 2.0
    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = [1, 2], [1, 2]
    assert fig.renders == 2 and drawn_x(fig) == [1, 2]
    clock.t += 0.1  # the interval counts from this drawing
    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = [1, 2, 3], [1, 2, 3]
    assert fig.renders == 2 and drawn_x(fig) == [1, 2]


def test_a_forced_redraw_is_immediate_and_restarts_the_interval():
    clock = Clock()
    fig = figure(clock)
    clock.t += 0.01
    with fig.batch_update(force=True):  # a key press, the end of a run
        fig.data[0].x, fig.data[0].y = [5], [5]
    assert fig.renders == 2 and drawn_x(fig) == [5]
    clock.t += 1.99
    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = [5, 6], [5, 6]
    assert fig.renders == 2 and fig.stale
    assert fig.redraw(force=True) and fig.renders == 3 and drawn_x(fig) == [5, 6]


def test_nested_updates_draw_once_and_no_interval_draws_every_change():
    clock = Clock()
    fig = figure(clock, min_interval=0.0)
    with fig.batch_update():
        with fig.batch_update():
            fig.data[0].x, fig.data[0].y = [1], [1]
        fig.layout.title.text = "t"
    assert fig.renders == 2
    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = [1, 2], [1, 2]
    assert fig.renders == 3 and fig.min_interval == 0.0
