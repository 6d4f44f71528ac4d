"""The mixed-precision panel: precision mode and loss-scaler knobs, live scaler traces, gradients vs fp16.

Moving the **init scale** slider shifts the histogram of real gradient magnitudes against fp16's
ranges at once (a pure function of the magnitudes: nothing in the run is touched) and says what
fraction fp16 would flush to zero at that scale. **Apply** sends the precision mode and the scaler's
knobs through the run's Controls; the Trainer applies them at the next step boundary (a new init scale
replaces the current scale). The live figure shows the training loss, the loss scale (growth, and
back-off after each overflow), the skipped steps, the share of activation gradients fp16 would flush to
zero at the current scale, and the step time. The gradient magnitudes come from the run's
:class:`~dsopt.precision.GradientProbe` (fp32, every few steps, on the training thread) -- the panel reads
them, never the model. The memory breakdown per mode is a stacked bar (from
:func:`dsopt.studies.mixed_precision.measure_memory`). Run controls and Export come from the Panel base.

The figures are :class:`~dsopt_widgets.figure.LiveFigure` s (why not FigureWidgets: see that module). The
live figure and the histogram's new probe samples are redrawn at most every ``redraw_interval`` s while
the run trains; a slider move redraws the histogram at once.
"""
from __future__ import annotations

import math
import time
from typing import Any, Mapping

import ipywidgets as W
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.precision import GradientProbe, MixedPrecision, check_supported, scaler_params, supported_modes
from dsopt.precision.scaling import DEFAULTS
from dsopt.util.validation import ParameterError, check_choice
from dsopt_widgets.base import PANEL_LAYOUT, RunPanel
from dsopt_widgets.fields import read_whole, whole_field
from dsopt_widgets.figure import LiveFigure
from dsopt_widgets.live import RecorderFeed
from dsopt_widgets.mixed_precision_figures import gradient_histogram_figure, histogram_data, live_figure, memory_figure

KNOBS = ("precision", "init_scale", "growth_factor", "backoff_factor", "growth_interval")


KINDS = ("activations", "weights")


