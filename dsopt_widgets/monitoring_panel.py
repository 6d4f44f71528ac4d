"""The monitoring panel: replay the stream live (accuracy, drift score, EWMA and CUSUM with alarms marked,
the retraining loop's requests and promotions), steer the charts and the label budget, preview ARL curves.

Moving a knob (lambda, L, k, h) redraws the ARL-vs-shift curves of the charts at once (Markov chains,
no run touched) and says their in-control ARL and their ARL at a 1-sigma shift. **Calibrate** moves L
and h so both charts have the in-control ARL typed beside it. **Apply** sends lambda, L, k, h and the
label budget through the replay's Controls: from the next window the EWMA and CUSUM (the EWMA also
triggers the loop) run with them. The window size takes effect on **Restart** (a fresh replay, same
stream). Invalid values are refused in the message line. The run controls and Export come from the
RunPanel base; a window is a step, so Export replays a session with ``dsopt run 07``.
"""
from __future__ import annotations

import functools
import time

import ipywidgets as W
import plotly.graph_objects as go

from dsopt.monitor import CUSUM, EWMA, calibrate
from dsopt.studies.monitoring.stream import SCALE_STREAMS, StreamConfig
from dsopt.util.validation import ParameterError, check_number
from dsopt_widgets.base import RunPanel
from dsopt_widgets.fields import read_whole, typed_number, whole_field
from dsopt_widgets.figure import LiveFigure
from dsopt_widgets.monitoring_figures import LIVE_NAMES, SHIFTS, arl_curves, arl_figure, fill, knob_charts, live_figure

KNOBS = ("lambda", "L", "k", "h", "label_budget")


