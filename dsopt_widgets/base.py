"""What every dsopt panel shares: run controls, the message line, Apply, Export, live traces, display.

A panel subclass calls ``super().__init__(trainer, factory=..., ...)`` first, then builds its own knobs
and figures. It provides ``knob_values()`` (the Controls values its widgets ask for, validated; raise
:class:`~dsopt.util.validation.ParameterError` to refuse), ``describe(values)`` (how a change reads
in the message line), ``widget()`` (the live ipywidgets box, composed with :meth:`run_box` and
:meth:`export_box`) and ``static_figure()`` (the headless figure). For live traces it sets ``self.live``
(a FigureWidget) and ``self.live_names`` (the Recorder metric feeding each trace, in trace order);
their x axis is the fractional epoch, like every preview.

The run: a panel is given a Trainer, or better a ``factory(*, epochs, control_schedule) -> Trainer``
that builds a fresh, seeded one (one function per chapter, e.g.
``dsopt.studies.lr_restarts.live_trainer``). With a factory the panel can **Restart**: a fresh run
with the panel's current knob values (queued at step 0, so Export replays them) and the same seed.
``epochs`` is the headless budget; ``interactive_epochs`` (with a frontend) is the budget knob's
start value, long enough to steer. With a frontend ``show()`` displays the panel and starts the run
in the background; without one it trains to the end (blocking) and renders one static figure.

Run controls: **Start**, **Pause** (at the next step boundary), **Resume**, **Stop** (ends the run;
Export then replays it to the same step), **Restart**; a status line (state, epoch, step, steps/s).
A change applied while paused takes effect at the first step after Resume. A panel displayed again
(a re-run cell) stops the run of the panel it replaces.
"""
from __future__ import annotations

import html
import json
import time
from typing import Any, Callable

import ipywidgets as W

from dsopt.core.controls import STOP
from dsopt.util.validation import ParameterError, check_number
from dsopt_widgets.frontend import has_frontend, show_static
from dsopt_widgets.live import RecorderFeed, poll

#: The panel of each class shown last (a re-run cell replaces it and stops its run).
_SHOWN: dict[str, "Panel"] = {}

BUTTON = W.Layout(width="84px")

#: Layout shared by the panels' figures: they follow the cell's width (no fixed width, so no
#: horizontal scrollbar at 1400x900), and the top margin keeps plotly's toolbar (top right, on hover)
#: above the subplot titles instead of over them.
PANEL_LAYOUT = dict(autosize=True, margin=dict(l=65, r=25, t=60, b=55))
#: A horizontal legend at the bottom of the figure, below the x-axis titles (not over them): use
#: with a bottom margin of about 100 px (``margin_b=100``).
LEGEND_BELOW = dict(orientation="h", yref="container", y=0.0, yanchor="bottom", x=0.0, xanchor="left")


