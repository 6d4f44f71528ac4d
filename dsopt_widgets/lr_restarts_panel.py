"""The learning-rate panel: schedule knobs, instant preview, live traces of a running model.

Moving a slider redraws the preview of the whole schedule (with restart markers) at once; it does
not touch the run. **Apply** sends the values through the run's Controls, which the Trainer applies
at the next step boundary; invalid values are shown in the message line and not applied.
**Export** shows the session's applied changes as papermill parameters that replay it headless.
The live figure (loss, validation accuracy, learning rate) is refreshed from the Recorder on the
kernel's main thread. With no frontend the panel renders one static figure and returns.
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
from dsopt_widgets.base import Panel

PREVIEW_POINTS = 2000


def _markers(xs: list[float], y0: float, y1: float) -> tuple[list, list]:
    """Vertical segments at ``xs`` as one NaN-separated line (one trace, updated in place)."""
    x, y = [], []
    for v in xs:
        x += [v, v, None]
        y += [y0, y1, None]
    return x, y


class LRPanel(Panel):
    """Learning-rate warm-restart panel bound to a live Trainer (or to no run: preview only).

    Parameters
    ----------
    trainer: a :class:`dsopt.Trainer` whose callbacks include an ``LRScheduleCallback`` built from
        flat parameters (so its Controls know the schedule knobs). ``None`` gives a preview-only panel.
    params: initial schedule parameters (default: the trainer's current knob values).
    horizon: epochs drawn in the preview (default: the trainer's ``max_epochs``, else 20).
    range_test: a :class:`dsopt.lr.range_test.RangeTestResult` to draw beside the preview.
    """

    def __init__(self, trainer=None, *, params: Mapping[str, Any] | None = None, horizon: float | None = None,
                 range_test=None, refresh: float = 0.5):
        self._bind(trainer, refresh)
        if params is None:
            if self.controls is None:
                raise ParameterError("params", "params is required when no trainer is given")
            params = {k: v for k, v in self.controls.values().items() if k in PARAM_NAMES}
        self.params = validate_params(params)
        self.horizon = float(horizon or (trainer.max_epochs if trainer is not None else 20))
        self.range_test = range_test
        self.last_update_ms: float | None = None
        self.sliders = self._make_sliders(self.params)
        self.apply_button = W.Button(description="Apply", button_style="primary", tooltip="apply at the next step")
        self.apply_button.on_click(lambda _: self.apply())
        self.preview = go.FigureWidget(self._preview_figure())
        self.live = go.FigureWidget(self._live_figure()) if trainer is not None else None
        self.live_names = ("train_loss", "val_accuracy", "lr")
        for s in self.sliders.values():
            s.observe(self._on_change, names="value")

    # -- widgets ------------------------------------------------------------------------------------
    def _make_sliders(self, p: dict) -> dict[str, W.Widget]:
        style = {"description_width": "80px"}
        hz = max(int(self.horizon), 2)
        return {
            "base_lr": W.FloatLogSlider(value=p["base_lr"], base=10, min=-6, max=0, step=0.1, description="base LR",
                                        readout_format=".1e", style=style, continuous_update=True),
            "T_0": W.IntSlider(value=p["T_0"], min=1, max=max(hz, 2 * p["T_0"]), description="T_0", style=style),
            "T_mult": W.IntSlider(value=p["T_mult"], min=1, max=max(4, p["T_mult"]), description="T_mult", style=style),
            "eta_min": W.FloatText(value=p["eta_min"], description="eta_min", style=style, layout=W.Layout(width="220px")),
            "warmup": W.FloatSlider(value=p["warmup"], min=0, max=max(hz / 2, p["warmup"]), step=0.5, description="warmup",
                                    style=style),
            "cycle_decay": W.FloatSlider(value=p["cycle_decay"], min=0.05, max=1.0, step=0.05, description="cycle decay",
                                         style=style),
        }

    def values(self) -> dict:
        """The sliders' values as flat schedule parameters (unvalidated)."""
        return {**self.params, **{k: w.value for k, w in self.sliders.items()}}

    # -- preview ------------------------------------------------------------------------------------
    def _curve(self, params: dict) -> tuple[np.ndarray, np.ndarray, list[float]]:
        sched = schedule_from_params(params)
        t = np.linspace(0.0, self.horizon, PREVIEW_POINTS, endpoint=False)
        return t, sched.preview(t), sched.restart_times(self.horizon)

    def _preview_figure(self) -> go.Figure:
        cols = 2 if self.range_test is not None else 1
        fig = make_subplots(rows=1, cols=cols, subplot_titles=["schedule preview", "LR range test"][:cols])
        t, lr, restarts = self._curve(self.params)
        fig.add_scatter(x=t, y=lr, name="preview", line=dict(color="#1f77b4"), row=1, col=1)
        mx, my = _markers(restarts, 0, float(lr.max()) if len(lr) else 1.0)
        fig.add_scatter(x=mx, y=my, name="restarts", mode="lines", line=dict(color="#d62728", dash="dot"), row=1, col=1)
        if self.range_test is not None:
            rt = self.range_test
            fig.add_scatter(x=rt.lrs, y=rt.smoothed, name="range test (smoothed)", row=1, col=2)
            for name, lr_s in rt.suggestions.items():
                fig.add_scatter(x=[lr_s, lr_s], y=[min(rt.smoothed), max(rt.smoothed)], mode="lines", name=name,
                                line=dict(dash="dash"), row=1, col=2)
            fig.update_xaxes(type="log", title_text="learning rate", row=1, col=2)
        fig.update_xaxes(title_text="epoch", row=1, col=1)
        fig.update_yaxes(title_text="learning rate", row=1, col=1)
        fig.update_layout(height=320, margin=dict(l=50, r=20, t=40, b=40), legend=dict(orientation="h"))
        return fig

    def _on_change(self, change=None) -> None:
        t0 = time.perf_counter()
        try:
            params = validate_params(self.values())
        except ParameterError as exc:
            self._say(str(exc), error=True)
            return
        t, lr, restarts = self._curve(params)
        mx, my = _markers(restarts, 0, float(lr.max()))
        with self.preview.batch_update():
            self.preview.data[0].y = lr
            self.preview.data[1].x, self.preview.data[1].y = mx, my
        self.last_update_ms = 1000 * (time.perf_counter() - t0)
        self._say(f"preview: restarts at {', '.join(f'{r:g}' for r in restarts) or 'none'} "
                  f"(press Apply to change the run)")

    # -- run ------------------------------------------------------------------------------------------
    def apply(self) -> dict | None:
        """Queue the sliders' values in the run's Controls (applied at the next step). None if refused."""
        if self.controls is None:
            self._say("no run is attached: nothing to apply", error=True)
            return None
        values = {k: v for k, v in self.values().items() if k in self.controls.knobs()}
        current = self.controls.values()
        try:
            validate_params(values)
            queued = self.controls.update(**values)
        except ParameterError as exc:
            self._say(f"not applied: {exc}", error=True)
            return None
        self.params = validate_params({**self.params, **queued})
        changed = {k: v for k, v in queued.items() if current.get(k) != v}
        self._say_applied(", ".join(f"{k}={v:g}" for k, v in changed.items()) or "no change")
        return queued



    # -- live traces ----------------------------------------------------------------------------------
    def _live_figure(self) -> go.Figure:
        fig = make_subplots(rows=1, cols=3, subplot_titles=["train loss", "validation accuracy", "learning rate"])
        fig.add_scatter(x=[], y=[], name="train loss", row=1, col=1)
        fig.add_scatter(x=[], y=[], name="val accuracy", mode="lines+markers", row=1, col=2)
        fig.add_scatter(x=[], y=[], name="lr", row=1, col=3)
        for c in (1, 2, 3):
            fig.update_xaxes(title_text="step", row=1, col=c)
        fig.update_layout(height=280, showlegend=False, margin=dict(l=50, r=20, t=40, b=40))
        return fig


    # -- display --------------------------------------------------------------------------------------
    def widget(self) -> W.Widget:
        """The panel as one ipywidgets box."""
        s = self.sliders
        knobs = W.VBox([W.HBox([s["base_lr"], s["T_0"], s["T_mult"]]),
                        W.HBox([s["eta_min"], s["warmup"], s["cycle_decay"]]),
                        W.HBox([self.apply_button, self.export_button]), self.message])
        parts = [knobs, self.preview] + ([self.live, self.export_area] if self.live is not None else [])
        return W.VBox(parts)

    def static_figure(self) -> go.Figure:
        """Preview (and live traces so far) as one plain figure, for headless runs."""
        self.refresh()
        fig = go.Figure(self.preview)
        if self.live is None:
            return fig
        combo = make_subplots(rows=1, cols=2, subplot_titles=["schedule preview", "validation accuracy"])
        combo.add_trace(go.Scatter(self.preview.data[0]), row=1, col=1)
        combo.add_trace(go.Scatter(self.preview.data[1]), row=1, col=1)
        combo.add_trace(go.Scatter(self.live.data[1]), row=1, col=2)
        combo.update_layout(height=320, showlegend=False)
        return combo

