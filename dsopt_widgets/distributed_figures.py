"""Static figures of chapter 06: the scaling study and the ring all-reduce cost model."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.distributed import cost_model as cm

NS = (1, 2, 4, 8, 16, 32, 64, 128)


def efficiency_curves_figure(latency: float, *, bandwidths: dict | None = None, models: dict | None = None,
                             compute: dict | None = None, overlap: float = 0.0, ns=NS) -> go.Figure:
    """Predicted weak-scaling efficiency vs N per (model, link), with the Horovod paper's 88-90 % at 128
    GPUs and the article's 47 % (12 h -> 3.2 h on 8 GPUs) marked."""
    bandwidths = bandwidths or cm.BANDWIDTHS
    models = models or cm.MODEL_GRADIENT_BYTES
    compute = compute or cm.ASSUMED_COMPUTE_S
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=list(models), shared_yaxes=True)
    colors = ["#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd"]
    for c, (model, nbytes) in enumerate(models.items(), start=1):
        for i, (link, bw) in enumerate(bandwidths.items()):
            eff = [100 * cm.predicted_efficiency(n, nbytes, compute[model], bw, latency, overlap=overlap) for n in ns]
            fig.add_scatter(x=list(ns), y=eff, mode="lines+markers", name=link, legendgroup=link, showlegend=c == 1,
                            line=dict(color=colors[i % len(colors)]), row=1, col=c)
        a = cm.ARTICLE
        fig.add_scatter(x=[a["gpus"]], y=[100 * a["hours_1"] / a["hours_n"] / a["gpus"]], mode="markers",
                        marker=dict(symbol="x", size=12, color="black"), name="article: 12 h -> 3.2 h on 8 GPUs (47 %)",
                        legendgroup="article", showlegend=c == 1, row=1, col=c)
        h = cm.HOROVOD_PAPER
        fig.add_scatter(x=[h["gpus"], h["gpus"]], y=[100 * h["efficiency_low"], 100 * h["efficiency_high"]],
                        mode="lines+markers", line=dict(color="black", width=6), name="Horovod paper: ~88-90 % at 128 GPUs",
                        legendgroup="horovod", showlegend=c == 1, row=1, col=c)
        fig.update_xaxes(type="log", title_text="workers N", tickvals=list(ns), row=1, col=c)
    fig.update_yaxes(title_text="predicted scaling efficiency (%)", range=[0, 105], row=1, col=1)
    fig.update_layout(height=380, margin=dict(l=60, r=20, t=50, b=50), legend=dict(orientation="h", y=-0.25),
                      title_text=f"Ring all-reduce model, latency {1e6 * latency:.0f} us per message, overlap {overlap:.0%}")
    return fig


def calibration_figure(points: dict[str, list[dict]], fits: dict) -> go.Figure:
    """Measured all-reduce times (2 workers, this machine) and the fitted ring model per backend."""
    fig = go.Figure()
    for backend, pts in points.items():
        b = np.array([p["bytes"] for p in pts], dtype=float)
        t = np.array([p["seconds"] for p in pts], dtype=float)
        fig.add_scatter(x=b, y=1000 * t, mode="markers", name=f"{backend} measured")
        cal = fits.get(backend)
        if cal is not None:
            xs = np.geomspace(b.min(), b.max(), 50)
            fig.add_scatter(x=xs, y=[1000 * cal.predict(2, x) for x in xs], mode="lines",
                            name=f"{backend} fit: {1e6 * cal.latency:.0f} us + B / {cal.bandwidth / 1e9:.2f} GB/s")
    fig.update_xaxes(type="log", title_text="message size (bytes)")
    fig.update_yaxes(type="log", title_text="all-reduce time (ms)")
    fig.update_layout(height=360, title_text="All-reduce on this machine (2 workers, loopback, gloo)",
                      margin=dict(l=60, r=20, t=50, b=50))
    return fig


def scaling_figure(table: list[dict]) -> go.Figure:
    """Throughput and the compute / exposed-communication split per arm (means over seeds)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["throughput", "time per step"])
    arms = [r["arm"] for r in table]
    fig.add_bar(x=arms, y=[r["throughput"] for r in table],
                error_y=dict(type="data", array=[r["throughput_sd"] for r in table]), name="samples/s", row=1, col=1)
    fig.add_bar(x=arms, y=[r["compute_ms"] for r in table], name="compute (no communication)", row=1, col=2)
    fig.add_bar(x=arms, y=[max(0.0, r["step_ms"] - r["compute_ms"]) for r in table], name="exposed communication + waiting",
                row=1, col=2)
    fig.update_layout(barmode="stack", height=340, margin=dict(l=60, r=20, t=50, b=50), legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(title_text="samples / s", row=1, col=1)
    fig.update_yaxes(title_text="ms per step", row=1, col=2)
    return fig