class MixedPrecisionPanel(RunPanel):
    """Mixed-precision panel on a live run (or on no run: histogram and memory previews only).

    Parameters
    ----------
    trainer / factory / epochs / interactive_epochs / control_schedule: the run, see
        :class:`~dsopt_widgets.base.RunPanel` (e.g. ``factory=functools.partial(live_trainer, scale)``
        with :func:`dsopt.studies.mixed_precision.live_trainer`); its callbacks must include a
        :class:`~dsopt.precision.MixedPrecision` and may include a :class:`~dsopt.precision.GradientProbe`.
    gradients: ``{"activations": array, "weights": array}`` of gradient magnitudes for the histogram
        (default: the run's GradientProbe, refreshed as it samples).
    memory: :func:`~dsopt.studies.mixed_precision.measure_memory`'s result, drawn as stacked bars.
    """

    live_names = ("train_loss", "loss_scale", "skipped_steps", "fp16_underflow")

    def __init__(self, trainer=None, *, factory=None, epochs: int | None = None, interactive_epochs: int | None = None,
                 control_schedule=(), gradients: Mapping[str, Any] | None = None, memory: Mapping | None = None,
                 refresh: float = 0.5, export_command: str = "dsopt run 05"):
        super().__init__(trainer, factory=factory, epochs=epochs, interactive_epochs=interactive_epochs,
                         control_schedule=control_schedule, refresh=refresh, export_command=export_command)
        if self.trainer is None and gradients is None:
            raise ParameterError("gradients", "gradients are required when no run is given")
        self.grads = dict(gradients) if gradients is not None else None
        self.grads_step: int | None = None
        self.memory = memory
        self.last_update_ms: float | None = None
        start = {"precision": "fp32", **DEFAULTS}
        if self.controls is not None:
            start.update({k: v for k, v in self.controls.values().items() if k in KNOBS})
        device = self.trainer.device if self.trainer is not None else "cpu"
        self.modes = supported_modes(device)
        self._make_widgets(start)
        self.apply_button = W.Button(description="Apply", button_style="primary", layout=W.Layout(width="84px"),
                                     tooltip="precision and scaler knobs, from the next step on")
        self.apply_button.on_click(lambda _: self.apply())
        self.readout = W.HTML()
        # new probe samples at most every redraw_interval s (a slider move: at once, forced)
        self.preview = LiveFigure(gradient_histogram_figure(self.grads or {}, self.scale),
                                  min_interval=self.redraw_interval)
        self.live = self.live_figure(live_figure()) if self.trainer is not None else None
        self.memory_fig = LiveFigure(memory_figure(memory["mean"])) if memory is not None else None
        self._on_change()
        for w in (self.scale_exp, self.kind):
            w.observe(self._on_change, names="value")

    # -- the run's callbacks ------------------------------------------------------------------------
    def _bind(self, trainer) -> None:
        super()._bind(trainer)
        cbs = getattr(trainer, "callbacks", [])
        self.mp = next((c for c in cbs if isinstance(c, MixedPrecision)), None)
        self.probe = next((c for c in cbs if isinstance(c, GradientProbe)), None)
        if trainer is not None and self.mp is None:
            raise ParameterError("trainer", "the run has no MixedPrecision callback: build it with one to steer "
                                            "its precision")
        self._timings = RecorderFeed(self.mp.timings) if self.mp is not None else None

    # -- widgets ------------------------------------------------------------------------------------
    def _make_widgets(self, v: dict) -> None:
        style = {"description_width": "110px"}
        lay = W.Layout(width="330px")
        mode = v["precision"] if v["precision"] in self.modes else "fp32"
        self.precision = W.Dropdown(options=self.modes, value=mode, description="precision", style=style,
                                    layout=W.Layout(width="240px"))
        exp = int(round(math.log2(v["init_scale"])))
        self.scale_exp = W.IntSlider(value=exp, min=0, max=max(32, exp), description="init scale 2^k", style=style,
                                     layout=lay, continuous_update=True)
        self.growth_factor = W.FloatSlider(value=v["growth_factor"], min=1.1, max=8.0, step=0.1,
                                           description="growth factor", style=style, layout=lay)
        self.backoff_factor = W.FloatSlider(value=v["backoff_factor"], min=0.05, max=0.95, step=0.05,
                                            description="backoff factor", style=style, layout=lay)
        self.growth_interval = whole_field(v["growth_interval"], "growth interval", style=style,
                                           layout=W.Layout(width="240px"))
        self.kind = W.ToggleButtons(options=KINDS, value="activations", description="gradients of",
                                    style={"description_width": "90px", "button_width": "100px"})

    @property
    def scale(self) -> float:
        return 2.0 ** self.scale_exp.value

    def knob_values(self) -> dict:
        """The widgets' precision and scaler values, validated (a mode this device cannot run is refused)."""
        mode = check_choice("precision", self.precision.value, self.modes)
        if self.trainer is not None:
            check_supported(mode, self.trainer.device)
        return {"precision": mode, **scaler_params(init_scale=self.scale, growth_factor=self.growth_factor.value,
                                                   backoff_factor=self.backoff_factor.value,
                                                   growth_interval=read_whole(self.growth_interval, "growth_interval",
                                                                              low=1, high=10**9))}

    def describe(self, values: dict) -> str:
        parts = []
        for k, v in values.items():
            if k == "init_scale":
                parts.append(f"init_scale=2^{math.log2(v):g}")
            else:
                parts.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
        return ", ".join(parts)

    # -- preview ------------------------------------------------------------------------------------
    def _on_change(self, change=None) -> None:
        """Redraw the histogram at the slider's scale (pure: the run is not touched)."""
        t0 = time.perf_counter()
        if not self.grads:
            self.readout.value = "<i>gradient magnitudes appear once the run's probe has sampled a batch</i>"
            return
        reps = {}
        with self.preview.batch_update(force=True):
            for trace, kind in zip(self.preview.data, KINDS):
                if kind not in self.grads:
                    continue
                x, y, rep = histogram_data(self.grads[kind], self.scale)
                reps[kind] = rep
                trace.x, trace.y = x, y
                trace.name = f"{kind} gradients: {100 * rep['underflow']:.2f} % flushed to 0 in fp16"
                trace.opacity = 0.8 if kind == self.kind.value else 0.3
            self.preview.layout.title.text = f"gradient magnitudes x loss scale 2^{self.scale_exp.value}" + (
                f" (gradients of step {self.grads_step})" if self.grads_step is not None else "")
        r = reps.get(self.kind.value)
        self.last_update_ms = 1000 * (time.perf_counter() - t0)
        if r is not None:
            self.readout.value = (
                f"at scale 2^{self.scale_exp.value}: {100 * r['underflow']:.2f} % of the non-zero {self.kind.value} "
                f"gradients flush to 0 in fp16, {100 * r['subnormal']:.2f} % are subnormal (precision lost), "
                f"{100 * r['overflow']:.3f} % overflow to inf. Press Apply to use this scale in the run.")

    def refresh(self) -> bool:
        """Step times from the MixedPrecision timings and live traces from the Recorder (base: it redraws
        the live figure when due); a new gradient sample when the histogram is due."""
        if self._closed or self.trainer is None:
            return super().refresh()
        if self._timings is not None and self.live is not None:
            new = self._timings.new().get("step_time_ms")
            if new:
                trace = self.live.data[4]  # drawn with the Recorder's traces, by the base's next redraw
                trace.x = tuple(trace.x or ()) + tuple(self._epoch(s) for s in new[0])
                trace.y = tuple(trace.y or ()) + tuple(new[1])
                self._stale = True
        keep = super().refresh()
        snap = self.probe.latest() if self.probe is not None else None
        # the probe samples every few steps; each histogram redraw is a whole plotly render that holds up
        # the page's answer to a key press, so a new sample is taken when the histogram is due
        fresh = snap is not None and snap["step"] != self.grads_step
        if fresh and (self.grads_step is None or not self.trainer.running or self.preview.due()):
            self.grads = {k: snap[k] for k in KINDS}
            self.grads_step = snap["step"]
            self._on_change()
        return keep

    def _clear_live(self) -> None:
        super()._clear_live()
        self.grads_step = None

    # -- display --------------------------------------------------------------------------------------
    def widget(self) -> W.Widget:
        """Knobs, the histogram preview, run controls, live traces, memory bars, Export."""
        wrap = W.Layout(flex_flow="row wrap")
        knobs = W.VBox([
            W.HBox([self.precision, self.scale_exp, self.growth_interval], layout=wrap),
            W.HBox([self.growth_factor, self.backoff_factor], layout=wrap),
            W.HBox([self.apply_button, self.message], layout=W.Layout(align_items="center")),
            W.HBox([self.kind, self.readout], layout=W.Layout(align_items="center", flex_flow="row wrap")),
        ])
        parts = [knobs, self.preview.widget]
        if self.trainer is not None:
            parts += [self.run_box(), self.live.widget]
        if self.memory_fig is not None:
            parts.append(self.memory_fig.widget)
        if self.trainer is not None:
            parts.append(self.export_box())
        return W.VBox(parts, layout=W.Layout(width="100%", overflow="hidden"))

    def static_figure(self) -> go.Figure:
        """Histogram, memory bars and the live run's traces in one figure, for headless runs."""
        self.refresh()
        rows = 2 if self.live is not None else 1
        titles = [self.preview.layout.title.text or "gradient magnitudes",
                  "memory of one training step (MB)" if self.memory_fig is not None else ""]
        if rows == 2:
            titles += ["live run: loss scale", "live run: skipped steps (total)"]
        fig = make_subplots(rows=rows, cols=2, subplot_titles=titles, vertical_spacing=0.22, horizontal_spacing=0.1)
        for tr in self.preview.data:
            fig.add_trace(go.Bar(tr), row=1, col=1)
        if self.memory_fig is not None:
            for tr in self.memory_fig.data:
                fig.add_trace(tr.__class__(tr), row=1, col=2)
            fig.update_layout(barmode="stack")
        fig.update_xaxes(title_text="log2 |gradient x scale|", row=1, col=1)
        fig.update_yaxes(title_text="fraction", row=1, col=1)
        for shape in self.preview.layout.shapes:
            fig.add_vrect(x0=shape.x0, x1=shape.x1, fillcolor=shape.fillcolor, opacity=shape.opacity, line_width=0,
                          layer="below", row=1, col=1)
        if rows == 2:
            fig.add_trace(go.Scatter(self.live.data[1]), row=2, col=1)
            fig.add_trace(go.Scatter(self.live.data[2]), row=2, col=2)
            fig.update_yaxes(type="log", exponentformat="power", title_text="scale", row=2, col=1)
            fig.update_yaxes(title_text="steps", rangemode="tozero", row=2, col=2)
            fig.update_xaxes(title_text="epoch", row=2, col=1)
            fig.update_xaxes(title_text="epoch", row=2, col=2)
        fig.update_layout(**PANEL_LAYOUT, height=360 * rows, showlegend=False)
        return fig
