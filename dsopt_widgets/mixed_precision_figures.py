"""Figures of chapter 05 (plain plotly figures: they render headless and in the browser).

The gradient histogram puts real gradient magnitudes on a log2 axis against what fp16 and bf16 can
hold; multiplying by a loss scale S shifts every magnitude by log2(S), which is all the preview does.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.precision import FORMATS, log2_histogram, representation
from dsopt.precision.memory import PARTS
from dsopt_widgets.base import LEGEND_BELOW, PANEL_LAYOUT

#: log2 range drawn on the histogram's x axis.
LOG2_RANGE = (-48, 20)
MODE_COLORS = {"fp32": "#1f77b4", "bf16": "#2ca02c", "fp16": "#d62728"}
PART_COLORS = {"parameters": "#1f77b4", "gradients": "#ff7f0e", "optimizer_state": "#9467bd",
               "activations": "#2ca02c", "parameter_copies": "#8c564b"}
PART_LABELS = {"parameters": "parameters (fp32)", "gradients": "gradients (fp32)",
               "optimizer_state": "Adam state (fp32)", "activations": "saved activations",
               "parameter_copies": "autocast's weight copies"}


def histogram_data(values, scale: float = 1.0) -> tuple[list[float], list[float], dict | None]:
    """Bin centres (log2 of |g| x ``scale``), the fraction of non-zero values per bin, and the fp16
    representation at that scale (:func:`dsopt.precision.representation`). Lists, for FigureWidget.

    ``values``: gradient magnitudes, or an already computed :func:`~dsopt.precision.log2_histogram`
    (``{"edges", "counts"}``, e.g. from a stored run; then the representation is None)."""
    if isinstance(values, Mapping):
        h, rep = {"edges": np.asarray(values["edges"]), "counts": np.asarray(values["counts"])}, None
    else:
        h, rep = log2_histogram(values), representation(values, "fp16", scale)
    shift = math.log2(scale)
    n = max(int(h["counts"].sum()), 1)
    centres = (h["edges"][:-1] + 0.5 + shift).tolist()
    frac = (h["counts"] / n).tolist()
    return centres, frac, rep


def _bands(fig: go.Figure) -> None:
    """Shade fp16's ranges on a log2 axis: flushed to zero, subnormal, normal, inf."""
    f16, b16 = FORMATS["fp16"], FORMATS["bf16"]
    zero = math.log2(f16.min_subnormal) - 1  # below half the smallest subnormal fp16 rounds to zero
    normal, top = math.log2(f16.min_normal), math.log2(f16.max)
    for x0, x1, color, text in ((LOG2_RANGE[0], zero, "#d62728", "fp16: 0"),
                                (zero, normal, "#ff7f0e", "fp16 subnormal"),
                                (normal, top, "#2ca02c", "fp16 normal"),
                                (top, LOG2_RANGE[1], "#d62728", "inf")):
        fig.add_vrect(x0=x0, x1=x1, fillcolor=color, opacity=0.10, line_width=0, layer="below")
        fig.add_annotation(x=(x0 + x1) / 2, y=1.0, yref="y domain", text=text, showarrow=False, yanchor="bottom",
                           font=dict(size=10))
    fig.add_annotation(x=LOG2_RANGE[0] + 1, y=0.9, yref="y domain", xanchor="left", showarrow=False,
                       text=f"bf16 holds 2^{math.log2(b16.min_subnormal):.0f} to 2^{math.log2(b16.max):.0f}: "
                            "nothing here underflows in bf16", font=dict(size=10, color="#2ca02c"))


def gradient_histogram_figure(grads: Mapping[str, np.ndarray], scale: float = 1.0, *, title: str = "",
                              height: int = 340) -> go.Figure:
    """Histogram of log2 |gradient| x ``scale`` (activation and weight gradients) over fp16's ranges."""
    fig = go.Figure()
    for kind, color in (("activations", "#1f77b4"), ("weights", "#9467bd")):  # both traces always (updated in place)
        if kind in grads:
            x, y, rep = histogram_data(grads[kind], scale)
            name = f"{kind} gradients" + (f": {100 * rep['underflow']:.2f} % flushed to 0 in fp16" if rep else "")
        else:
            x, y, name = [], [], f"{kind} gradients"
        fig.add_bar(x=x, y=y, name=name, marker_color=color, opacity=0.65, width=1.0)
    _bands(fig)
    fig.update_layout(**PANEL_LAYOUT, height=height, barmode="overlay", legend=LEGEND_BELOW,
                      title=dict(text=title or f"gradient magnitudes x loss scale 2^{math.log2(scale):.0f}",
                                 font=dict(size=13)))
    fig.update_layout(margin_b=100)
    fig.update_xaxes(title_text="log2 |gradient x scale|", range=list(LOG2_RANGE), dtick=4)
    fig.update_yaxes(title_text="fraction of non-zero values")
    return fig


