"""Live plotly figures in a panel, drawn by JupyterLab's plotly renderer inside an ipywidgets Output.

Why not plotly's ``FigureWidget``: it is an anywidget that ships plotly.js (4.9 MB) as its module and
gives the browser two seconds to load it. On a loaded machine that fails ("[anywidget] Failed to
initialize model."), and the figure stays blank or, once drawn, never receives another update (the
blank figures seen on re-running a panel cell, and a live plot that stopped moving). Its message
handlers also compare stored NumPy arrays with ``not value`` (``ValueError: The truth value of an
array ... is ambiguous``, logged on every slider move). A :class:`LiveFigure` is a plain
``go.Figure``: a panel changes its traces inside ``batch_update()`` (on the kernel's main thread) and
the whole figure is re-sent, as plotly's own JSON mimetype, to an ``Output`` widget; JupyterLab's
plotly renderer (part of the plotly package) draws it. No widget module to load, no state to race.

Every redraw re-sends the whole figure, so a figure fed while a run trains sets ``min_interval``: a
change inside ``batch_update()`` is drawn at once if the last drawing is at least that old, else it
waits (``stale``) for the next :meth:`LiveFigure.redraw` that is due (a panel's poll). A drawing a
person waits for (a key press, the end of a run) is ``redraw(force=True)`` or ``batch_update(force=True)``:
immediate. This is the panels' only drawing path and their only redraw throttle.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable

import ipywidgets as W
import plotly.graph_objects as go
import plotly.io as pio


class LiveFigure(go.Figure):
    """A ``go.Figure`` shown in ``self.widget`` (an ipywidgets Output) and re-drawn after each ``batch_update()``.

    ``height``: the drawing's height in px (default: the figure's, else 360); the Output keeps it as its
    minimum height, so the panel does not jump while a new drawing replaces the old one.
    ``min_interval``: seconds between two unforced drawings (0: every change is drawn at once).
    ``clock``: seconds, monotonic (injected by tests).
    """

    def __init__(self, figure=None, *, height: int | None = None, min_interval: float = 0.0,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(figure)
        self._min_interval = float(min_interval)
        self._clock = clock
        self._drawn_at: float | None = None
        self._stale = False
        h = int(height or self.layout.height or 360)
        if self.layout.height is None:
            self.layout.height = h
        # a little above the drawing's height: replacing the drawing then never changes the cell's height
        self._output = W.Output(layout=W.Layout(width="100%", min_height=f"{h + 12}px"))
        self._depth = 0
        self._renders = 0
        self.render()

    @property
    def renders(self) -> int:
        """How many times the figure was sent to the browser."""
        return self._renders

    @property
    def widget(self) -> W.Output:
        """The ipywidgets Output that shows this figure (put it in the panel's box)."""
        return self._output

    @property
    def min_interval(self) -> float:
        return self._min_interval

    @property
    def stale(self) -> bool:
        """True when a change was held back by the throttle and is not drawn yet."""
        return self._stale

    def due(self) -> bool:
        """True when an unforced redraw would draw now (``min_interval`` s since the last drawing)."""
        return self._drawn_at is None or self._clock() - self._drawn_at >= self._min_interval

    @contextlib.contextmanager
    def batch_update(self, force: bool = False):
        """Change traces and layout inside the block; when it ends, :meth:`redraw` (throttled unless ``force``)."""
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._stale = True
                self.redraw(force)

    def redraw(self, force: bool = False) -> bool:
        """Draw pending changes if due (or ``force``: now, whatever the interval); True if drawn."""
        if not (force or self.due()):
            self._stale = True
            return False
        self.render()
        return True

    def render(self) -> None:
        """Send the current figure to the browser now (plotly's JSON mimetype, drawn by JupyterLab)."""
        # The figure's own dicts, not to_dict()'s deep copy (~5 ms on 2 cores for chapter 04's 21 traces): the
        # renderer turns them into JSON at once. Hidden traces (visible=False) are not sent: plotly would process
        # and not draw them (chapter 04 hides 12 of its 21), and the browser's redraw is most of a key press's time.
        shown = [trace for trace in self._data if trace.get("visible", True) is not False]
        bundle = pio.renderers["plotly_mimetype"].to_mimebundle({"data": shown, "layout": self._layout})
        bundle["text/plain"] = f"<plotly figure: {len(self.data)} traces>"
        self._output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
        self._renders += 1
        self._drawn_at = self._clock()
        self._stale = False