@functools.cache
def _blas():
    """One threadpoolctl controller (building it scans the loaded libraries: ~1 ms; limiting with it: ~0.05 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class MonitoringPanel(RunPanel):
    """Panel on a :class:`~dsopt.studies.monitoring.live.StreamReplay` (``factory`` from ``live_replay``)."""

    live_names = LIVE_NAMES

    def __init__(self, trainer=None, *, factory=None, epochs: int | None = None, control_schedule=(),
                 refresh: float = 0.5, export_command: str = "dsopt run 07"):
        super().__init__(trainer, factory=factory, epochs=epochs, control_schedule=control_schedule, refresh=refresh,
                         export_command=export_command, epochs_parameter="live_windows",
                         max_epochs=100_000)  # chapter 07's live_windows range
        if self.trainer is None:
            raise ParameterError("factory", "the monitoring panel needs a replay: pass factory=live_replay(...)")
        self.budget.description = "windows"
        self.budget.tooltip = "windows the next Start/Restart serves"
        self.budget.style.description_width = "62px"
        self.budget.layout.width = "170px"
        knobs = self.controls.values()
        style = {"description_width": "70px"}
        lay = W.Layout(width="300px")
        self.sliders = {
            "lambda": W.FloatSlider(value=knobs["lambda"], min=0.02, max=1.0, step=0.01, description="EWMA λ",
                                    readout_format=".2f", style=style, layout=lay),
            "L": W.FloatSlider(value=knobs["L"], min=1.0, max=5.0, step=0.01, description="EWMA L",
                               readout_format=".2f", style=style, layout=lay),
            "k": W.FloatSlider(value=knobs["k"], min=0.0, max=2.0, step=0.05, description="CUSUM k",
                               readout_format=".2f", style=style, layout=lay),
            "h": W.FloatSlider(value=knobs["h"], min=0.5, max=15.0, step=0.05, description="CUSUM h",
                               readout_format=".2f", style=style, layout=lay),
        }
        wide = {"description_width": "92px"}
        self.label_budget = whole_field(knobs["label_budget"], "label budget", style=wide,
                                        layout=W.Layout(width="230px"))
        self.window_size = whole_field(self.trainer.cfg.stream.window_size, "window size",
                                       style=wide, layout=W.Layout(width="230px"),
                                       tooltip="predictions per window: takes effect on Restart")
        self.arl0 = W.FloatText(value=self.trainer.cfg.arl0 * len(self.trainer.cfg.loop_signals),
                                description="ARL0", style=wide, layout=W.Layout(width="230px"))
        self.calibrate_button = W.Button(description="Calibrate", tooltip="set L and h for this in-control ARL",
                                         layout=W.Layout(width="90px"))
        self.calibrate_button.on_click(lambda _: self.calibrate())
        self.apply_button = W.Button(description="Apply", button_style="primary", layout=W.Layout(width="84px"),
                                     tooltip="use these charts and budget from the next window on")
        self.apply_button.on_click(lambda _: self.apply())
        self.last_update_ms: float | None = None
        self.preview = LiveFigure(arl_figure(arl_curves(knob_charts(knobs)), title="ARL vs shift: the knobs' charts"))
        self.live = self.live_figure(live_figure(self.trainer.cfg.stream.change_window))
        for s in self.sliders.values():
            s.observe(self._on_change, names="value")
        self._on_change()

    # -- knobs ---------------------------------------------------------------------------------------------
    def slider_values(self) -> dict:
        return {name: w.value for name, w in self.sliders.items()}

    def knob_values(self) -> dict:
        """Validated knob values (lambda, L, k, h, label_budget); ParameterError names a bad one."""
        v = self.slider_values()
        EWMA(v["lambda"], v["L"])
        CUSUM(v["k"], v["h"])
        budget = read_whole(self.label_budget, "label_budget", low=0, high=100_000)
        return {**v, "label_budget": budget}

    def window_size_value(self) -> int:
        """The window size for the next Restart (validated with the stream's own rules)."""
        ws = typed_number(self.window_size.value)  # "2.5" stays 2.5: refused below with the stream's range
        cfg = self.trainer.cfg.stream
        StreamConfig(**{**cfg.as_dict(), "window_size": ws})  # raises ParameterError naming the parameter
        return int(ws)

    def describe(self, values: dict) -> str:
        names = {"lambda": "λ", "label_budget": "label budget"}
        return ", ".join(f"{names.get(k, k)}={v:g}" for k, v in values.items())

    def _on_change(self, change=None) -> None:
        t0 = time.perf_counter()
        try:
            v = self.slider_values()
            charts = knob_charts(v)
        except ParameterError as exc:
            self._say(str(exc), error=True)
            return
        # small linear systems: one BLAS thread (several spin against the live replay's thread and other
        # processes: 0.15-2.7 s per move on a loaded 2-core machine instead of ~0.1 s)
        with _blas().limit(limits=1, user_api="blas"):
            curves = arl_curves(charts)
        e, c = charts["ewma"], charts["cusum"]
        at0, at1 = SHIFTS.index(0.0), SHIFTS.index(1.0)  # the curves' own points (151 states: within 0.1 %)
        arls = [curves["ewma"][at0], curves["ewma"][at1], curves["cusum"][at0], curves["cusum"][at1]]
        with self.preview.batch_update():
            for trace, name in zip(self.preview.data, curves):
                trace.x, trace.y = list(SHIFTS), curves[name]
        self.last_update_ms = 1000 * (time.perf_counter() - t0)
        self._say(f"EWMA(λ={e.lam:.2f}, L={e.L:.2f}): ARL0 {arls[0]:.0f}, ARL at 1 sigma "
                  f"{arls[1]:.1f} | CUSUM(k={c.k:.2f}, h={c.h:.2f}): ARL0 {arls[2]:.0f}, "
                  f"ARL at 1 sigma {arls[3]:.1f} windows (press Apply to use them in the replay)")

    def calibrate(self) -> dict | None:
        """Set L and h so both charts have the in-control ARL in the ARL0 box (None if refused)."""
        try:
            target = float(check_number("arl0", self.arl0.value, low=2.0, high=1e6))
            v = self.slider_values()
            # the message goes out before the work (seconds at a large ARL0: ~10 s at 370 on 2 cores)
            self._say(f"calibrating L and h to ARL0 {target:g}: root-finding on Markov chains, a few seconds ...")
            t0 = time.perf_counter()
            e = calibrate(EWMA(v["lambda"], v["L"]), target)
            c = calibrate(CUSUM(v["k"], v["h"]), target)
        except ParameterError as exc:
            self._say(f"not calibrated: {exc}", error=True)
            return None
        if not (self.sliders["L"].min <= e.L <= self.sliders["L"].max and self.sliders["h"].min <= c.h <= self.sliders["h"].max):
            self._say(f"not calibrated: arl0={target:g} needs L={e.L:.2f}, h={c.h:.2f}, outside the sliders' ranges",
                      error=True)
            return None
        self.sliders["L"].value, self.sliders["h"].value = round(e.L, 2), round(c.h, 2)
        self._say(f"calibrated in {time.perf_counter() - t0:.1f} s: L={e.L:.2f} (EWMA) and h={c.h:.2f} (CUSUM) give "
                  f"an in-control ARL of {target:g} windows; press Apply to use them in the replay")
        return {"L": e.L, "h": c.h}

    # -- run ------------------------------------------------------------------------------------------------
    def restart(self) -> bool:
        """A fresh replay with the current knobs, the budget box and the window size box."""
        try:
            ws = self.window_size_value()
        except ParameterError as exc:
            self._say(f"not restarted: {exc}", error=True)
            return False
        base = self.factory
        self.factory = functools.partial(base, window_size=ws)
        try:
            ok = super().restart()
        finally:
            self.factory = base
        if ok:
            self._redraw_live()
        return ok

    def _redraw_live(self) -> None:
        fresh = live_figure(self.trainer.cfg.stream.change_window)
        with self.live.batch_update(force=True):
            self.live.layout.shapes = fresh.layout.shapes

    def export(self) -> dict:
        params = super().export()
        ws = self.trainer.cfg.stream.window_size
        if self.export_area is not None and ws != SCALE_STREAMS[self.trainer.cfg.scale].window_size:
            self.export_area.value += f" -p window_size {ws}"
            params["window_size"] = ws
        return params

    # -- display -------------------------------------------------------------------------------------------
    def widget(self) -> W.Widget:
        knobs = W.HBox([W.VBox([self.sliders["lambda"], self.sliders["L"]]),
                        W.VBox([self.sliders["k"], self.sliders["h"]]),
                        W.VBox([W.HBox([self.arl0, self.calibrate_button]), self.label_budget, self.window_size])],
                       layout=W.Layout(flex_flow="row wrap"))
        return W.VBox([self.run_box(), knobs, W.HBox([self.apply_button]), self.message, self.preview.widget,
                       self.live.widget, self.export_box()])

    def static_figure(self) -> go.Figure:
        """The replay so far (headless: the whole stream), drawn like the live figure."""
        series = {}
        for r in self.trainer.recorder.rows:
            xs, ys = series.setdefault(r.name, ([], []))
            xs.append(r.step)
            ys.append(r.value)
        return go.Figure(fill(live_figure(self.trainer.cfg.stream.change_window), series))