def memory_figure(mean: Mapping[str, Mapping[str, float]], *, title: str = "", height: int = 340) -> go.Figure:
    """Stacked bars: the memory of one training step per mode (MB), by part; each total's change is relative to
    fp32 (drawn first), as section 2 of the chapter states it, whatever order ``mean`` lists the modes in."""
    reference = "fp32" if "fp32" in mean else next(iter(mean), None)
    modes = [reference, *(m for m in mean if m != reference)] if reference is not None else []
    fig = go.Figure()
    for part in PARTS:
        fig.add_bar(x=modes, y=[mean[m][part] / 1e6 for m in modes], name=PART_LABELS[part],
                    marker_color=PART_COLORS[part])
    totals = [mean[m]["total"] / 1e6 for m in modes]
    base = totals[0] if totals else 1.0
    labels = [f"{t:.1f} MB" + ("" if m == reference else f" ({100 * (t / base - 1):+.0f} % vs {reference})")
              for m, t in zip(modes, totals)]
    fig.add_scatter(x=modes, y=totals, mode="text", text=labels,
                    textposition="top center", showlegend=False, hoverinfo="skip")
    fig.update_layout(**PANEL_LAYOUT, height=height, barmode="stack", legend=LEGEND_BELOW,
                      title=dict(text=title or "memory of one training step, by part", font=dict(size=13)))
    fig.update_layout(margin_b=100)
    fig.update_yaxes(title_text="MB", range=[0, 1.15 * max(totals or [1.0])])
    fig.update_xaxes(title_text="precision mode")
    return fig


def activations_by_op_figure(breakdown: Mapping[str, Mapping], top: int = 8, height: int = 320) -> go.Figure:
    """Saved-for-backward bytes per producing op and mode (grouped bars, MB): which tensors stay fp32."""
    ops: dict[str, float] = {}
    for b in breakdown.values():
        for op, v in b["activations_by_op"].items():
            ops[op] = max(ops.get(op, 0.0), v)
    keep = sorted(ops, key=lambda o: -ops[o])[:top]
    fig = go.Figure()
    for mode, b in breakdown.items():
        fig.add_bar(x=keep, y=[b["activations_by_op"].get(op, 0) / 1e6 for op in keep], name=mode,
                    marker_color=MODE_COLORS.get(mode))
    fig.update_layout(**PANEL_LAYOUT, height=height, barmode="group", legend=LEGEND_BELOW,
                      title=dict(text="saved activations by the op that produced them (one batch)", font=dict(size=13)))
    fig.update_layout(margin_b=100)
    fig.update_yaxes(title_text="MB")
    fig.update_xaxes(title_text="producing op")
    return fig


