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
"""
from __future__ import annotations

import contextlib

import ipywidgets as W
import plotly.graph_objects as go
import plotly.io as pio


class LiveFigure(go.Figure):
    """A ``go.Figure`` shown in ``self.widget`` (an ipywidgets Output) and re-drawn after each ``batch_update()``.

    ``height``: the drawing's height in px (default: the figure's, else 360); the Output keeps it as its
    minimum height, so the panel does not jump while a new drawing replaces the old one.
    """

    def __init__(self, figure=None, *, height: int | None = None):
        super().__init__(figure)
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

    @contextlib.contextmanager
    def batch_update(self):
        """Change traces and layout inside the block; the figure is re-drawn once when it ends."""
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.render()

    def render(self) -> None:
        """Send the current figure to the browser (plotly's JSON mimetype, drawn by JupyterLab)."""
        bundle = pio.renderers["plotly_mimetype"].to_mimebundle(self.to_dict())
        bundle["text/plain"] = f"<plotly figure: {len(self.data)} traces>"
        self._output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
        self._renders += 1
