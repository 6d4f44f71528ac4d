"""The head-pruning panel: pick a method and a fraction or threshold, see which heads go and what
the masked model's validation accuracy becomes; then remove them for real and time it.

Moving the slider selects heads (:func:`dsopt.pruning.select_heads`), masks them on the LIVE model
through its gates (reversible: ``restore()`` puts the gates back) and re-evaluates accuracy on cached
validation batches; results are memoised per head set, so revisiting a position is instant. The
heatmap shows the method's layer x head importance with the pruned heads crossed out, and the cost
model's FLOPs reduction sits next to the accuracy. **Remove heads** builds a structurally pruned
copy, measures its latency against the intact model (interleaved, median of repeats) and shows
measured and cost-model numbers side by side. With no frontend the panel renders one static figure.
"""
from __future__ import annotations

import time
from typing import Sequence

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.pruning import (
    METHODS,
    apply_head_mask,
    attention_statistics,
    compare_latency,
    count_heads,
    head_importance,
    model_cost,
    pruned_copy,
    reduction,
    restore_gates,
    select_heads,
)
from dsopt.pruning.heads import grid_shape
from dsopt.studies.attention_pruning.measure import accuracy
from dsopt.util.validation import ParameterError, check_choice, check_number
from dsopt_widgets.attention_pruning_figures import add_importance_heatmap, pruned_markers
from dsopt_widgets.base import Panel
from dsopt_widgets.figure import LiveFigure

MODES = ("fraction", "threshold")
SCOPES = ("global", "per layer")


def mean_length(batches) -> int:
    """Mean number of real tokens per example in text batches (the length the cost model uses)."""
    n = tokens = 0
    for inputs, y in batches:
        mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None
        if mask is None:
            x = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
            tokens += x.shape[0] * x.shape[1]
        else:
            tokens += int(mask.sum())
        n += int(y.shape[0])
    return max(1, round(tokens / max(n, 1)))


