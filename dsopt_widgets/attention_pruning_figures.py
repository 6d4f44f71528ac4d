"""Static figures of chapter 02 (plain plotly figures: they render headless and in the browser)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _grid(importance) -> np.ndarray:
    return np.asarray(importance, dtype=float)


def pruned_markers(heads: Mapping[int, Sequence[int]]) -> tuple[list[int], list[int]]:
    """(x = head, y = layer) of every head in a head set, for an "x" marker trace."""
    xs, ys = [], []
    for layer, hs in sorted(heads.items()):
        for h in hs:
            xs.append(int(h))
            ys.append(int(layer))
    return xs, ys


def add_importance_heatmap(fig: go.Figure, importance, heads: Mapping[int, Sequence[int]] | None = None, *,
                           row: int | None = None, col: int | None = None, showscale: bool = True,
                           colorbar_x: float | None = None) -> None:
    """A layer x head heatmap of ``importance`` plus an "x" marker on each head of ``heads`` (pruned)."""
    z = _grid(importance)
    L, H = z.shape
    where = {} if row is None else {"row": row, "col": col}
    cb = {"title": {"text": "importance"}, "len": 0.9}
    if colorbar_x is not None:
        cb["x"] = colorbar_x
    fig.add_trace(go.Heatmap(z=np.where(np.isnan(z), None, z).tolist(), x=list(range(H)), y=list(range(L)),
                             colorscale="Viridis", showscale=showscale, colorbar=cb,
                             hovertemplate="layer %{y}, head %{x}: %{z:.4g}<extra></extra>"), **where)
    xs, ys = pruned_markers(heads or {})
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="pruned",
                             marker=dict(symbol="x", size=14 if L * H <= 16 else 9, color="#d62728",
                                         line=dict(width=2, color="white")),
                             hovertemplate="pruned: layer %{y}, head %{x}<extra></extra>"), **where)
    fig.update_xaxes(title_text="head", dtick=1, **where)
    fig.update_yaxes(title_text="layer", dtick=1, autorange="reversed", **where)


def importance_grid_figure(importances: Mapping[str, object], heads: Mapping[str, Mapping] | None = None) -> go.Figure:
    """One heatmap per method, side by side (each with its own scale: methods use different units)."""
    names = list(importances)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
    for c, name in enumerate(names, start=1):
        add_importance_heatmap(fig, importances[name], (heads or {}).get(name), row=1, col=c, showscale=False)
    fig.update_layout(height=300, margin=dict(l=50, r=20, t=40, b=40), showlegend=False)
    return fig


def row_means_figure(lengths: Sequence[int], row_min: Sequence[float], row_max: Sequence[float],
                     threshold: float = 0.1) -> go.Figure:
    """The article's statistic on real attention maps: min and max over every row vs 1/L, per length L."""
    L = np.asarray(lengths, dtype=float)
    grid = np.linspace(max(1.0, L.min() - 1), L.max() + 1, 200)
    fig = go.Figure()
    fig.add_scatter(x=grid, y=1 / grid, mode="lines", name="1 / L", line=dict(color="#888", dash="dot"))
    fig.add_scatter(x=L, y=row_min, mode="markers", name="smallest row mean", marker=dict(symbol="triangle-down", size=9))
    fig.add_scatter(x=L, y=row_max, mode="markers", name="largest row mean", marker=dict(symbol="triangle-up", size=9))
    fig.add_hline(y=threshold, line=dict(color="#d62728", dash="dash"), annotation_text=f"threshold {threshold:g}")
    fig.update_layout(height=300, xaxis_title="L = keys per row (padded batch length)",
                      yaxis_title="mean over the last axis", yaxis_type="log",
                      margin=dict(l=50, r=20, t=30, b=40), legend=dict(orientation="h", y=-0.3))
    return fig


def accuracy_figure(table: list[dict], baseline_accuracy: float, kept: float = 0.98, key: str = "accuracy",
                    title: str = "test accuracy") -> go.Figure:
    """Accuracy (``key`` of the table rows, e.g. "val_accuracy") vs fraction of heads removed, one line per
    method (+- sd over seeds)."""
    fig = go.Figure()
    for k, method in enumerate(dict.fromkeys(r["method"] for r in table)):
        rows = sorted((r for r in table if r["method"] == method), key=lambda r: r["fraction"])
        x = [0.0] + [r["fraction"] for r in rows]
        y = [baseline_accuracy] + [r[key] for r in rows]
        sd = [0.0] + [r[f"{key}_sd"] for r in rows]
        fig.add_scatter(x=x, y=y, name=method, mode="lines+markers", line=dict(color=PALETTE[k % len(PALETTE)]),
                        error_y=dict(type="data", array=sd, visible=any(s > 0 for s in sd)))
    fig.add_hline(y=kept * baseline_accuracy, line=dict(color="#888", dash="dash"),
                  annotation_text=f"{100 * kept:.0f} % of unpruned accuracy")
    fig.update_layout(height=340, xaxis_title="fraction of heads removed", yaxis_title=title,
                      xaxis_tickformat=".0%", yaxis_tickformat=".0%",
                      margin=dict(l=50, r=20, t=30, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def latency_figure(rows: list[dict]) -> go.Figure:
    """Measured latency reduction next to the cost model's FLOPs reduction, per batch x length."""
    labels = [f"{r['label']}: {r['batch_size']}x{r['length']}" for r in rows]
    fig = go.Figure()
    fig.add_bar(x=labels, y=[r["flops_cut"] for r in rows], name="FLOPs removed (cost model)", marker_color="#9ecae1")
    fig.add_bar(x=labels, y=[r["latency_cut"] for r in rows], name="latency removed (measured)", marker_color="#08519c")
    fig.update_layout(barmode="group", height=320, yaxis_title="reduction", yaxis_tickformat=".0%",
                      margin=dict(l=50, r=20, t=30, b=60), legend=dict(orientation="h", y=-0.35))
    return fig

