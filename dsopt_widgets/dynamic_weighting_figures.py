"""Figures of chapter 04 (plain plotly figures: they render headless and in the browser).

``curves_figure`` draws weight curves (pure functions of dsopt.weighting.schemes) in three panels: against the
true-class probability, against the prediction's confidence, and, for the article's logit reading only,
against the max logit. ``live_figure`` lays out the per-epoch validation recall per class, PR-/ROC-AUC
and the per-class training weights a live run records; ``comparison_figure`` draws the study's table.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.weighting import SCHEMES, confidence_curve, make_scheme, weight_curve

CURVE_TITLES = ("weight vs true-class probability", "weight vs confidence", "article, logit reading")
LIVE_TITLES = ("live run: val. recall per class", "live run: val. PR-AUC, ROC-AUC", "live run: train weight per class")
STYLE_NOTE = "solid: minority sample / correct prediction; dashed: majority sample; dotted: wrong prediction"
#: The style note as a small title at the top left (plotly's toolbar appears at the top right).
STYLE_TITLE = dict(text=STYLE_NOTE, font=dict(size=11, color="#555"), x=0.0, xanchor="left", xref="container",
                   y=1.0, yanchor="top", yref="container", pad=dict(t=6, l=8))
COLORS = {"none": "#7f7f7f", "article": "#d62728", "focal": "#1f77b4", "class_balanced": "#2ca02c",
          "inverse_frequency": "#9467bd"}
CLASS_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
#: Per scheme, four traces in this order: vs p_t (minority, majority), vs confidence (correct, wrong).
TRACE_KINDS = ("minority", "majority", "correct", "wrong")


def minority_majority(counts: Sequence[int] | None, n_classes: int) -> tuple[int, int]:
    """(minority, majority) class indices: from counts when known, else 1 and 0."""
    if counts is None:
        return 1, 0
    c = np.asarray(counts)
    return int(np.argmin(c)), int(np.argmax(c))


def scheme_curves(name: str, params: Mapping[str, Any], n_classes: int, counts: Sequence[int] | None = None,
                  points: int = 201) -> dict[str, Any]:
    """Every curve of one scheme: ``p``, ``minority``, ``majority`` (vs p_t) and ``axis``, ``confidence``,
    ``correct``, ``wrong`` (vs confidence, for a minority sample)."""
    sch = make_scheme(name, **dict(params))
    mi, ma = minority_majority(counts, n_classes)
    p = np.linspace(0.0, 1.0, points)
    out = {"p": p,
           "minority": weight_curve(sch, None, p, n_classes, counts=counts, target_class=mi)["weight"],
           "majority": weight_curve(sch, None, p, n_classes, counts=counts, target_class=ma)["weight"]}
    out.update(confidence_curve(sch, None, n_classes, points=points, counts=counts, target_class=mi))
    return out


def curves_figure(schemes: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None, *, n_classes: int = 2,
                  counts: Sequence[int] | None = None, points: int = 201, height: int = 340) -> go.Figure:
    """Weight curves, four traces per scheme (see :data:`TRACE_KINDS`); ``schemes``: label -> (name, params).

    Default: every registered scheme with its default parameters. Solid: a minority sample (vs p_t) or a
    correct prediction (vs confidence); dashed/dotted: a majority sample or a wrong prediction.
    """
    if schemes is None:
        schemes = {name: (name, {}) for name in SCHEMES}
    fig = make_subplots(rows=1, cols=3, subplot_titles=CURVE_TITLES, horizontal_spacing=0.08)
    mi, ma = minority_majority(counts, n_classes)
    for label, (name, params) in schemes.items():
        c = scheme_curves(name, params, n_classes, counts, points)
        color = COLORS.get(name, "#333")
        col = 3 if c["axis"] == "logit" else 2
        kw = dict(legendgroup=label, hovertemplate="%{x:.3f}: weight %{y:.4g}")
        fig.add_scatter(x=_list(c["p"]), y=_list(c["minority"]), name=label, line=dict(color=color, width=3),
                        row=1, col=1, **kw)
        fig.add_scatter(x=_list(c["p"]), y=_list(c["majority"]), name=f"{label}: majority (class {ma})",
                        showlegend=False, line=dict(color=color, width=2, dash="dash"), row=1, col=1, **kw)
        fig.add_scatter(x=_list(c["confidence"]), y=_list(c["correct"]), name=f"{label}: correct prediction",
                        showlegend=False, line=dict(color=color, width=3), row=1, col=col, **kw)
        fig.add_scatter(x=_list(c["confidence"]), y=_list(c["wrong"]), name=f"{label}: wrong prediction",
                        showlegend=False, line=dict(color=color, width=2, dash="dot"), row=1, col=col, **kw)
    if not any(scheme_curves(n, p, n_classes, counts, 3)["axis"] == "logit" for n, p in schemes.values()):
        # the third panel always shows the article's logit reading, as its title says: a reference curve,
        # added last so that the traces of scheme i stay at indices 4 i .. 4 i + 3
        ref = scheme_curves("article", {"confidence": "logit"}, n_classes, counts, points)
        fig.add_scatter(x=_list(ref["confidence"]), y=_list(ref["correct"]), name="article (logit reading)",
                        line=dict(color=COLORS["article"], width=2, dash="dashdot"), row=1, col=3,
                        hovertemplate="max logit %{x:.2f}: weight %{y:.4g}")
    fig.update_xaxes(title_text=f"p_t (true class; minority = class {mi})", range=[0, 1], row=1, col=1)
    fig.update_xaxes(title_text="confidence c (max probability)", range=[1.0 / n_classes, 1], row=1, col=2)
    fig.update_xaxes(title_text="max logit", range=[-8, 8], row=1, col=3)
    for col in (1, 2):  # weights span 1e-3 (focal) to 1e2 (inverse freq.)
        fig.update_yaxes(type="log", exponentformat="power", title_text="weight (log scale)", row=1, col=col)
    fig.update_yaxes(title_text="weight (factor)", row=1, col=3)
    fig.update_annotations(font_size=13)
    fig.update_layout(autosize=True, height=height, margin=dict(l=65, r=25, t=60, b=100), showlegend=True,
                      legend=dict(orientation="h", yref="container", y=0.0, yanchor="bottom", x=0.0),
                      title=STYLE_TITLE)
    return fig


def _list(values) -> list:
    """Plain floats for plotly (FigureWidget compares stored values with ``not value``: arrays raise)."""
    return np.asarray(values, dtype=float).tolist()


def live_figure(n_classes: int = 2, height: int = 320) -> go.Figure:
    """Empty live traces: recall per class, PR-AUC, ROC-AUC, training weights per class; x = epoch.

    Trace order (the panel fills them in place, see :func:`live_record_names`): ``val_recall/class_c``
    for every class, ``val_pr_auc``, ``val_roc_auc``, then per class ``weight_batch/class_c`` (mean in
    each batch, thin), ``weight_mean/class_c``, ``weight_q10/class_c``, ``weight_q90/class_c`` (per epoch).
    """
    fig = make_subplots(rows=1, cols=3, subplot_titles=LIVE_TITLES, horizontal_spacing=0.08)
    for c in range(n_classes):
        fig.add_scatter(x=[], y=[], name=f"recall class {c}", mode="lines+markers",
                        line=dict(color=CLASS_COLORS[c % len(CLASS_COLORS)]), row=1, col=1)
    fig.add_scatter(x=[], y=[], name="PR-AUC", mode="lines+markers", line=dict(color="#000"), row=1, col=2)
    fig.add_scatter(x=[], y=[], name="ROC-AUC", mode="lines+markers", line=dict(color="#888", dash="dash"), row=1, col=2)
    for c in range(n_classes):
        color = CLASS_COLORS[c % len(CLASS_COLORS)]
        fig.add_scatter(x=[], y=[], name=f"weight class {c} (each batch)", mode="lines", opacity=0.45,
                        line=dict(color=color, width=1), row=1, col=3)
        fig.add_scatter(x=[], y=[], name=f"weight class {c}", mode="lines+markers", line=dict(color=color), row=1, col=3)
        for q in ("q10", "q90"):
            fig.add_scatter(x=[], y=[], name=f"weight {q} class {c}", mode="lines", showlegend=False,
                            line=dict(color=color, width=1, dash="dot"), row=1, col=3)
    for col in (1, 2, 3):
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_yaxes(title_text="recall at threshold 0.5", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="area under curve", range=[0, 1.02], row=1, col=2)
    fig.update_yaxes(type="log", exponentformat="power", title_text="loss weight (log scale)", row=1, col=3)
    fig.update_annotations(font_size=13)
    fig.update_layout(autosize=True, height=height, margin=dict(l=65, r=25, t=60, b=100),
                      legend=dict(orientation="h", yref="container", y=0.0, yanchor="bottom", x=0.0))
    return fig


def live_record_names(n_classes: int) -> list[str]:
    """Recorder names of :func:`live_figure`'s traces, in trace order."""
    names = [f"val_recall/class_{c}" for c in range(n_classes)] + ["val_pr_auc", "val_roc_auc"]
    for c in range(n_classes):
        names += [f"weight_batch/class_{c}", f"weight_mean/class_{c}", f"weight_q10/class_{c}", f"weight_q90/class_{c}"]
    return names