class Panel:
    """Base class of the panels: run controls, message line, Apply/Export, Recorder-driven traces, ``show()``."""

    live = None
    live_names: tuple[str, ...] = ()

    def __init__(self, trainer=None, *, factory: Callable[..., Any] | None = None, epochs: int | None = None,
                 interactive_epochs: int | None = None, control_schedule=(), refresh: float = 0.5,
                 export_command: str = "dsopt run NN", epochs_parameter: str = "live_epochs"):
        self.factory = factory
        self.refresh_interval = refresh
        self.export_command = export_command
        self.epochs_parameter = epochs_parameter
        self.message = W.HTML(layout=W.Layout(min_height="1.6em"))
        if trainer is None and factory is not None:
            headless = check_number("epochs", epochs, low=1, integer=True)
            budget = interactive_epochs if (interactive_epochs and has_frontend()) else headless
            trainer = factory(epochs=int(budget), control_schedule=list(control_schedule or []))
        self._closed = False
        self._poll = None
        self._rate: tuple[float, int, float] | None = None  # (time, step, steps/s) for the status line
        self._awaiting: tuple[int, str] | None = None  # (history length at Apply, description)
        self._bind(trainer)
        if self.trainer is None:
            self.export_button = self.export_area = None
            return
        self.export_button = W.Button(description="Export", tooltip="parameters that replay this session headless",
                                      layout=BUTTON)
        self.export_area = W.Textarea(layout=W.Layout(width="100%", height="3.2em"), disabled=True,
                                      placeholder="press Export: the dsopt run command replaying this session")
        self.export_button.on_click(lambda _: self.export())
        self.buttons = {name: W.Button(description=name.capitalize(), layout=BUTTON, tooltip=tip) for name, tip in (
            ("start", "start the run"), ("pause", "hold the run at the next step boundary"),
            ("resume", "continue a paused run"), ("stop", "end the run (Export replays it up to here)"),
            ("restart", "a fresh run with the current knob values and the same seed"))}
        for name, button in self.buttons.items():
            button.on_click(lambda _, name=name: getattr(self, name)())
        self.budget = W.BoundedIntText(value=self.trainer.max_epochs, min=1, max=100_000, description="epochs",
                                       tooltip="budget of the next Start/Restart", style={"description_width": "50px"},
                                       layout=W.Layout(width="150px"))
        self.status = W.HTML()
        self._update_status()

    # -- the run ------------------------------------------------------------------------------------
    def _bind(self, trainer) -> None:
        """Attach ``trainer`` (or None): its Controls for Apply/Export, its Recorder for the live traces."""
        self.trainer = trainer
        self.controls = trainer.controls if trainer is not None else None
        self._feed = RecorderFeed(trainer.recorder) if trainer is not None else None
        self._rate = None
        self._awaiting = None

    def run_state(self) -> str:
        """"no run", "not started", "running", "pausing", "paused", "stopped", "finished" or "failed".

        "pausing": Pause was pressed and the run finishes its current step (and any epoch-end
        evaluation) before it holds at the next step boundary ("paused").
        """
        t = self.trainer
        if t is None:
            return "no run"
        if t.running:
            if t.controls.paused:
                return "paused" if t.controls.holding else "pausing"
            return "running"
        if t.error is not None:
            return "failed"
        if not t.started and t.state.step == 0:
            return "not started"
        if t.stopped_early:
            return "stopped"
        return "finished" if t.state.step >= t.state.total_steps else "stopped"

    def start(self) -> None:
        """Start the run in the background (a panel's run starts once; use Restart for a new one)."""
        if self.run_state() != "not started":
            self._say(f"the run is {self.run_state()}: press Restart for a new one", error=True)
            return
        self.trainer.start()
        self._update_status()

    def pause(self) -> None:
        """Hold the run at the next step boundary."""
        if self.run_state() == "running":
            self.trainer.pause()
            self._say(f"pausing at step {self.trainer.state.step}: changes applied now take effect "
                      f"at the first step after Resume")
        self._update_status()

    def resume(self) -> None:
        """Continue a paused run."""
        if self.run_state() in ("paused", "pausing"):
            self.trainer.resume()
        self._update_status()

    def stop(self, wait: float = 0.0) -> None:
        """End the run at the next step boundary (``wait`` seconds for it to end)."""
        t = self.trainer
        if t is not None and t.running:
            t.stop()
            if wait:
                try:
                    t.wait(wait)
                except Exception:  # noqa: BLE001 - a failed or slow run is shown in the status line
                    pass
        self._update_status()

    def restart(self) -> bool:
        """Stop the run; start a fresh one with the current knob values, the budget knob and the same seed."""
        if self.factory is None:
            self._say("this panel was given a Trainer, not a factory: it cannot build a new run", error=True)
            return False
        try:
            values = self.knob_values()
        except ParameterError as exc:
            self._say(f"not restarted: {exc}", error=True)
            return False
        self.stop(wait=30.0)
        trainer = self.factory(epochs=int(self.budget.value), control_schedule=[])
        try:
            trainer.controls.update(**values)  # applied at step 0: recorded, so Export replays them
        except ParameterError as exc:
            self._say(f"not restarted: {exc}", error=True)
            return False
        self._bind(trainer)
        self._clear_live()
        trainer.start()
        changed = {k: v for k, v in values.items() if trainer.controls.get(k) != v}
        self._say(f"restarted: a fresh run of {trainer.max_epochs} epochs, same seed"
                  + (f", starting with {self.describe(changed)}" if changed else ", default knobs"))
        self._update_status()
        return True

    # -- Apply and Export ---------------------------------------------------------------------------
    def knob_values(self) -> dict:  # pragma: no cover - abstract
        """The Controls values the widgets ask for (validated; ParameterError refuses)."""
        raise NotImplementedError

    def describe(self, values: dict) -> str:
        """How a set of knob values reads in the message line."""
        return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())

    def apply(self) -> dict | None:
        """Queue the widgets' values in the run's Controls (applied at the next step). None if refused."""
        if self.controls is None:
            self._say("no run is attached: nothing to apply", error=True)
            return None
        current = self.controls.values()
        try:
            queued = self.controls.update(**self.knob_values())
        except ParameterError as exc:
            self._say(f"not applied: {exc}", error=True)
            return None
        self._queued(queued)
        changed = {k: v for k, v in queued.items() if current.get(k) != v}
        what = self.describe(changed) or "no change"
        state = self.run_state()
        self._awaiting = (len(self.controls.history), what)
        if state == "running":
            self._say(f"queued: {what}; applies at the next step boundary (step {self.trainer.state.step} or the next)")
        elif state in ("paused", "pausing"):
            self._say(f"queued: {what}; the run is paused: applies at the first step after Resume "
                      f"(step {self.trainer.state.step})")
        elif state == "not started":
            self._say(f"queued: {what}; applies at step 0 when the run starts")
        else:
            self._awaiting = None
            self._say(f"queued: {what}; the run is {state}: press Restart for a fresh run with these values")
        return queued

    def _queued(self, values: dict) -> None:
        """Hook: a subclass records what was queued (e.g. its preview's reference values)."""

    def export(self) -> dict:
        """Parameters replaying this session headless (also shown beside the button).

        ``control_schedule`` lists every applied change with its step, and ``[step, "stop", true]``
        when the run was stopped by hand, so ``dsopt run`` reproduces the session's Recorder history.
        """
        if self.controls is None:
            return {"control_schedule": []}
        schedule = self.controls.as_parameters()["control_schedule"]
        if self.run_state() == "stopped":
            schedule.append([self.trainer.state.step, STOP, True])
        params = {self.epochs_parameter: self.trainer.max_epochs, "control_schedule": schedule}
        if self.export_area is not None:
            self.export_area.value = (f"{self.export_command} -p {self.epochs_parameter} {self.trainer.max_epochs} "
                                      f"-p control_schedule '{json.dumps(schedule)}'")
        return params

    # -- message, status, live traces ---------------------------------------------------------------
    def _say(self, text: str, error: bool = False) -> None:
        """Show ``text`` in the message line (red for refusals)."""
        color = "#b00020" if error else "#333"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _epoch(self, step: int) -> float:
        return step / self.trainer.state.batches_per_epoch

    def _update_status(self) -> None:
        if self.trainer is None:
            return
        t, s = self.trainer, self.trainer.state
        state = self.run_state()
        now = time.monotonic()
        if state == "running":
            if self._rate is None:
                self._rate = (now, s.step, 0.0)
            elif now - self._rate[0] >= 1.0:
                inst = (s.step - self._rate[1]) / (now - self._rate[0])
                self._rate = (now, s.step, inst if not self._rate[2] else 0.5 * inst + 0.5 * self._rate[2])
        else:
            self._rate = None
        color = {"running": "#1b7a1b", "paused": "#b36b00", "pausing": "#b36b00", "failed": "#b00020"}.get(state, "#333")
        parts = [f'<b style="color:{color}">{state}</b>',
                 f"epoch {s.step / s.batches_per_epoch:.2f} of {t.max_epochs}", f"step {s.step} of {s.total_steps}"]
        if state == "running" and self._rate is not None and self._rate[2]:
            parts.append(f"{self._rate[2]:.1f} steps/s")
        if state == "failed":
            parts.append(html.escape(f"{type(t.error).__name__}: {t.error}"))
        self.status.value = " · ".join(parts)
        b = self.buttons
        b["start"].disabled = state != "not started"
        b["pause"].disabled = state != "running"
        b["resume"].disabled = state not in ("paused", "pausing")
        b["stop"].disabled = state not in ("running", "pausing", "paused")
        b["restart"].disabled = self.factory is None

    def _report_applied(self) -> None:
        """Once queued changes are applied, say at which step (the run's Controls recorded it)."""
        if self._awaiting is None or self.controls is None:
            return
        n, what = self._awaiting
        history = self.controls.history
        if len(history) > n:
            step = history[n].step
            self._say(f"applied at step {step} (epoch {self._epoch(step):.2f}): {what}")
            self._awaiting = None

    def _clear_live(self) -> None:
        if self.live is None:
            return
        with self.live.batch_update():
            for trace in self.live.data:
                trace.x, trace.y = (), ()

    def refresh(self) -> bool:
        """Append new Recorder rows to the live traces, update status and messages (main thread).

        Returns False once the panel was replaced (a re-run cell), which ends its polling.
        """
        if self._closed:
            return False
        if self._feed is None:
            return True
        self._report_applied()
        self._update_status()
        if self.live is not None:
            new = self._feed.new()
            if any(name in new for name in self.live_names):
                with self.live.batch_update():
                    for trace, name in zip(self.live.data, self.live_names):
                        if name in new:
                            steps, values = new[name]
                            trace.x = tuple(trace.x or ()) + tuple(self._epoch(s) for s in steps)
                            trace.y = tuple(trace.y or ()) + tuple(values)
        return True

    def close(self) -> None:
        """Stop the run and the polling (a panel replaced by a re-run cell)."""
        self._closed = True
        self.stop(wait=10.0)

    # -- display --------------------------------------------------------------------------------------
    def run_box(self) -> W.Widget | None:
        """Start / Pause / Resume / Stop / Restart, the budget knob and the status line (None without a run)."""
        if self.trainer is None:
            return None
        return W.HBox([*self.buttons.values(), self.budget, self.status],
                      layout=W.Layout(align_items="center", flex_flow="row wrap"))

    def export_box(self) -> W.Widget | None:
        """Export and its labelled output, side by side (None without a run)."""
        if self.trainer is None:
            return None
        label = W.HTML("<small>replay this session headless:</small>", layout=W.Layout(width="110px"))
        return W.HBox([self.export_button, label, self.export_area], layout=W.Layout(align_items="center"))

    def show(self):
        """With a frontend: the live widgets, the run started, refreshed from the Recorder.
        Without one: train to the end (blocking) and render one static figure."""
        from IPython.display import display

        if has_frontend():
            key = type(self).__name__
            previous = _SHOWN.get(key)
            if previous is not None and previous is not self:
                previous.close()
            _SHOWN[key] = self
            display(self.widget())
            if self.run_state() == "not started":
                self.start()
            if self._poll is None:
                self._poll = poll(self.refresh, self.refresh_interval)
        else:
            if self.run_state() == "not started":
                self.trainer.fit()
            show_static(self.static_figure())
        return self

    def widget(self) -> W.Widget:  # pragma: no cover - abstract
        raise NotImplementedError

    def static_figure(self):  # pragma: no cover - abstract
        raise NotImplementedError
