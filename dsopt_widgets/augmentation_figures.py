"""Figures and HTML of chapter 03 (plain plotly figures and HTML strings: they render headless and in the browser).

``preview_html`` shows augmented sentences with the changed words highlighted and their MiniLM similarity
to the original (kept or filtered out); ``learning_curve_figure`` draws test macro-F1 against training
examples per class, with and without augmentation, with 95 % intervals over seeds; ``similarity_figure``
shows how the augmentations' similarities fall around the filter's threshold; ``live_figure`` lays out the
"try it" runs' validation curves next to the study's learning curve.
"""
from __future__ import annotations

import html
from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.stats import sample
from dsopt.studies.augmentation.measure import BASELINE, FULL
from dsopt_widgets.base import LEGEND_BELOW, PANEL_LAYOUT

COLORS = {BASELINE: "#444444", "embedding_swap": "#d62728", "wordnet_swap": "#1f77b4", "synonym_insertion": "#2ca02c",
          "eda": "#9467bd"}
DASH = {1: "dot", 3: "solid"}
LIVE_TITLES = ("try it: validation macro-F1 per epoch", "learning curve: test macro-F1 (study)")


def _color(arm: str) -> str:
    return COLORS.get(arm.split(" ")[0], "#8c564b")


def highlight(tokens: Sequence[tuple[str, bool]]) -> str:
    """HTML of whitespace tokens, changed ones in a <mark>."""
    return " ".join(f"<mark style='background:#ffe08a'>{html.escape(t)}</mark>" if changed else html.escape(t)
                    for t, changed in tokens)


def preview_html(original: str, augmentations, threshold: float) -> str:
    """The original and each augmentation: highlighted changes, similarity, kept or filtered out."""
    rows = [f"<div style='margin:2px 0'><b>original</b>: {html.escape(original)}</div>"]
    for a in augmentations:
        if a.text is None:
            rows.append(f"<div style='color:#888'>#{a.k + 1}: no augmentation possible (no word has a candidate)</div>")
            continue
        sim = "n/a" if a.similarity is None else f"{a.similarity:.3f}"
        badge = ("<span style='color:#1b7a1b'>kept</span>" if a.kept
                 else f"<span style='color:#b00020'>filtered out (&lt; {threshold:.2f})</span>")
        deleted = f" <i>({a.deleted} word(s) deleted)</i>" if a.deleted else ""
        rows.append(f"<div style='margin:2px 0'>#{a.k + 1} [{a.op}] similarity {sim}, {badge}: "
                    f"{highlight(a.tokens)}{deleted}</div>")
    return "<div style='font-size:13px;line-height:1.5'>" + "".join(rows) + "</div>"


def _x(size, full_x: float) -> float:
    return full_x if size == FULL else float(size)


def curve_points(table: list[dict], learner: str, arm: str, full_x: float = 35.0) -> dict:
    """x (examples per class), mean test macro-F1 and its 95 % t interval over seeds, for one arm."""
    rows = sorted((r for r in table if r["learner"] == learner and r["arm"] == arm), key=lambda r: _x(r["size"], full_x))
    xs, ys, lo, hi = [], [], [], []
    for r in rows:
        iv = sample(r["f1"]).interval("level") if len(r["f1"]) > 1 else None
        xs.append(_x(r["size"], full_x))
        ys.append(100 * r["f1_mean"])
        lo.append(100 * iv.low if iv is not None and iv.defined else 100 * r["f1_mean"])
        hi.append(100 * iv.high if iv is not None and iv.defined else 100 * r["f1_mean"])
    return {"x": xs, "y": ys, "low": lo, "high": hi}


def _add_curve(fig, pts: dict, arm: str, row: int, col: int, showlegend: bool) -> None:
    color = _color(arm)
    n = arm.split(" x")[-1] if " x" in arm else None
    dash = DASH.get(int(n), "dash") if n and n.isdigit() else "solid"
    err = [h - y for h, y in zip(pts["high"], pts["y"])]
    errm = [y - lo for y, lo in zip(pts["y"], pts["low"])]
    fig.add_trace(go.Scatter(x=pts["x"], y=pts["y"], mode="lines+markers", name=arm, legendgroup=arm,
                             showlegend=showlegend, line={"color": color, "dash": dash, "width": 2.5 if arm == BASELINE else 1.8},
                             error_y={"type": "data", "array": err, "arrayminus": errm, "thickness": 1, "width": 3},
                             hovertemplate="%{x} per class: %{y:.1f} %<extra>" + arm + "</extra>"), row=row, col=col)