def comparison_figure(rows: list[dict], metrics: Sequence[tuple[str, str]] = (
        ("pr_auc", "PR-AUC"), ("recall_at_threshold", "recall @ threshold 0.5"),
        ("recall_at_fpr", "recall @ FPR <= 1 %"))) -> go.Figure:
    """Bars of mean +- sd over seeds: one row per metric, one column per (task, ratio), one bar per scheme."""
    settings = list(dict.fromkeys((r["task"], r["ratio_label"]) for r in rows))
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    short = {"credit_card_default": "credit default", "sms_spam_collection": "SMS spam"}
    titles = [f"{short.get(t, t)}, {rl}" for t, rl in settings] + [""] * (len(settings) * (len(metrics) - 1))
    fig = make_subplots(rows=len(metrics), cols=len(settings), subplot_titles=titles, vertical_spacing=0.08,
                        horizontal_spacing=0.04, shared_yaxes=True)
    palette = ["#7f7f7f", "#d62728", "#ff9896", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b"]
    for i, (m, label) in enumerate(metrics, start=1):
        for j, (task, rl) in enumerate(settings, start=1):
            for k, s in enumerate(schemes):
                r = next((r for r in rows if (r["task"], r["ratio_label"], r["scheme"]) == (task, rl, s)), None)
                if r is None:
                    continue
                sd = r.get(f"{m}_sd")
                fig.add_bar(x=[s], y=[r[m]], name=s, legendgroup=s, showlegend=(i == 1 and j == 1),
                            marker_color=palette[k % len(palette)],
                            error_y=dict(type="data", array=[sd if sd is not None and np.isfinite(sd) else 0.0]),
                            row=i, col=j)
            fig.update_xaxes(showticklabels=False, row=i, col=j)
        fig.update_yaxes(title_text=label, range=[0, 1], row=i, col=1)
    fig.update_layout(height=260 * len(metrics), margin=dict(l=60, r=20, t=40, b=40), barmode="group",
                      legend=dict(orientation="h", y=-0.08))
    return fig
