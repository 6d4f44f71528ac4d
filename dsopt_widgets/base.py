"""What the dsopt panels share: :class:`Panel` (no run) and :class:`RunPanel` (a panel on a live run).

:class:`Panel`: the message line, ``show()`` (with a frontend: the widgets, a re-run cell replacing the
panel it re-shows; without one: one static figure), ``close()``. A subclass provides ``widget()`` and
``static_figure()``; chapter 02's pruning panel and chapter 06's distributed panel derive from it.

:class:`RunPanel` owns a run handle (:class:`~dsopt.core.handle.RunHandle` that also has ``controls``:
the Trainer or the stream replay): run controls, Apply, Export, live traces. A subclass calls
``super().__init__(trainer, factory=..., ...)`` first, then builds its own knobs
and figures. It provides ``knob_values()`` (the Controls values its widgets ask for, validated; raise
:class:`~dsopt.util.validation.ParameterError` to refuse), ``describe(values)`` (how a change reads
in the message line), ``widget()`` (the live ipywidgets box, composed with :meth:`run_box` and
:meth:`export_box`) and ``static_figure()`` (the headless figure). For live traces it sets ``self.live``
(a :class:`~dsopt_widgets.figure.LiveFigure` with ``min_interval=redraw_interval``, e.g. from
:meth:`RunPanel.live_figure`; its ``.widget`` goes in the box) and ``self.live_names``
(the Recorder metric feeding each trace, in trace order); their x axis is the fractional epoch, like
every preview.

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
from dsopt.core.handle import STATUSES
from dsopt.util.validation import ParameterError, check_number
from dsopt_widgets.fields import parse_whole, whole_field
from dsopt_widgets.figure import LiveFigure
from dsopt_widgets.frontend import has_frontend, show_static
from dsopt_widgets.live import RecorderFeed, poll
from dsopt_widgets.stale import live_box

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
    """Base class of the panels without a run: the message line, ``show()``, ``close()``.

    ``refresh``: seconds between two polls of :meth:`refresh` (when :meth:`_on_shown` starts polling).
    """

    def __init__(self, *, refresh: float = 0.5):
        self.refresh_interval = refresh
        self.message = W.HTML(layout=W.Layout(min_height="1.6em"))
        self._closed = False
        self._poll = None

    def _say(self, text: str, error: bool = False) -> None:
        """Show ``text`` in the message line (red for refusals)."""
        color = "#b00020" if error else "#333"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def refresh(self) -> bool:
        """One poll (main thread); False once the panel was closed (a re-run cell), which ends the polling."""
        return not self._closed

    def _poll_refresh(self) -> None:
        """Call :meth:`refresh` every ``refresh_interval`` s until it returns False (once per panel)."""
        if self._poll is None or self._poll.done():
            self._poll = poll(self.refresh, self.refresh_interval)

    def close(self) -> None:
        """Stop polling (a panel replaced by a re-run cell); a RunPanel also stops its run."""
        self._closed = True

    # -- display --------------------------------------------------------------------------------------
    def _on_shown(self) -> None:
        """Hook: the widgets are displayed with a frontend (e.g. start the run and poll)."""

    def _before_static(self) -> None:
        """Hook: headless, before the static figure (e.g. train to the end)."""

    def show(self):
        """With a frontend: the live widgets (replacing the panel of the same class shown before).
        Without one: one static figure."""
        from IPython.display import display

        if has_frontend():
            key = type(self).__name__
            previous = _SHOWN.get(key)
            if previous is not None and previous is not self:
                previous.close()
            _SHOWN[key] = self
            display(live_box(self.widget()))  # greys out, saying why, once the kernel is gone
            self._on_shown()
        else:
            self._before_static()
            show_static(self.static_figure())
        return self

    def widget(self) -> W.Widget:  # pragma: no cover - abstract
        raise NotImplementedError

    def static_figure(self):  # pragma: no cover - abstract
        raise NotImplementedError


class RunPanel(Panel):
    """A panel on a live run: run controls, Apply/Export, Recorder-driven traces (see the module docstring)."""

    live = None
    live_names: tuple[str, ...] = ()
    #: The live figure's ``min_interval``: seconds between two redraws while the run trains (the status
    #: line: every poll).
    redraw_interval = 2.0
    #: Points drawn per live trace at most (longer traces are thinned for display; the latest is kept).
    max_points = 600

    def __init__(self, trainer=None, *, factory: Callable[..., Any] | None = None, epochs: int | None = None,
                 interactive_epochs: int | None = None, control_schedule=(), refresh: float = 0.5,
                 export_command: str = "dsopt run NN", epochs_parameter: str = "live_epochs", max_epochs: int = 200):
        super().__init__(refresh=refresh)
        self.factory = factory
        self.export_command = export_command
        self.epochs_parameter = epochs_parameter
        if trainer is None and factory is not None:
            headless = check_number("epochs", epochs, low=1, integer=True)
            budget = interactive_epochs if (interactive_epochs and has_frontend()) else headless
            trainer = factory(epochs=int(budget), control_schedule=list(control_schedule or []))
            if control_schedule:  # a bad value or a step past the end: said now, before the run trains
                from dsopt.studies.replay import check_control_schedule

                check_control_schedule(trainer, list(control_schedule), epochs_parameter=epochs_parameter)
        self._series: dict[str, tuple[list, list]] = {}  # every live point, by Recorder name
        self._stale = False
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
        # bounded like the chapter's `live_epochs` parameter, so an Export always replays through `dsopt run`;
        # a text box read in Python (fields.py): the run's budget is the number the box shows, never a
        # browser-side reading of it ("2.5" -> 25)
        self.max_budget = max_epochs
        self.budget = whole_field(self.trainer.max_epochs, "epochs", tooltip="budget of the next Start/Restart",
                                  style={"description_width": "50px"}, layout=W.Layout(width="150px"))
        self.status = W.HTML()
        self._update_status()

    @property
    def handle(self):
        """The run (a :class:`~dsopt.core.handle.RunHandle`), or None for a preview-only panel."""
        return self.trainer

    def live_figure(self, figure, **kw) -> LiveFigure:
        """A live figure redrawn at most every ``redraw_interval`` s while the run trains."""
        return LiveFigure(figure, min_interval=self.redraw_interval, **kw)

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

        The handle's status, with "pausing": Pause was pressed and the run finishes its current step
        (and any epoch-end evaluation) before it holds at the next step boundary ("paused").
        """
        t = self.trainer
        if t is None:
            return "no run"
        status = t.status
        if status in ("running", "paused") and t.running:
            if t.controls.paused:
                return "paused" if t.controls.holding else "pausing"
            return "running"
        return "not started" if status == "idle" else status

    def budget_value(self) -> int:
        """The budget box's number for a new run, checked (ParameterError: "epochs must be an integer in
        [1, 200]; got 2.5"), named as the box is labelled."""
        return parse_whole(self.budget.description, self.budget.value, low=1, high=self.max_budget)

    def start(self) -> None:
        """Start the run in the background (a panel's run starts once; use Restart for a new one).

        The run trains for the budget the box shows: a box changed before Start builds a fresh run with
        that budget (a panel with a factory) or is refused, so the box and the run never disagree."""
        if self.run_state() != "not started":
            self._say(f"the run is {self.run_state()}: press Restart for a new one", error=True)
            return
        built = self.trainer.max_epochs
        try:  # the run's own budget is fine even above the box's range (a Trainer given to the panel)
            same = parse_whole(self.budget.description, self.budget.value) == built
        except ParameterError:
            same = False
        if not same:
            try:
                self.budget_value()
            except ParameterError as exc:
                self._say(f"not started: {exc}", error=True)
                return
            if self.factory is None:
                self._say(f"not started: this run was built for {built} {self.budget.description}; "
                          f"set the box back to {built}", error=True)
                return
            self.restart()  # a fresh run with the box's budget
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

    def stop(self, wait: float | None = None) -> None:
        """End the run at the next step boundary (``wait`` seconds for it to end)."""
        t = self.trainer
        if t is not None and t.running:
            t.stop(wait=wait)
            # the line said "pausing at step N ..." after a Pause: it must not outlive the run it spoke of
            self._say(f"stopped at step {t.state.step}: Export replays the session up to here; Restart begins a "
                      f"fresh run")
        self._update_status()

    def restart(self) -> bool:
        """Stop the run; start a fresh one with the current knob values, the budget knob and the same seed."""
        if self.factory is None:
            self._say("this panel was given a Trainer, not a factory: it cannot build a new run", error=True)
            return False
        try:
            values = self.knob_values()
            budget = self.budget_value()
        except ParameterError as exc:
            self._say(f"not restarted: {exc}", error=True)
            return False
        self.stop(wait=30.0)
        trainer = self.factory(epochs=budget, control_schedule=[])
        defaults = trainer.controls.values()
        try:
            trainer.controls.update(**values)  # applied at step 0: recorded, so Export replays them
        except ParameterError as exc:
            self._say(f"not restarted: {exc}", error=True)
            return False
        changed = {k: v for k, v in values.items() if defaults.get(k) != v}
        self._bind(trainer)
        self._clear_live()
        trainer.start()
        shorter = ""
        if trainer.max_epochs != budget:  # e.g. a stream with fewer windows: the box shows what runs, and says why
            self.budget.value = str(trainer.max_epochs)
            shorter = f" ({budget} asked: {trainer.max_epochs} is all this run has)"
        self._say(f"restarted: a fresh run of {trainer.max_epochs} epochs{shorter}, same seed"
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

    # -- status, live traces ---------------------------------------------------------------------------
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
        unit = getattr(t, "progress_unit", "epoch")  # a run handle whose steps are not epochs names them
        progress = ([f"epoch {s.step / s.batches_per_epoch:.2f} of {t.max_epochs}", f"step {s.step} of {s.total_steps}"]
                    if unit == "epoch" else [f"{unit} {s.step} of {s.total_steps}"])
        parts = [f'<b style="color:{color}">{state}</b>', *progress]
        phase = getattr(t, "phase", None)  # what a run does before its first step ("computing embeddings ...")
        if phase and state == "running":
            parts.append(html.escape(str(phase)))
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
        self._series = {}
        if self.live is None:
            return
        with self.live.batch_update(force=True):
            for trace in self.live.data:
                trace.x, trace.y = (), ()
        self._stale = False

    def refresh(self, force: bool = False) -> bool:
        """Read new Recorder rows, update the status line and messages; redraw the live traces when the
        live figure is due (its ``min_interval``), and at once when the run has ended, on the main thread.

        Each redraw re-sends the whole live figure, so the interval and the thinning of long traces
        (at most ``max_points`` drawn per trace; the Recorder keeps every row) keep the browser
        responsive on a busy machine. Returns False once the panel was replaced (a re-run cell).
        """
        if not super().refresh():
            return False
        if self._feed is None:
            return True
        self._report_applied()
        self._update_status()
        if self.live is None:
            return True
        for name, (steps, values) in self._feed.new().items():
            if name in self.live_names:
                xs, ys = self._series.setdefault(name, ([], []))
                xs.extend(self._epoch(s) for s in steps)
                ys.extend(values)
                self._stale = True
        running = self.trainer is not None and self.trainer.running
        if self._stale and (force or not running or self.live.due()):
            self._draw_live()
        return True

    def _draw_live(self) -> None:
        """Thin the series into the live traces and draw them now."""
        with self.live.batch_update(force=True):
            for trace, name in zip(self.live.data, self.live_names):
                xs, ys = self._series.get(name, ((), ()))
                stride = -(-len(xs) // self.max_points) if len(xs) > self.max_points else 1
                keep = list(range(0, len(xs), stride))
                if xs and keep[-1] != len(xs) - 1:
                    keep.append(len(xs) - 1)  # always the latest point
                trace.x = [xs[i] for i in keep]
                trace.y = [ys[i] for i in keep]
        self._stale = False

    def close(self) -> None:
        """Stop the run and the polling (a panel replaced by a re-run cell)."""
        super().close()
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
        label = W.HTML('<span style="white-space:nowrap">&nbsp;replay headless:&nbsp;</span>')
        return W.HBox([self.export_button, label, self.export_area], layout=W.Layout(align_items="center"))

    def _on_shown(self) -> None:
        """Displayed with a frontend: start the run in the background and poll the Recorder."""
        if self.run_state() == "not started":
            self.start()
        self._poll_refresh()

    def _before_static(self) -> None:
        """Headless: train to the end (blocking) before the static figure."""
        if self.run_state() == "not started":
            self.trainer.fit()
