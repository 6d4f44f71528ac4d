"""Static figures of chapter 01 (plain plotly figures: they render headless and in the browser)."""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.lr import Schedule


def schedules_figure(schedules: Mapping[str, Schedule], horizon: float, points: int = 1000) -> go.Figure:
    """Every schedule over ``[0, horizon)`` epochs, with a line at the end of the budget."""
    t = np.linspace(0, horizon * 1.25, points)
    fig = go.Figure()
    for label, s in schedules.items():
        fig.add_scatter(x=t, y=s.preview(t), name=label, mode="lines")
    fig.add_vline(x=horizon, line=dict(color="black", dash="dash"), annotation_text="end of budget")
    fig.update_layout(height=320, xaxis_title="epoch", yaxis_title="learning rate",
                      margin=dict(l=50, r=20, t=30, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def pitfall_figure(data: Mapping[str, np.ndarray], T_0: int) -> go.Figure:
    """torch's scheduler stepped per batch without vs with the fractional epoch."""
    fig = go.Figure()
    fig.add_scatter(x=data["epoch"], y=data["no_fraction"], name=f"step() per batch: T_0={T_0} counts batches",
                    mode="lines", line=dict(width=1))
    fig.add_scatter(x=data["epoch"], y=data["fractional"], name="step(epoch + i/iters): T_0 counts epochs",
                    mode="lines", line=dict(width=3))
    fig.update_layout(height=300, xaxis_title="epoch", yaxis_title="learning rate",
                      margin=dict(l=50, r=20, t=30, b=40), legend=dict(orientation="h", y=-0.3))
    return fig


def comparison_figure(runs: list[dict]) -> go.Figure:
    """Mean validation accuracy per epoch for each schedule, one panel per task (band = +- sd)."""
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    fig = make_subplots(rows=1, cols=len(tasks), subplot_titles=tasks)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for c, task in enumerate(tasks, start=1):
        labels = list(dict.fromkeys(r["schedule"] for r in runs if r["task"] == task))
        for k, label in enumerate(labels):
            curves = np.array([r["val_accuracy"] for r in runs if r["task"] == task and r["schedule"] == label])
            mean, sd = curves.mean(0), curves.std(0)
            x = np.arange(1, curves.shape[1] + 1)
            color = palette[k % len(palette)]
            fig.add_scatter(x=x, y=mean, name=label, legendgroup=label, showlegend=c == 1,
                            line=dict(color=color), row=1, col=c)
            fig.add_scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([mean + sd, (mean - sd)[::-1]]),
                            fill="toself", fillcolor=color, opacity=0.15, line=dict(width=0),
                            legendgroup=label, showlegend=False, hoverinfo="skip", row=1, col=c)
        fig.update_xaxes(title_text="epoch", row=1, col=c)
    fig.update_yaxes(title_text="validation accuracy", row=1, col=1)
    fig.update_layout(height=360, margin=dict(l=50, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def range_test_figure(result, title: str = "Learning-rate range test") -> go.Figure:
    """A :class:`~dsopt.lr.range_test.RangeTestResult` as a plotly figure: raw and smoothed loss against the rate (log x), suggestions marked.

    Each suggestion is a dashed vertical line (a shape, in data units) with a text label (an
    annotation; plotly places annotations on a log axis in log10 units, so it gets log10(lr)).
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=result.lrs, y=result.losses, mode="lines", name="loss",
                             line=dict(color="rgba(120,120,120,0.45)", width=1)))
    fig.add_trace(go.Scatter(x=result.lrs, y=result.smoothed, mode="lines", name="smoothed loss",
                             line=dict(color="#1f77b4", width=2)))
    colors = {"steepest": "#d62728", "min_div_10": "#2ca02c", "valley": "#ff7f0e"}
    for i, (name, lr) in enumerate(result.suggestions.items()):
        color = colors.get(name, "#9467bd")
        fig.add_vline(x=lr, line=dict(color=color, dash="dash", width=1.5))
        fig.add_annotation(x=math.log10(lr), y=1.0 - 0.07 * i, xref="x", yref="paper", text=f"{name}: {lr:.2e}",
                           showarrow=False, xanchor="left", font=dict(color=color), bgcolor="rgba(255,255,255,0.7)")
    fig.update_xaxes(type="log", title_text="learning rate")
    fig.update_yaxes(title_text="training loss")
    note = " (stopped: loss diverged)" if result.stopped_early else ""
    fig.update_layout(title=title + note, template="plotly_white", legend=dict(x=0.01, y=0.01))
    return fig
