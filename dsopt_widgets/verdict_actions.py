"""Two buttons under every chapter's verdict: finish the experiment, or measure it on this machine.

- **Add seeds until decided**: decide mode (:meth:`dsopt.studies.study.Study.decide`): the chapter's first
  ``n_seeds`` seeds, then ``batch`` more per look up to the budget, each claim stopping once decided; the
  sequential design (alpha spending over the planned looks, :mod:`dsopt.stats.sequential`) keeps the chance of
  any false decision at 5 %. Every seed's runs are cached, so pressing it again (or after a kernel restart)
  resumes from the seeds already measured. The outcome table appears below, with looks used and seeds spent.
- **Measure here**: the comparison again with the stored runs switched off: every run the cache lacks is computed
  on this machine (a stored verdict was made elsewhere; this one is a fact about yours). The verdict appears below
  with its provenance ("N measured here in S s").

Both run as background jobs (:func:`dsopt_widgets.background.run_in_background`): the kernel stays free, the
progress line says what runs, and **Cancel** stops the job (finished runs stay cached). Headless (papermill,
nbval) :meth:`VerdictActions.show` prints how to do the same from a terminal instead of running anything:
``dsopt run NN --decide`` and ``dsopt run NN -p stored_runs false``.
"""
from __future__ import annotations

import html
from typing import Any, Mapping

import ipywidgets as W
from IPython.display import Markdown, display

from dsopt.studies.decide import DEFAULT_MAX_SEEDS, render_decide
from dsopt.util.validation import ParameterError
from dsopt_widgets.background import run_in_background
from dsopt_widgets.fields import read_whole, whole_field
from dsopt_widgets.frontend import has_frontend
from dsopt_widgets.stale import live_box


class VerdictActions:
    """The buttons for ``study`` with the chapter's ``params`` (runs cached in ``cache_dir``).

    ``measure_options``: extra keyword arguments of the chapter's ``measure`` (e.g. chapter 03's ``setup``);
    ``compute_options``: of its ``compute`` (e.g. chapter 06's ``device``).
    """

    def __init__(self, study, params: Mapping[str, Any], *, cache_dir: str | None = None,
                 max_seeds: int = DEFAULT_MAX_SEEDS, measure_options: Mapping[str, Any] | None = None,
                 compute_options: Mapping[str, Any] | None = None):
        self.study, self.params, self.cache_dir = study, dict(params), cache_dir
        self.measure_options = dict(measure_options or {})
        self.compute_options = dict(compute_options or {})
        self.max_seeds_field = whole_field(max(max_seeds, int(self.params.get("n_seeds", 3))), "budget (seeds)",
                                           style={"description_width": "110px"}, layout=W.Layout(width="190px"))
        self.decide_button = W.Button(description="Add seeds until decided", button_style="primary",
                                      layout=W.Layout(width="210px"))
        self.here_button = W.Button(description="Measure here", layout=W.Layout(width="130px"),
                                    tooltip="compute every run on this machine instead of reading stored runs")
        self.message = W.HTML(layout=W.Layout(min_height="1.6em"))
        self.out = W.Output()
        self.job = None
        self.decide_button.on_click(lambda _: self.decide())
        self.here_button.on_click(lambda _: self.measure_here())

    # -- actions ------------------------------------------------------------------------------------
    def _say(self, text: str, error: bool = False) -> None:
        color = "#b00020" if error else "#333"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def decide(self):
        """Start decide mode in the background (refused with a message for a bad budget)."""
        low = max(3, int(self.params.get("n_seeds", 3)))
        try:
            budget = read_whole(self.max_seeds_field, "budget (seeds)", low=low, high=50)
            self.study.parameters({**self.params, "n_seeds": budget})  # the chapter's own bound on seeds
        except ParameterError as exc:
            self._say(str(exc), error=True)
            return None
        self._say(f"decide mode: looks of {low} seeds up to {budget}; runs cached in {self.cache_dir or 'memory'}")
        def run():
            return self.study.decide(self.params, max_seeds=budget, cache_dir=self.cache_dir,
                                     measure_options=self.measure_options, compute_options=self.compute_options)

        self.job = run_in_background(run, desc=f"decide {self.study.id}", name=f"verdict-actions-{self.study.id}")
        self.out.clear_output()
        with self.out:
            self.job.show(lambda result: Markdown(render_decide(result, fmt="markdown")))
        return self.job

    def measure_here(self):
        """Measure the comparison on this machine (stored runs off) and show its verdict with provenance."""
        self._say("measuring on this machine: every run the cache lacks is computed here")
        study, params = self.study, self.params

        def run():
            return study.measure_with_provenance(params, stored_runs=False, cache_dir=self.cache_dir, progress=False,
                                                 **self.measure_options)

        def report(result):
            verdict = study.compute(study.summarize(result), **self.compute_options)
            return Markdown(study.render(verdict, provenance=result["provenance"]["text"]))

        self.job = run_in_background(run, desc=f"measure {study.id} here", name=f"verdict-actions-{study.id}")
        self.out.clear_output()
        with self.out:
            self.job.show(report)
        return self.job

    # -- display ------------------------------------------------------------------------------------
    def widget(self) -> W.Widget:
        return W.VBox([W.HBox([self.decide_button, self.max_seeds_field, self.here_button]), self.message, self.out])

    def show(self):
        """The buttons (with a frontend); headless, the terminal commands that do the same."""
        if has_frontend():
            display(live_box(self.widget()))  # greys out, saying why, once the kernel is gone
        else:
            cid = self.study.id
            display(Markdown(f"In JupyterLab: **Add seeds until decided** (decide mode) and **Measure here** below "
                             f"the verdict. From a terminal: `dsopt run {cid} --decide --max-seeds 12` adds seeds in "
                             f"looks until each claim is decided; `dsopt run {cid} -p stored_runs false` measures "
                             "every run on this machine."))
        return self