class PruningPanel(Panel):
    """Head-pruning panel on a live model (any dsopt model with ``attention_layers()``).

    Parameters
    ----------
    model: the live model; the panel masks its gates (``restore()`` undoes it) and never removes
        heads from it (**Remove heads** works on a copy, kept as ``pruned_model_``).
    val_batches: ``(inputs, targets)`` batches for the live accuracy (listed once and cached).
    importance_batches: batches the importance methods read (default: ``val_batches``).
    method, mode, value, per_layer: the initial knobs (``mode`` "fraction" or "threshold").
    latency_batch, length: batch size and sequence length for the cost model and the latency
        measurement (``length`` default: the mean real length of ``val_batches``).
    """

    def __init__(self, model, val_batches, *, importance_batches=None, method: str = "gradient",
                 mode: str = "fraction", value: float = 0.25, per_layer: bool = False, seed: int = 0,
                 latency_batch: int = 32, length: int | None = None, latency_repeats: int = 15,
                 threads: int | None = 1, continuous: bool = True):
        super().__init__()  # a panel without a run: message line, show(), close()
        self.model = model
        self.val_batches = list(val_batches)
        self.importance_batches = list(importance_batches) if importance_batches is not None else self.val_batches
        self.seed = check_number("seed", seed, low=0, integer=True)
        self.latency_batch = check_number("latency_batch", latency_batch, low=1, integer=True)
        self.length = check_number("length", length, low=1, integer=True) if length else mean_length(self.val_batches)
        self.latency_repeats = check_number("latency_repeats", latency_repeats, low=1, integer=True)
        self.threads = threads
        self._importance: dict[str, object] = {}
        self._accuracy: dict[frozenset, float] = {}
        self._saved_gates = None
        self.heads: dict[int, list[int]] = {}
        self.accuracy_: float | None = None
        self.last_update_ms: float | None = None
        self.pruned_model_ = None
        self.removal_: dict | None = None
        self.baseline_accuracy = accuracy(model, self.val_batches)
        self._accuracy[frozenset()] = self.baseline_accuracy
        self.n_heads = int(np.prod(grid_shape(model)))

        style = {"description_width": "70px"}
        self.method = W.Dropdown(options=list(METHODS), value=check_choice("method", method, METHODS),
                                 description="method", style=style)
        self.mode = W.ToggleButtons(options=list(MODES), value=check_choice("mode", mode, MODES),
                                    style={"button_width": "90px"})
        self.scope = W.ToggleButtons(options=list(SCOPES), value=SCOPES[1] if per_layer else SCOPES[0],
                                     style={"button_width": "90px"})
        self.slider = W.FloatSlider(value=check_number("value", value, low=0.0, high=1.0), min=0.0, max=1.0,
                                    step=0.05, description=self.mode.value, readout_format=".2f", style=style,
                                    continuous_update=continuous, layout=W.Layout(width="420px"))
        self.status = self.message  # the panel's message line
        self.remove_button = W.Button(description="Remove heads", button_style="primary",
                                      tooltip="remove the selected heads from a copy and time both models")
        self.removal_html = W.HTML()
        self.heatmap = LiveFigure(self._heatmap_figure())
        for w in (self.method, self.mode, self.scope, self.slider):
            w.observe(self._on_change, names="value")
        self.remove_button.on_click(lambda _: self.remove())
        self.update()

    # -- logic (no frontend needed) -----------------------------------------------------------------
    def importance(self, method: str | None = None):
        """The [layers, heads] importance of ``method`` (computed once, then cached)."""
        method = method or self.method.value
        if method not in self._importance:
            model = self.model_for_scoring()
            if method in ("entropy", "confidence", "article"):  # one recorded pass gives all three
                self._importance.update(attention_statistics(model, self.importance_batches))
            else:
                self._importance[method] = head_importance(model, method, self.importance_batches, seed=self.seed)
        return self._importance[method]

    def model_for_scoring(self):
        """The live model with the panel's mask lifted (importance is scored on the intact model)."""
        if self._saved_gates is not None:
            restore_gates(self.model, self._saved_gates)
            self._saved_gates = None
        return self.model

    def selection(self) -> dict[int, list[int]]:
        """The head set the knobs select now."""
        kw = {self.mode.value: self.slider.value}
        return select_heads(self.importance(), per_layer=self.scope.value == SCOPES[1], **kw)

    def update(self) -> dict:
        """Select, mask the live model, evaluate (memoised), redraw; returns the numbers shown."""
        t0 = time.perf_counter()
        self.slider.description = self.mode.value
        imp = self.importance()
        heads = self.selection()
        self.restore()
        self._saved_gates = apply_head_mask(self.model, heads)
        key = frozenset((layer, h) for layer, hs in heads.items() for h in hs)
        if key not in self._accuracy:
            self._accuracy[key] = accuracy(self.model, self.val_batches)
        self.heads, self.accuracy_ = heads, self._accuracy[key]
        cut = reduction(model_cost(self.model, self.latency_batch, self.length),
                        model_cost(self.model, self.latency_batch, self.length, prune=heads))
        xs, ys = pruned_markers(heads)
        with self.heatmap.batch_update():
            self.heatmap.data[0].z = np.where(np.isnan(imp.numpy()), None, imp.numpy()).tolist()
            self.heatmap.data[1].x, self.heatmap.data[1].y = xs, ys
            self.heatmap.layout.title.text = f"head importance: {self.method.value} (x = pruned)"
        n = count_heads(heads)
        self.last_update_ms = 1000 * (time.perf_counter() - t0)
        self._say(f"{n} of {self.n_heads} heads pruned ({100 * n / self.n_heads:.0f} %): validation accuracy "
                  f"{100 * self.accuracy_:.1f} % (unpruned {100 * self.baseline_accuracy:.1f} %); cost model at "
                  f"{self.latency_batch} x {self.length} tokens: attention FLOPs -{100 * cut['attention_flops']:.0f} %, "
                  f"whole-model FLOPs -{100 * cut['total_flops']:.0f} %")
        return {"heads": heads, "accuracy": self.accuracy_, "flops_cut": cut, "update_ms": self.last_update_ms}

    def measure_updates(self, values: Sequence[float], *, fresh: bool = True) -> dict[str, list[float]]:
        """Move the slider through ``values``; milliseconds per move (slider -> mask -> accuracy -> figure).

        Returns ``{"evaluated": [...], "memoised": [...]}``: moves that selected a head set not seen
        before (a real evaluation on the validation batches) and moves answered from the memo.
        ``fresh`` empties the memo first.
        """
        if fresh:
            self._accuracy = {frozenset(): self.baseline_accuracy}
        out: dict[str, list[float]] = {"evaluated": [], "memoised": []}
        for v in values:
            seen = len(self._accuracy)
            self.slider.value = float(v)
            out["evaluated" if len(self._accuracy) > seen else "memoised"].append(self.last_update_ms)
        return out

    def restore(self) -> None:
        """Put the live model's gates back as they were before the panel masked it."""
        if self._saved_gates is not None:
            restore_gates(self.model, self._saved_gates)
            self._saved_gates = None

    def remove(self) -> dict | None:
        """Remove the selected heads from a copy; measure latency and accuracy of both; show them."""
        heads = self.heads
        if not heads:
            self._say("nothing selected: move the slider first", error=True)
            return None
        saved, self._saved_gates = self._saved_gates, None
        if saved is not None:
            restore_gates(self.model, saved)  # time the intact model, not the masked one
        try:
            pruned = pruned_copy(self.model, heads)
            lat = compare_latency({"before": self.model, "after": pruned}, self.latency_batch, self.length,
                                  repeats=self.latency_repeats, threads=self.threads)
        finally:
            if saved is not None:
                self._saved_gates = apply_head_mask(self.model, heads)
        before = model_cost(self.model, self.latency_batch, self.length)
        after = model_cost(pruned, self.latency_batch, self.length)
        cut = reduction(before, after)
        self.pruned_model_ = pruned
        self.removal_ = {
            "heads": heads, "params_before": before.params, "params_after": after.params,
            "accuracy_after": accuracy(pruned, self.val_batches),
            "latency_before_ms": lat["before"].median_ms, "latency_after_ms": lat["after"].median_ms,
            "latency_cut": 1 - lat["after"].median_s / lat["before"].median_s,
            "flops_cut": cut["total_flops"], "attention_flops_cut": cut["attention_flops"],
            "batch_size": self.latency_batch, "length": self.length, "threads": lat["after"].threads,
            "repeats": self.latency_repeats, "device": lat["after"].device,
        }
        r = self.removal_
        self.removal_html.value = (
            "<table style='border-collapse:collapse'>"
            "<tr><th></th><th style='padding:0 8px'>before</th><th style='padding:0 8px'>after</th>"
            "<th style='padding:0 8px'>change</th><th style='padding:0 8px'>cost model</th></tr>"
            f"<tr><td>parameters</td><td>{r['params_before']:,}</td><td>{r['params_after']:,}</td>"
            f"<td>-{100 * cut['params']:.1f} % (counted)</td><td></td></tr>"
            f"<tr><td>latency (ms)</td><td>{r['latency_before_ms']:.2f}</td><td>{r['latency_after_ms']:.2f}</td>"
            f"<td>{-100 * r['latency_cut']:+.1f} % (measured)</td><td>FLOPs -{100 * r['flops_cut']:.1f} % "
            f"(attention -{100 * r['attention_flops_cut']:.0f} %)</td></tr>"
            f"<tr><td>val. accuracy</td><td>{100 * self.baseline_accuracy:.1f} %</td>"
            f"<td>{100 * r['accuracy_after']:.1f} %</td><td></td><td></td></tr></table>"
            f"<small>batch {r['batch_size']} x {r['length']} tokens, median of {r['repeats']} repeats after warm-up, "
            f"{r['threads']} thread(s), {r['device']}, torch.inference_mode</small>")
        return r

    def _on_change(self, change=None) -> None:
        try:
            self.update()
        except ParameterError as exc:
            self._say(str(exc), error=True)


    # -- display --------------------------------------------------------------------------------------
    def _heatmap_figure(self) -> go.Figure:
        fig = go.Figure()
        add_importance_heatmap(fig, np.full(grid_shape(self.model), np.nan))
        L, H = grid_shape(self.model)
        fig.update_layout(title=dict(text="head importance", y=1.0, yref="container", yanchor="top", x=0.0,
                                     xanchor="left", pad=dict(t=8, l=8)),
                          height=max(240, 90 + 40 * L), width=max(380, 160 + 45 * H),
                          margin=dict(l=55, r=20, t=70, b=45), showlegend=False)
        return fig

    def widget(self) -> W.Widget:
        """The panel as one ipywidgets box."""
        knobs = W.VBox([W.HBox([self.method, self.mode, self.scope]), self.slider, self.status])
        return W.VBox([knobs, self.heatmap.widget, W.HBox([self.remove_button]), self.removal_html])

    def accuracy_curve(self, fractions: Sequence[float] | None = None) -> tuple[list[float], list[float]]:
        """(fraction actually removed, validation accuracy of the masked model) for requested fractions.

        Uses the current method and scope; the last-head protection can make the removed fraction
        smaller than the requested one, so the actual fraction is returned.
        """
        fractions = list(fractions) if fractions is not None else list(np.linspace(0, 1, 9))
        per_layer = self.scope.value == SCOPES[1]
        saved, self._saved_gates = self._saved_gates, None
        if saved is not None:
            restore_gates(self.model, saved)
        accs, removed = [], []
        try:
            for f in fractions:
                heads = select_heads(self.importance(), fraction=f, per_layer=per_layer)
                key = frozenset((layer, h) for layer, hs in heads.items() for h in hs)
                if key not in self._accuracy:
                    g = apply_head_mask(self.model, heads)
                    try:
                        self._accuracy[key] = accuracy(self.model, self.val_batches)
                    finally:
                        restore_gates(self.model, g)
                accs.append(self._accuracy[key])
                removed.append(len(key) / self.n_heads)
        finally:
            if saved is not None:
                self._saved_gates = apply_head_mask(self.model, self.heads)
        return removed, accs

    def static_figure(self) -> go.Figure:
        """Heatmap with the pruned heads, and validation accuracy vs fraction removed (headless runs)."""
        fractions, accs = self.accuracy_curve()
        fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55],
                            subplot_titles=[f"head importance: {self.method.value} (x = pruned)",
                                            "validation accuracy of the masked model"])
        add_importance_heatmap(fig, self.importance(), self.heads, row=1, col=1, colorbar_x=0.42)
        fig.add_scatter(x=fractions, y=accs, mode="lines+markers", name=self.method.value, row=1, col=2)
        n = count_heads(self.heads)
        fig.add_scatter(x=[n / self.n_heads], y=[self.accuracy_], mode="markers", name="panel setting",
                        marker=dict(size=12, color="#d62728"), row=1, col=2)
        fig.update_xaxes(title_text="fraction of heads removed", tickformat=".0%", row=1, col=2)
        fig.update_yaxes(title_text="accuracy", tickformat=".0%", row=1, col=2)
        fig.update_layout(height=340, showlegend=False, margin=dict(l=50, r=20, t=40, b=40))
        return fig

