"""What every dsopt panel shares: the message line, export of a session, live traces, display.

A panel subclass builds its own knobs and figures, then calls :meth:`Panel._bind` with its run (or
None). It provides ``widget()`` (the live ipywidgets box) and ``static_figure()`` (the headless
figure); for live traces it sets ``self.live`` (a FigureWidget) and ``self.live_names`` (the
Recorder metric feeding each of its traces, in trace order).
"""
from __future__ import annotations

import html
import json

import ipywidgets as W

from dsopt_widgets.frontend import has_frontend, show_static
from dsopt_widgets.live import RecorderFeed, poll


class Panel:
    """Base class of the panels: message line, Export, Recorder-driven traces and ``show()``."""

    live = None
    live_names: tuple[str, ...] = ()

    def _bind(self, trainer, refresh: float = 0.5) -> None:
        """Attach the run (or None): its Controls for Apply/Export, its Recorder for the live traces."""
        self.trainer = trainer
        self.controls = trainer.controls if trainer is not None else None
        self.refresh_interval = refresh
        self._feed = RecorderFeed(trainer.recorder) if trainer is not None else None
        self.message = W.HTML()
        self.export_button = W.Button(description="Export", tooltip="papermill parameters replaying this session")
        self.export_area = W.Textarea(layout=W.Layout(width="100%", height="4em"), disabled=True)
        self.export_button.on_click(lambda _: self.export())

    def _say(self, text: str, error: bool = False) -> None:
        """Show ``text`` in the message line (red for refusals)."""
        color = "#b00020" if error else "#333"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _say_applied(self, what: str) -> None:
        """Tell the user when a queued change takes effect."""
        if self.trainer is not None and self.trainer.running:
            self._say(f"applied: {what} from step {self.trainer.state.step} on (next step boundary)")
        else:
            self._say(f"queued: {what}; the run is not training now, it applies when it (re)starts")

    def export(self) -> dict:
        """Papermill parameters replaying the applied changes (also shown in the panel)."""
        params = self.controls.as_parameters() if self.controls is not None else {"control_schedule": []}
        self.export_area.value = "-p control_schedule '" + json.dumps(params["control_schedule"]) + "'"
        return params

    def refresh(self) -> bool:
        """Append new Recorder rows to the live traces (main thread); True while the run goes on."""
        if self._feed is None or self.live is None:
            return False
        new = self._feed.new()
        with self.live.batch_update():
            for trace, name in zip(self.live.data, self.live_names):
                if name in new:
                    trace.x = tuple(trace.x or ()) + tuple(new[name][0])
                    trace.y = tuple(trace.y or ()) + tuple(new[name][1])
        return bool(self.trainer is not None and self.trainer.running)

    def show(self):
        """Live widgets with a frontend (refreshed from the Recorder), else one static figure."""
        from IPython.display import display

        if has_frontend():
            display(self.widget())
            if self.live is not None:
                poll(self.refresh, self.refresh_interval)
        else:
            show_static(self.static_figure())
        return self

    def widget(self) -> W.Widget:  # pragma: no cover - abstract
        raise NotImplementedError

    def static_figure(self):  # pragma: no cover - abstract
        raise NotImplementedError