def _size_ticks(fig, table: list[dict], full_x: float, row: int, col: int) -> None:
    """Ticks at the training-set sizes measured ("2 5 10 full"), not plotly's log ticks ("5 1 2 5 10 2 5")."""
    sizes = sorted({_x(r["size"], full_x) for r in table})
    fig.update_xaxes(tickmode="array", tickvals=sizes, ticktext=["full" if v == full_x else f"{v:g}" for v in sizes],
                     row=row, col=col)


def learning_curve_figure(table: list[dict], *, learners: Sequence[str] | None = None, arms: Sequence[str] | None = None,
                          full_x: float = 35.0, height: int = 380) -> go.Figure:
    """Test macro-F1 (%) vs training examples per class, one panel per learner; bars: 95 % t interval over seeds."""
    from dsopt.studies.augmentation.verdict import LEARNER_NAMES

    learners = list(learners or dict.fromkeys(r["learner"] for r in table))
    arms = list(arms or dict.fromkeys(r["arm"] for r in table))
    fig = make_subplots(rows=1, cols=len(learners), subplot_titles=[LEARNER_NAMES.get(lr, lr) for lr in learners],
                        horizontal_spacing=0.08)
    for c, learner in enumerate(learners, start=1):
        for arm in arms:
            pts = curve_points(table, learner, arm, full_x)
            if pts["x"]:
                _add_curve(fig, pts, arm, 1, c, showlegend=c == 1)
        fig.update_xaxes(type="log", title_text="training examples per class (log scale)", row=1, col=c)
        _size_ticks(fig, table, full_x, 1, c)
        fig.update_yaxes(title_text="test macro-F1 (%)", row=1, col=c)
    fig.update_layout(**PANEL_LAYOUT, height=height, legend=LEGEND_BELOW)
    fig.update_layout(margin={"b": 110})
    return fig


def similarity_figure(similarities: dict[str, list[float]], threshold: float, height: int = 300) -> go.Figure:
    """Histogram of MiniLM similarity (augmentation vs original) per recipe, with the filter's threshold."""
    fig = go.Figure()
    for recipe, sims in similarities.items():
        fig.add_trace(go.Histogram(x=list(map(float, sims)), name=recipe, opacity=0.6, marker_color=_color(recipe),
                                   xbins={"size": 0.01}))
    fig.add_vline(x=threshold, line={"color": "#b00020", "dash": "dash"},
                  annotation_text=f"threshold {threshold:.2f}", annotation_position="top left")
    fig.update_layout(**PANEL_LAYOUT, height=height, barmode="overlay", legend=LEGEND_BELOW)
    fig.update_layout(margin={"b": 100})
    fig.update_xaxes(title_text="cosine similarity to the original (all-MiniLM-L6-v2)")
    fig.update_yaxes(title_text="augmentations (count)")
    return fig


def live_figure(table: list[dict] | None = None, *, learner: str = "transformer", arms: Sequence[str] = (),
                height: int = 380) -> go.Figure:
    """Left: the "try it" runs' validation macro-F1 per epoch (no augmentation, with); right: the study's
    learning curve for ``learner`` (when a table is given) with the runs' test macro-F1 marked."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=LIVE_TITLES, horizontal_spacing=0.1)
    fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name="try it: no augmentation",
                             line={"color": COLORS[BASELINE], "width": 2.5}), row=1, col=1)
    fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name="try it: with augmentation",
                             line={"color": "#d62728", "width": 2.5}), row=1, col=1)
    fig.add_trace(go.Scatter(x=[], y=[], mode="markers", name="try it: test F1, no augmentation",
                             marker={"color": COLORS[BASELINE], "size": 13, "symbol": "star"}), row=1, col=2)
    fig.add_trace(go.Scatter(x=[], y=[], mode="markers", name="try it: test F1, with augmentation",
                             marker={"color": "#d62728", "size": 13, "symbol": "star"}), row=1, col=2)
    if table:
        for arm in arms or dict.fromkeys(r["arm"] for r in table if r["learner"] == learner):
            pts = curve_points(table, learner, arm)
            if pts["x"]:
                _add_curve(fig, pts, f"{arm}", 1, 2, showlegend=True)
    fig.update_xaxes(title_text="epoch", row=1, col=1)
    fig.update_yaxes(title_text="validation macro-F1 (%)", row=1, col=1)
    fig.update_xaxes(type="log", title_text="training examples per class (log scale)", row=1, col=2)
    if table:
        _size_ticks(fig, table, 35.0, 1, 2)
    fig.update_yaxes(title_text="test macro-F1 (%)", row=1, col=2)
    fig.update_layout(**PANEL_LAYOUT, height=height, legend=LEGEND_BELOW)
    fig.update_layout(margin={"b": 130})
    return fig

