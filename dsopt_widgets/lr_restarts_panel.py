"""The learning-rate panel: schedule knobs, instant preview, live traces of a running model.

Moving a slider redraws the preview of the whole schedule (with restart markers) at once; it does
not touch the run. **Apply** sends the values through the run's Controls, which the Trainer applies
at the next step boundary; invalid values are shown in the message line and not applied.
**Export** shows the session's applied changes as papermill parameters that replay it headless.
The live figure (loss, validation accuracy, learning rate; x = fractional epoch, like the preview) is
refreshed from the Recorder on the kernel's main thread; the run controls come from the RunPanel base.
With no frontend the panel trains its run to the end and renders one static figure.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.lr import PARAM_NAMES, schedule_from_params, validate_params
from dsopt.util.validation import ParameterError
from dsopt_widgets.base import LEGEND_BELOW, PANEL_LAYOUT, RunPanel
from dsopt_widgets.figure import LiveFigure

PREVIEW_POINTS = 2000


def _markers(xs: list[float], y0: float, y1: float) -> tuple[list, list]:
    """Vertical segments at ``xs`` as one NaN-separated line (one trace, updated in place)."""
    x, y = [], []
    for v in xs:
        x += [v, v, None]
        y += [y0, y1, None]
    return x, y


class LRPanel(RunPanel):
    """Learning-rate warm-restart panel on a live run (or on no run: preview only).

    Parameters
    ----------
    trainer: a :class:`dsopt.Trainer` whose callbacks include an ``LRScheduleCallback`` built from
        flat parameters (so its Controls know the schedule knobs). ``None`` with no ``factory`` gives
        a preview-only panel.
    factory: ``factory(*, epochs, control_schedule) -> Trainer`` building a fresh seeded run (e.g.
        ``functools.partial(dsopt.studies.lr_restarts.live_trainer, task, params, seed=0)``); enables
        Restart. ``epochs``, ``interactive_epochs``, ``control_schedule``: see :class:`~dsopt_widgets.base.RunPanel`.
    params: initial schedule parameters (default: the run's current knob values).
    horizon: epochs drawn in the preview (default: the run's budget, else 20).
    range_test: a :class:`dsopt.lr.range_test.RangeTestResult` to draw beside the preview.
    """

    live_names = ("train_loss", "val_accuracy", "lr")

    def __init__(self, trainer=None, *, factory=None, epochs: int | None = None, interactive_epochs: int | None = None,
                 control_schedule=(), params: Mapping[str, Any] | None = None, horizon: float | None = None,
                 range_test=None, refresh: float = 0.5, export_command: str = "dsopt run 01"):
        super().__init__(trainer, factory=factory, epochs=epochs, interactive_epochs=interactive_epochs,
                         control_schedule=control_schedule, refresh=refresh, export_command=export_command)
        if params is None:
            if self.controls is None:
                raise ParameterError("params", "params is required when no trainer is given")
            params = {k: v for k, v in self.controls.values().items() if k in PARAM_NAMES}
        self.params = validate_params(params)
        self.horizon = float(horizon or (self.trainer.max_epochs if self.trainer is not None else 20))
        self.range_test = range_test
        self.last_update_ms: float | None = None
        self.sliders = self._make_sliders(self.params)
        self.apply_button = W.Button(description="Apply", button_style="primary", tooltip="apply at the next step",
                                     layout=W.Layout(width="84px"))
        self.apply_button.on_click(lambda _: self.apply())
        self.preview = LiveFigure(self._preview_figure())
        self.live = self.live_figure(live_figure()) if self.trainer is not None else None
        for s in self.sliders.values():
            s.observe(self._on_change, names="value")

    # -- widgets ------------------------------------------------------------------------------------
    def _make_sliders(self, p: dict) -> dict[str, W.Widget]:
        style = {"description_width": "110px"}
        lay = W.Layout(width="310px")
        hz = max(int(self.horizon), 2)
        return {
            "base_lr": W.FloatLogSlider(value=p["base_lr"], base=10, min=-6, max=0, step=0.1, description="base LR",
                                        readout_format=".1e", style=style, continuous_update=True, layout=lay),
            "T_0": W.IntSlider(value=p["T_0"], min=1, max=max(hz, 2 * p["T_0"]), description="T_0 (epochs)",
                               style=style, layout=lay),
            "T_mult": W.IntSlider(value=p["T_mult"], min=1, max=max(4, p["T_mult"]), description="T_mult", style=style,
                                  layout=lay),
            "eta_min": W.FloatText(value=p["eta_min"], description="eta_min", style=style, layout=W.Layout(width="230px")),
            "warmup": W.FloatSlider(value=p["warmup"], min=0, max=max(hz / 2, p["warmup"]), step=0.5,
                                    description="warmup (ep.)", style=style, layout=lay),
            "cycle_decay": W.FloatSlider(value=p["cycle_decay"], min=0.05, max=1.0, step=0.05, description="cycle decay",
                                         style=style, layout=lay),
        }

    def values(self) -> dict:
        """The sliders' values as flat schedule parameters (unvalidated)."""
        return {**self.params, **{k: w.value for k, w in self.sliders.items()}}

    # -- preview ------------------------------------------------------------------------------------
    def _curve(self, params: dict) -> tuple[list[float], list[float], list[float]]:
        """(epochs, learning rates, restart epochs) of the schedule over the horizon, as plain lists.

        Plain lists (compact JSON for the browser).
        """
        sched = schedule_from_params(params)
        t = np.linspace(0.0, self.horizon, PREVIEW_POINTS, endpoint=False)
        return t.tolist(), np.asarray(sched.preview(t), dtype=float).tolist(), list(sched.restart_times(self.horizon))

    def _preview_figure(self) -> go.Figure:
        cols = 2 if self.range_test is not None else 1
        fig = make_subplots(rows=1, cols=cols, subplot_titles=["schedule preview", "LR range test"][:cols],
                            horizontal_spacing=0.1)
        t, lr, restarts = self._curve(self.params)
        fig.add_scatter(x=t, y=lr, name="preview", line=dict(color="#1f77b4"), row=1, col=1)
        mx, my = _markers(restarts, 0, max(lr) if lr else 1.0)
        fig.add_scatter(x=mx, y=my, name="restarts", mode="lines", line=dict(color="#d62728", dash="dot"), row=1, col=1)
        if self.range_test is not None:
            rt = self.range_test
            fig.add_scatter(x=list(map(float, rt.lrs)), y=list(map(float, rt.smoothed)), name="range test (smoothed loss)",
                            line=dict(color="#7f7f7f"), row=1, col=2)
            for name, lr_s in rt.suggestions.items():
                fig.add_scatter(x=[float(lr_s)] * 2, y=[float(min(rt.smoothed)), float(max(rt.smoothed))], mode="lines",
                                name=f"{name}: {lr_s:.1e}", line=dict(dash="dash"), row=1, col=2)
            fig.update_xaxes(type="log", title_text="learning rate (log scale)", row=1, col=2)
            fig.update_yaxes(title_text="training loss (smoothed)", row=1, col=2)
        fig.update_xaxes(title_text="epoch", row=1, col=1)
        fig.update_yaxes(title_text="learning rate", exponentformat="e", row=1, col=1)
        fig.update_layout(**PANEL_LAYOUT, height=360, legend=LEGEND_BELOW)
        fig.update_layout(margin_b=100)
        return fig

    def _on_change(self, change=None) -> None:
        t0 = time.perf_counter()
        try:
            params = validate_params(self.values())
        except ParameterError as exc:
            self._say(str(exc), error=True)
            return
        _, lr, restarts = self._curve(params)
        mx, my = _markers(restarts, 0, max(lr))
        with self.preview.batch_update():
            self.preview.data[0].y = lr
            self.preview.data[1].x, self.preview.data[1].y = mx, my
        self.last_update_ms = 1000 * (time.perf_counter() - t0)
        self._say(f"preview: restarts at {', '.join(f'{r:g}' for r in restarts) or 'none'} "
                  f"(press Apply to change the run)")

    # -- run ------------------------------------------------------------------------------------------
    def knob_values(self) -> dict:
        """The sliders' values for the run's schedule knobs, validated together (e.g. eta_min <= base LR)."""
        values = validate_params(self.values())
        known = self.controls.knobs() if self.controls is not None else values
        return {k: v for k, v in values.items() if k in known}

    def _queued(self, values: dict) -> None:
        self.params = validate_params({**self.params, **values})

    # -- display --------------------------------------------------------------------------------------
    def widget(self) -> W.Widget:
        """The panel as one ipywidgets box: knobs, preview, run controls, live traces, Export."""
        s = self.sliders
        wrap = W.Layout(flex_flow="row wrap")
        knobs = W.VBox([W.HBox([s["base_lr"], s["T_0"], s["T_mult"]], layout=wrap),
                        W.HBox([s["warmup"], s["cycle_decay"], s["eta_min"]], layout=wrap),
                        W.HBox([self.apply_button, self.message], layout=W.Layout(align_items="center"))])
        parts = [knobs, self.preview.widget]
        if self.trainer is not None:
            parts += [self.run_box(), self.live.widget, self.export_box()]
        return W.VBox(parts, layout=W.Layout(width="100%", overflow="hidden"))

    def static_figure(self) -> go.Figure:
        """Preview and the live run's traces (loss, validation accuracy, LR), for headless runs."""
        self.refresh(force=True)
        if self.live is None:
            return go.Figure(self.preview)
        combo = make_subplots(rows=1, cols=3, subplot_titles=["schedule preview (restarts dotted)",
                                                              "live run: validation accuracy", "live run: learning rate"],
                              horizontal_spacing=0.09)
        combo.add_trace(go.Scatter(self.preview.data[0]), row=1, col=1)
        combo.add_trace(go.Scatter(self.preview.data[1]), row=1, col=1)
        combo.add_trace(go.Scatter(self.live.data[1]), row=1, col=2)
        combo.add_trace(go.Scatter(self.live.data[2]), row=1, col=3)
        for c in (1, 2, 3):
            combo.update_xaxes(title_text="epoch", row=1, col=c)
        combo.update_yaxes(title_text="learning rate", exponentformat="e", row=1, col=1)
        combo.update_yaxes(title_text="accuracy", tickformat=".0%", row=1, col=2)
        combo.update_yaxes(title_text="learning rate", exponentformat="e", row=1, col=3)
        combo.update_layout(**PANEL_LAYOUT, height=330, showlegend=False)
        return combo


def live_figure(height: int = 300) -> go.Figure:
    """Empty live traces of a chapter-01 run: train loss (per step), validation accuracy (per epoch),
    learning rate (per step); x = fractional epoch, like the preview."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=["live run: train loss", "live run: validation accuracy",
                                                        "live run: learning rate"], horizontal_spacing=0.09)
    fig.add_scatter(x=[], y=[], name="train loss", line=dict(width=1), row=1, col=1)
    fig.add_scatter(x=[], y=[], name="val accuracy", mode="lines+markers", row=1, col=2)
    fig.add_scatter(x=[], y=[], name="lr", row=1, col=3)
    for c in (1, 2, 3):
        fig.update_xaxes(title_text="epoch", row=1, col=c)
    fig.update_yaxes(title_text="cross-entropy (nats)", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", row=1, col=2)
    fig.update_yaxes(title_text="learning rate", exponentformat="e", row=1, col=3)
    fig.update_layout(**PANEL_LAYOUT, height=height, showlegend=False)
    return fig
