"""Chapter 07's figures: ARL curves, the live stream (accuracy, drift, charts with alarms), the study's
accuracy-over-time and detection delays, and the Prometheus dashboards drawn from Prometheus' own answers.

All figures follow the cell width; axes carry units (windows of predictions, standardised units, %).
Lists, not NumPy arrays, go into traces (they are re-sent as JSON on every redraw of a live figure).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.monitor import CUSUM, EWMA, WE_RULES, Shewhart, arl_curve
from dsopt_widgets.base import LEGEND_BELOW, PANEL_LAYOUT

SHIFTS = tuple(float(x) for x in np.round(np.arange(0.0, 3.01, 0.25), 2))
COLORS = {"shewhart": "#7f7f7f", "shewhart_we": "#9467bd", "ewma": "#1f77b4", "cusum": "#d62728",
          "none": "#7f7f7f", "monitor": "#1f77b4", "periodic": "#ff7f0e"}
CHART_TITLES = {"shewhart": "Shewhart 3-sigma", "shewhart_we": "Shewhart + WE rules", "ewma": "EWMA", "cusum": "CUSUM"}
ARM_TITLES = {"none": "no monitoring", "monitor": "monitoring + retraining loop", "periodic": "periodic retraining"}


# -- ARL preview ------------------------------------------------------------------------------------------
def knob_charts(knobs: dict) -> dict:
    """The four charts of the preview: EWMA and CUSUM from the knobs, Shewhart (3 sigma) with and without WE rules."""
    return {"ewma": EWMA(knobs["lambda"], knobs["L"]), "cusum": CUSUM(knobs["k"], knobs["h"]),
            "shewhart": Shewhart(3.0), "shewhart_we": Shewhart(3.0, WE_RULES)}


def arl_curves(charts: dict, shifts=SHIFTS, states: int = 151) -> dict[str, list[float]]:
    """Markov-chain ARL at each shift per chart (fast: a preview while knobs move). Each chart's curve is
    computed once (charts are frozen values): the fixed Shewhart charts and a revisited knob cost nothing."""
    return {name: list(_curve(chart, tuple(shifts), states)) for name, chart in charts.items()}


@functools.lru_cache(maxsize=256)
def _curve(chart, shifts: tuple, states: int) -> tuple[float, ...]:
    return tuple(float(v) for v in arl_curve(chart, shifts, states=states))


def arl_figure(curves: dict[str, list[float]], shifts=SHIFTS, title: str = "ARL vs shift") -> go.Figure:
    fig = go.Figure()
    for name, ys in curves.items():
        fig.add_scatter(x=list(shifts), y=ys, name=CHART_TITLES.get(name, name), mode="lines+markers",
                        line=dict(color=COLORS.get(name)))
    fig.update_xaxes(title_text="mean shift (sigma of the standardised statistic)")
    fig.update_yaxes(title_text="average run length (windows, log scale)", type="log")
    fig.update_layout(**PANEL_LAYOUT, height=330, legend=LEGEND_BELOW, title=dict(text=title, x=0.5))
    fig.update_layout(margin_b=100)
    return fig


# -- the live stream ---------------------------------------------------------------------------------------
#: Recorder name of each live trace, in trace order (see dsopt.studies.monitoring.live.StreamReplay)
LIVE_NAMES = (
    "accuracy", "new_fraction", "event/labels_requested", "event/promoted", "event/rejected",
    "drift",
    "stat/drift/ewma", "stat/confidence/ewma", "ucl/drift/ewma", "lcl/drift/ewma", "alarm/drift/ewma",
    "alarm/confidence/ewma",
    "stat/drift/cusum", "stat/confidence/cusum", "ucl/drift/cusum", "lcl/drift/cusum", "alarm/drift/cusum",
    "alarm/confidence/cusum",
)
_ROW_TITLES = ("served accuracy per window (and share of financial news)", "embedding drift score",
               "EWMA on drift and confidence (standardised)", "CUSUM on drift and confidence (standardised)")


def live_figure(change_window: int | None = None) -> go.Figure:
    """Four stacked rows, one trace per LIVE_NAMES entry, empty (filled from the Recorder)."""
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=_ROW_TITLES)
    e = dict(x=[], y=[])
    fig.add_scatter(**e, name="accuracy", line=dict(color="#1f77b4"), row=1, col=1)
    fig.add_scatter(**e, name="share of news", line=dict(color="#7f7f7f", dash="dot"), row=1, col=1)
    fig.add_scatter(**e, name="labels requested", mode="markers", marker=dict(symbol="triangle-up", size=10,
                                                                               color="#ff7f0e"), row=1, col=1)
    fig.add_scatter(**e, name="promoted", mode="markers", marker=dict(symbol="star", size=12, color="#2ca02c"),
                    row=1, col=1)
    fig.add_scatter(**e, name="rejected", mode="markers", marker=dict(symbol="x", size=10, color="#d62728"), row=1,
                    col=1)
    fig.add_scatter(**e, name="drift score", line=dict(color="#8c564b"), row=2, col=1)
    for row, chart in ((3, "ewma"), (4, "cusum")):
        fig.add_scatter(**e, name=f"{chart.upper()} drift", line=dict(color="#8c564b"), row=row, col=1)
        fig.add_scatter(**e, name=f"{chart.upper()} confidence", line=dict(color="#17becf"), row=row, col=1)
        for lim in ("UCL", "LCL"):
            fig.add_scatter(**e, name=f"{chart.upper()} {lim}", line=dict(color="#d62728", dash="dash", width=1),
                            row=row, col=1, showlegend=lim == "UCL")
        for sig, color in (("drift", "#8c564b"), ("confidence", "#17becf")):
            fig.add_scatter(**e, name=f"alarm ({sig})", mode="markers",
                            marker=dict(symbol="circle-open", size=11, line=dict(width=2, color=color)), row=row,
                            col=1, showlegend=chart == "ewma")
    fig.update_yaxes(title_text="accuracy / share", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="score (sd)", row=2, col=1)
    fig.update_yaxes(title_text="statistic", row=3, col=1)
    fig.update_yaxes(title_text="statistic", row=4, col=1)
    fig.update_xaxes(title_text="window (of predictions)", row=4, col=1)
    if change_window is not None:
        for row in range(1, 5):
            fig.add_vline(x=change_window - 0.5, line=dict(color="#999", dash="dot"), row=row, col=1)
    fig.update_layout(**PANEL_LAYOUT, height=820, legend=LEGEND_BELOW)
    fig.update_layout(margin_b=110)
    return fig


def series_from_run(run: dict) -> dict[str, tuple[list, list]]:
    """A study run (``run_arm`` / ``StreamSession.result``) as ``{LIVE_NAMES entry: (windows, values)}``."""
    n = len(run["accuracy"])
    w = list(range(n))
    out = {"accuracy": (w, run["accuracy"]), "new_fraction": (w, run["new_fraction"]),
           "drift": ([i for i in w if run["drift"][i] is not None], [v for v in run["drift"] if v is not None])}
    for ev in ("labels_requested", "promoted", "rejected"):
        xs = [e[0] for e in run["events"] if e[1] == ev and e[0] < n]
        out[f"event/{ev}"] = (xs, [run["accuracy"][x] for x in xs])
    for chart in ("ewma", "cusum"):
        for sig in ("drift", "confidence"):
            s = run["charts"].get(f"{sig}/{chart}")
            if not s:
                continue
            out[f"stat/{sig}/{chart}"] = (s["window"], s["statistic"])
            alarms = [(x, y) for x, y, a in zip(s["window"], s["statistic"], s["alarm"]) if a]
            out[f"alarm/{sig}/{chart}"] = ([a[0] for a in alarms], [a[1] for a in alarms])
            if sig == "drift":
                out[f"ucl/drift/{chart}"] = (s["window"], s["upper"])
                out[f"lcl/drift/{chart}"] = (s["window"], [-u for u in s["upper"]])
    return out


def fill(fig: go.Figure, series: dict[str, tuple[list, list]], names=LIVE_NAMES) -> go.Figure:
    """Put ``series`` into the traces of a :func:`live_figure` (by LIVE_NAMES order)."""
    for trace, name in zip(fig.data, names):
        if name in series:
            trace.x, trace.y = list(series[name][0]), list(series[name][1])
    return fig


def run_figure(run: dict, title: str = "") -> go.Figure:
    """One run of the study drawn like the live panel (accuracy, drift, EWMA and CUSUM with alarms)."""
    fig = fill(live_figure(run.get("change_window")), series_from_run(run))
    if title:
        fig.update_layout(title=dict(text=title, x=0.5))
    return fig


# -- the study -----------------------------------------------------------------------------------------------
def accuracy_figure(summary: dict) -> go.Figure:
    """Mean served accuracy per window over the stream seeds, per arm, with the shift marked."""
    fig = go.Figure()
    change, n = summary["change_window"], summary["n_windows"]
    for arm, curve in summary["accuracy_curves"].items():
        k = max(1, summary["smooth"] // 2)
        smooth = np.convolve(curve, np.ones(k) / k, mode="valid").tolist()
        fig.add_scatter(x=list(range(k - 1, k - 1 + len(smooth))), y=[100 * v for v in smooth],
                        name=ARM_TITLES.get(arm, arm), line=dict(color=COLORS.get(arm)))
    launch = next((r["launch_accuracy"] for r in summary["arms"]), None)
    if launch is not None:
        fig.add_hline(y=100 * launch, line=dict(color="#2ca02c", dash="dash"), annotation_text="launch accuracy")
        fig.add_hline(y=100 * (launch - summary["margin"]), line=dict(color="#d62728", dash="dot"),
                      annotation_text=f"decay threshold (launch - {100 * summary['margin']:g} points)")
    fig.add_vrect(x0=change - 0.5, x1=n, fillcolor="#999", opacity=0.08, line_width=0,
                  annotation_text="shift to financial news", annotation_position="top left")
    fig.update_xaxes(title_text="window (of predictions)")
    fig.update_yaxes(title_text=f"accuracy (%, mean over seeds, {max(1, summary['smooth'] // 2)}-window mean)")
    fig.update_layout(**PANEL_LAYOUT, height=380, legend=LEGEND_BELOW)
    fig.update_layout(margin_b=100)
    return fig


def detection_figure(summary: dict) -> go.Figure:
    """Detection delay (windows after the shift began) per chart and signal: mean over detected seeds, with sd."""
    fig = go.Figure()
    signals = list(dict.fromkeys(r["signal"] for r in summary["detection"]))
    for chart in CHART_TITLES:
        rows = [next(r for r in summary["detection"] if r["signal"] == s and r["chart"] == chart) for s in signals]
        fig.add_bar(x=signals, y=[None if r["delay_mean"] != r["delay_mean"] else r["delay_mean"] for r in rows],
                    error_y=dict(type="data", array=[0 if r["delay_sd"] != r["delay_sd"] else r["delay_sd"]
                                                     for r in rows]),
                    name=CHART_TITLES[chart], marker_color=COLORS[chart],
                    text=[f"{r['detected']}/{r['n_seeds']}" for r in rows], textposition="outside")
    fig.update_xaxes(title_text="signal (text on bars: streams where the chart fired after the shift)")
    fig.update_yaxes(title_text="detection delay (windows after the shift began)")
    fig.update_layout(**PANEL_LAYOUT, height=360, barmode="group", legend=LEGEND_BELOW)
    fig.update_layout(margin_b=100)
    return fig


# -- dashboards over Prometheus' answers ---------------------------------------------------------------------
def dashboard_figure(result: dict, cols: int = 3) -> go.Figure:
    """The Grafana dashboard's panels, drawn from what Prometheus returned (``serve_to_prometheus`` output)."""
    panels = result["panels"]
    rows = math.ceil(len(panels) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p["title"] for p in panels], vertical_spacing=0.12,
                        horizontal_spacing=0.08)
    for i, p in enumerate(panels):
        r, c = i // cols + 1, i % cols + 1
        for s in p["series"][:8]:
            fig.add_scatter(x=s["t"], y=s["y"], name=s["legend"], mode="lines", showlegend=False, row=r, col=c,
                            hovertemplate=f"{s['legend']}<br>%{{x:.1f}} s: %{{y:.4g}}<extra></extra>")
        fig.update_xaxes(title_text="seconds since the replay began", row=r, col=c, title_font=dict(size=10))
        unit = {"reqps": "per second", "s": "seconds", "percentunit": "fraction", "none": "value"}.get(p["unit"], p["unit"])
        fig.update_yaxes(title_text=unit, row=r, col=c, title_font=dict(size=10))
    fig.update_layout(**PANEL_LAYOUT, height=300 * rows)
    fig.update_annotations(font_size=11)
    return fig
