"""The loss-weighting panel: scheme and parameter knobs, instant weight curves, live per-class traces.

Moving a slider redraws the weight curves of the chosen scheme (and of the schemes picked in
"overlay") at once, from pure functions of dsopt.weighting.schemes; the run is not touched. **Apply** sends
the scheme and its parameters through the run's Controls (knobs of a ``WeightingCallback``), which
the Trainer applies at the next step boundary, so the loss switches from that step on; invalid
values are shown in the message line and not applied. **Export** shows the session's applied
changes as papermill parameters (``control_schedule``) that replay it headless. The live figure
(validation recall per class, PR-AUC, per-class weight distribution) is refreshed from the Recorder
on the kernel's main thread. With no frontend the panel renders one static figure and returns.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.util.validation import ParameterError
from dsopt.weighting import SCHEMES, WeightingCallback, make_scheme
from dsopt_widgets.base import RunPanel
from dsopt_widgets.dynamic_weighting_figures import (
    CURVE_TITLES,
    LIVE_TITLES,
    STYLE_TITLE,
    TRACE_KINDS,
    curves_figure,
    live_figure,
    live_record_names,
    scheme_curves,
)
from dsopt_widgets.figure import LiveFigure

KNOB_NAMES = ("scheme", "gamma", "alpha", "beta", "confidence")


def describe(name: str, params: Mapping[str, Any]) -> str:
    """``focal (gamma=2, alpha=0.25)``: a scheme and its parameters as one readable label."""
    inner = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return f"{name} ({inner})" if inner else name



def _floats(values) -> np.ndarray:
    """float64 arrays: plotly validates them without a per-element pass (half the time of a list on 2 cores) and
    sends them base64-encoded (plotly >= 6), which the page decodes faster than JSON numbers."""
    return np.asarray(values, dtype=float)

class WeightingPanel(RunPanel):
    """Loss-weighting panel on a live run (or on no run: preview only).

    Parameters
    ----------
    trainer: a :class:`dsopt.Trainer` whose callbacks include a :class:`dsopt.weighting.WeightingCallback`
        (its Controls then know the knobs ``scheme, gamma, alpha, beta, confidence``; its class counts
        feed the class-dependent curves). Add a :class:`dsopt.metrics.per_class.ClassMetricsCallback` for the
        live recall / PR-AUC traces. ``None`` with no ``factory`` gives a preview-only panel.
    factory: ``factory(*, epochs, control_schedule) -> Trainer`` building a fresh seeded run (e.g.
        ``functools.partial(dsopt.studies.dynamic_weighting.live_trainer, task, seed=0)``); enables Restart.
        ``epochs``, ``interactive_epochs``, ``control_schedule``: see :class:`~dsopt_widgets.base.RunPanel`.
    values: initial knob values (default: the run's applied values, else the schemes' defaults).
    counts: training examples per class (default: the WeightingCallback's).
    overlay: schemes drawn next to the chosen one (default: focal and inverse frequency).
    """

    def __init__(self, trainer=None, *, factory=None, epochs: int | None = None, interactive_epochs: int | None = None,
                 control_schedule=(), values: Mapping[str, Any] | None = None, counts=None,
                 overlay: tuple[str, ...] = ("focal", "inverse_frequency"), points: int = 201, refresh: float = 0.5,
                 export_command: str = "dsopt run 04"):
        super().__init__(trainer, factory=factory, epochs=epochs, interactive_epochs=interactive_epochs,
                         control_schedule=control_schedule, refresh=refresh, export_command=export_command)
        cb = self._weighting_callback()
        if self.trainer is not None and cb is None:
            raise ParameterError("trainer", "trainer has no WeightingCallback: build it with one to steer its loss")
        if counts is None and cb is not None:
            counts = cb.class_counts
        self.counts = None if counts is None else [int(c) for c in counts]
        self.n_classes = len(self.counts) if self.counts is not None else 2
        start = {"scheme": "none", **{p.name: p.default for s in SCHEMES.values() for p in s.params}}
        if self.controls is not None:
            start.update({k: v for k, v in self.controls.values().items() if k in KNOB_NAMES})
        start.update(values or {})
        self.points = points
        self.last_update_ms: float | None = None
        self._make_widgets(start, overlay)
        self.apply_button = W.Button(description="Apply", button_style="primary", tooltip="switch the loss at the next step",
                                     layout=W.Layout(width="84px"))
        self.apply_button.on_click(lambda _: self.apply())
        self.preview = LiveFigure(curves_figure(n_classes=self.n_classes, counts=self.counts, points=points))
        self.live = self.live_figure(live_figure(self.n_classes)) if self.trainer is not None else None
        self.live_names = tuple(live_record_names(self.n_classes))
        self._on_change()
        for w in (self.scheme, self.gamma, self.alpha_on, self.alpha, self.beta, self.confidence, self.overlay):
            w.observe(self._on_change, names="value")

    def _weighting_callback(self):
        return next((c for c in getattr(self.trainer, "callbacks", []) if isinstance(c, WeightingCallback)), None)

    # -- widgets ------------------------------------------------------------------------------------
    def _make_widgets(self, v: dict, overlay) -> None:
        style = {"description_width": "90px"}
        alpha = v.get("alpha")
        self.scheme = W.Dropdown(options=list(SCHEMES), value=v["scheme"], description="scheme", style=style)
        self.gamma = W.FloatSlider(value=float(v["gamma"]), min=0.0, max=10.0, step=0.1, description="gamma",
                                   style=style, continuous_update=True, readout_format=".1f")
        self.alpha_on = W.Checkbox(value=alpha is not None, description="class factor alpha", indent=False)
        self.alpha = W.FloatSlider(value=0.25 if alpha is None else float(alpha), min=0.0, max=1.0, step=0.05,
                                   description="alpha", style=style, readout_format=".2f")
        self.beta = W.FloatText(value=float(v["beta"]), description="beta", style=style, layout=W.Layout(width="220px"),
                                tooltip="effective-number beta in [0, 1), e.g. 0.999 or 0.9999")
        self.confidence = W.ToggleButtons(options=["probability", "logit"], value=v["confidence"],
                                          description="confidence", style=style)
        self.overlay = W.SelectMultiple(options=list(SCHEMES), value=tuple(s for s in overlay if s in SCHEMES),
                                        description="overlay", rows=len(SCHEMES), style=style)

    def values(self) -> dict:
        """The widgets' values as knob values (unvalidated)."""
        return {"scheme": self.scheme.value, "gamma": self.gamma.value,
                "alpha": self.alpha.value if self.alpha_on.value else None, "beta": self.beta.value,
                "confidence": self.confidence.value}

    def scheme_params(self, name: str, values: Mapping[str, Any] | None = None) -> dict:
        """The parameters of scheme ``name`` taken from ``values`` (default: the widgets)."""
        values = self.values() if values is None else values
        return {p.name: values[p.name] for p in SCHEMES[name].params if p.name in values}

    def _drawn(self) -> list[str]:
        return [self.scheme.value] + [s for s in self.overlay.value if s != self.scheme.value]

    # -- preview ------------------------------------------------------------------------------------
    def _on_change(self, change=None) -> None:
        t0 = time.perf_counter()
        values = self.values()
        for w, name in ((self.gamma, "gamma"), (self.alpha, "alpha"), (self.alpha_on, "alpha"), (self.beta, "beta"),
                        (self.confidence, "confidence")):
            w.disabled = not any(p.name == name for s in self._drawn() for p in SCHEMES[s].params)
        try:
            curves = {s: scheme_curves(s, self.scheme_params(s, values), self.n_classes, self.counts, self.points)
                      for s in self._drawn()}
        except ParameterError as exc:
            self._say(str(exc), error=True)
            return
        names = list(SCHEMES)
        with self.preview.batch_update():
            for i, name in enumerate(names):
                c = curves.get(name)
                chosen = name == self.scheme.value
                for j, kind in enumerate(TRACE_KINDS):
                    tr = self.preview.data[4 * i + j]
                    tr.visible = c is not None
                    if c is None:
                        continue
                    if kind in ("minority", "majority"):
                        tr.x, tr.y = _floats(c["p"]), _floats(c[kind])
                    else:
                        axis = "3" if c["axis"] == "logit" else "2"
                        tr.update(x=_floats(c["confidence"]), y=_floats(c[kind]), xaxis=f"x{axis}", yaxis=f"y{axis}")
                    tr.opacity = 1.0 if chosen else 0.45
        self.last_update_ms = 1000 * (time.perf_counter() - t0)
        chosen = self.scheme.value
        c = curves[chosen]
        i9 = int(np.argmin(np.abs(c["p"] - 0.9)))
        others = ", ".join(describe(s, self.scheme_params(s, values)) for s in self._drawn()[1:])
        self._say(f"preview: {describe(chosen, self.scheme_params(chosen, values))}"
                  + (f" | overlay: {others}" if others else "")
                  + f" | minority weight at p_t=0.9: {c['minority'][i9]:.3g} (press Apply to change the run)")

    # -- run ------------------------------------------------------------------------------------------
    def knob_values(self) -> dict:
        """The chosen scheme and its parameters as Controls values (validated by building the scheme)."""
        name = self.scheme.value
        params = dict(make_scheme(name, **self.scheme_params(name)).params)
        params.pop("detach", None)  # not a knob: the article's weight is always a constant
        return {"scheme": name, **params}

    def describe(self, values: dict) -> str:
        values = dict(values)
        name = values.pop("scheme", None)
        return describe(name, values) if name else super().describe(values)

    def apply(self) -> dict | None:
        """Queue the chosen scheme and its parameters in the run's Controls (applied at the next step).

        Returns the queued values, or None when refused (message shown, nothing queued). The message
        names the whole scheme switched to (not only the parameters that changed).
        """
        queued = super().apply()
        if queued is not None and self._awaiting is not None:
            self._awaiting = (self._awaiting[0], self.describe(queued))
        return queued

    # -- display --------------------------------------------------------------------------------------
    def widget(self) -> W.Widget:
        """The panel as one ipywidgets box: knobs, weight curves, run controls, live traces, Export."""
        knobs = W.HBox([
            W.VBox([self.scheme, self.confidence, self.gamma, W.HBox([self.alpha_on, self.alpha]), self.beta]),
            self.overlay,
        ], layout=W.Layout(flex_flow="row wrap"))
        parts = [knobs, W.HBox([self.apply_button, self.message], layout=W.Layout(align_items="center")), self.preview.widget]
        if self.trainer is not None:
            parts += [self.run_box(), self.live.widget, self.export_box()]
        return W.VBox(parts, layout=W.Layout(width="100%", overflow="hidden"))

    def static_figure(self) -> go.Figure:
        """Curves (and the live run's traces) as one plain figure, for headless runs."""
        self.refresh(force=True)
        rows = 2 if self.live is not None else 1
        fig = make_subplots(rows=rows, cols=3, subplot_titles=CURVE_TITLES + (LIVE_TITLES if rows == 2 else ()),
                            vertical_spacing=0.22, horizontal_spacing=0.08)
        for row, source in ((1, self.preview), (2, self.live)):
            if source is None:
                continue
            for tr in source.data:
                if tr.visible is False:
                    continue
                col = {"x": 1, "x2": 2, "x3": 3}[tr.xaxis or "x"]
                fig.add_trace(go.Scatter(tr).update(xaxis=None, yaxis=None), row=row, col=col)
            for col in (1, 2, 3):  # the same axis titles, types and ranges as the panel's figures
                suffix = "" if col == 1 else str(col)
                for axis, update in (("xaxis", fig.update_xaxes), ("yaxis", fig.update_yaxes)):
                    a = source.layout[axis + suffix]
                    update(title_text=a.title.text, type=a.type, range=a.range, exponentformat=a.exponentformat,
                           tickformat=a.tickformat, row=row, col=col)
        fig.update_layout(height=360 * rows + 80, margin=dict(l=65, r=25, t=60, b=100), title=STYLE_TITLE,
                          legend=dict(orientation="h", yref="container", y=0.0, yanchor="bottom", x=0.0))
        return fig