def speed_figure(speed: Mapping, height: int = 320) -> go.Figure:
    """Step time per mode in each interleaved repeat (ms), and fp32's time over each mode's."""
    per = speed["step_ms"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["training-step time per repeat",
                                                        "speed-up over fp32 per repeat (1 = same)"],
                        horizontal_spacing=0.12)
    for mode, ms in per.items():
        reps = list(range(1, len(ms) + 1))
        fig.add_scatter(x=reps, y=ms, name=mode, mode="lines+markers", line=dict(color=MODE_COLORS.get(mode)),
                        row=1, col=1)
        if "fp32" in per and mode != "fp32":
            fig.add_scatter(x=reps, y=[b / a for a, b in zip(ms, per["fp32"])], name=f"{mode} speed-up",
                            mode="lines+markers", line=dict(color=MODE_COLORS.get(mode), dash="dot"), row=1, col=2)
    fig.add_hline(y=2.3, line=dict(color="#555", dash="dash"), annotation_text="article: 2.3x", row=1, col=2)
    fig.add_hline(y=1.0, line=dict(color="#999", width=1), row=1, col=2)
    fig.update_xaxes(title_text="repeat", dtick=1)
    fig.update_yaxes(title_text="ms per step (median)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="fp32 time / mode time", type="log", row=1, col=2)
    fig.update_layout(**PANEL_LAYOUT, height=height, legend=LEGEND_BELOW)
    fig.update_layout(margin_b=100)
    return fig


def quality_figure(runs: list[dict], height: int = 320) -> go.Figure:
    """Per seed: MLM validation loss and fine-tuned test accuracy of every mode (lines join a seed's modes)."""
    modes = list(dict.fromkeys(r["precision"] for r in runs))
    seeds = list(dict.fromkeys(r["seed"] for r in runs))
    fig = make_subplots(rows=1, cols=2, subplot_titles=["MLM validation loss (pre-training)",
                                                        "Financial PhraseBank test accuracy (fine-tuned)"],
                        horizontal_spacing=0.12)
    by = {(r["precision"], r["seed"]): r for r in runs}
    for s in seeds:
        for col, key in ((1, "mlm_val_loss"), (2, "test_accuracy")):
            fig.add_scatter(x=modes, y=[by[(m, s)][key] for m in modes if (m, s) in by], mode="lines+markers",
                            name=f"seed {s}", legendgroup=f"seed {s}", showlegend=col == 1, row=1, col=col)
    fig.update_yaxes(title_text="cross-entropy (nats)", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", row=1, col=2)
    fig.update_xaxes(title_text="precision mode")
    fig.update_layout(**PANEL_LAYOUT, height=height, legend=LEGEND_BELOW)
    fig.update_layout(margin_b=100)
    return fig


def live_figure(height: int = 420) -> go.Figure:
    """Empty live traces: train loss, loss scale (log2), skipped steps and fp16 underflow, step time."""
    fig = make_subplots(rows=2, cols=2, vertical_spacing=0.2, horizontal_spacing=0.1,
                        subplot_titles=["train loss (MLM)", "loss scale", "skipped steps · fp16 underflow",
                                        "step time"],
                        specs=[[{}, {}], [{"secondary_y": True}, {}]])
    fig.add_scatter(x=[], y=[], name="train loss", line=dict(width=1), row=1, col=1)
    fig.add_scatter(x=[], y=[], name="loss scale", line=dict(shape="hv", color="#d62728"), row=1, col=2)
    fig.add_scatter(x=[], y=[], name="skipped steps (total)", line=dict(shape="hv", color="#555"), row=2, col=1)
    fig.add_scatter(x=[], y=[], name="activation grads flushed to 0 in fp16 at this scale", mode="lines+markers",
                    line=dict(color="#ff7f0e"), row=2, col=1, secondary_y=True)
    fig.add_scatter(x=[], y=[], name="step time", mode="markers", marker=dict(size=4, color="#1f77b4"), row=2, col=2)
    for r, c in ((1, 1), (1, 2), (2, 1), (2, 2)):
        fig.update_xaxes(title_text="epoch", row=r, col=c)
    fig.update_yaxes(title_text="cross-entropy (nats)", row=1, col=1)
    fig.update_yaxes(title_text="scale (log2 axis)", type="log", exponentformat="power", row=1, col=2)
    fig.update_yaxes(title_text="steps", rangemode="tozero", row=2, col=1)
    fig.update_yaxes(title_text="underflow", tickformat=".1%", rangemode="tozero", row=2, col=1, secondary_y=True)
    fig.update_yaxes(title_text="ms per step", rangemode="tozero", row=2, col=2)
    fig.update_layout(**PANEL_LAYOUT, height=height, legend=LEGEND_BELOW)
    fig.update_layout(margin_b=100)
    return fig


def formats_markdown(rows) -> str:
    """The floating-point formats (:func:`dsopt.precision.format_table`'s rows) as a Markdown table (it was printed
    as text, so JupyterLab showed raw pipes)."""
    out = ["| format | largest | smallest normal | smallest subnormal | mantissa bits |", "|---|---|---|---|---|"]
    out += [f"| {r['format']} | {r['max']:.4g} | 2^{r['log2_min_normal']:.0f} | 2^{r['log2_min_subnormal']:.0f} | "
            f"{r['mantissa_bits']} |" for r in rows]
    return "\n".join(out)


def numerics_markdown(numerics: Mapping) -> str:
    """fp16 underflow of the fp32-trained model's gradients at each scale, and bf16's, as a Markdown table."""
    rows = ["| gradients | scale | flushed to 0 in fp16 | subnormal in fp16 | inf in fp16 | flushed to 0 in bf16 |",
            "|---|---|---|---|---|---|"]
    for kind in ("activations", "weights"):
        k = numerics[kind]
        for r in k["fp16"]:
            rows.append(f"| {kind} | 2^{math.log2(r['scale']):.0f} | {100 * r['underflow']:.3f} % | "
                        f"{100 * r['subnormal']:.2f} % | {100 * r['overflow']:.3f} % | "
                        f"{100 * k['bf16']['underflow']:.3f} % |")
    return "\n".join(rows)
