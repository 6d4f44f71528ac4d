"""Chapter 03 as a :class:`~dsopt.studies.study.Study`: augmentation by training-set size, learners, seeds."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dsopt.studies.augmentation.measure import GRIDS, Setup, augment_job, learn_job, probe_job, run_study, setup
from dsopt.studies.augmentation.summary import format_table, summarize
from dsopt.studies.study import DATA, TRAINING, Study


class AugmentationStudy(Study):
    """Chapter 03: textattack recipes with a domain embedding and a MiniLM similarity filter, by examples per
    class; learners chosen on validation and tested once; seeds draw their own subsets."""

    id = "03"
    runs = (augment_job, probe_job, learn_job)
    depends_on = (*TRAINING, *DATA, "dsopt.data.nltk", "dsopt.models", "dsopt.metrics", "dsopt.augment",
                  "dsopt.studies.augmentation.__init__", "dsopt.studies.augmentation.chapter",
                  "dsopt.studies.augmentation.learners", "dsopt.studies.augmentation.measure",
                  "dsopt.studies.augmentation.summary")

    def setup(self, params: Mapping[str, Any], *, cache_dir: str | None = None) -> Setup:
        """The fixed split and the offline NLTK data (built and verified here, never downloaded by textattack)."""
        from dsopt.data.nltk import ensure_nltk_data

        p = self.parameters(params)
        return setup(p["dataset"], nltk_data=ensure_nltk_data(), cache_dir=cache_dir)

    def grid(self, params: Mapping[str, Any]) -> list:
        """(seed, size, recipe) augmentation jobs; the learner runs follow from them."""
        p = self.parameters(params)
        g = GRIDS[p["scale"]]
        return [(s, size, r) for s in self.seeds(p) for size in g["sizes"] for r in g["recipes"]]

    def measure(self, params: Mapping[str, Any], *, cache_dir=None, progress: bool = True, workers=None,
                setup: Setup | None = None) -> dict:
        p = self.parameters(params)
        s = setup if setup is not None else self.setup(p, cache_dir=cache_dir)
        out = run_study(s, scale=p["scale"], seeds=self.seeds(p), threshold=p["threshold"],
                        pct_words_to_swap=p["pct_words_to_swap"], workers=workers, progress=progress)
        return {**out, "params": p}

    summarize_runs, format_table = staticmethod(summarize), staticmethod(format_table)

    def compute(self, summary: Mapping[str, Any], *, alpha: float = 0.05) -> dict:
        """The verdict per learner and size (:func:`~dsopt.studies.augmentation.verdict.compute`), Holm at
        level 1 - ``alpha``; the measured setting names the chapter's data set."""
        from dsopt.studies.augmentation.verdict import compute

        return compute(summary["table"], alpha=alpha, dataset=(summary.get("params") or {}).get("dataset"))

    def render(self, verdict: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
        """The verdict as Markdown, HTML or terminal text (``fmt="text"``: no Markdown at all)."""
        from dsopt.studies.augmentation.verdict import render

        return render(verdict, provenance=provenance, fmt=fmt)

    def claim_verdicts(self, verdict: dict) -> dict:
        """``{"MiniLM linear probe, 2 per class": Verdict, ...}``: one per learner and size (what decide mode
        stops on)."""
        from dsopt.studies.augmentation.verdict import claim_verdicts

        return claim_verdicts(verdict)

    def live(self, params: Mapping[str, Any], *, setup: Setup):
        """The panel's "try it": both seeded runs (without and with augmentation) of the live settings."""
        from dsopt.studies.augmentation.live import live_trainers, prepare

        p = self.parameters(params)

        def factory():
            prepared = prepare(setup, size=p["live_size"], seed=p["seed"], recipe=p["live_recipe"],
                               pct_words_to_swap=p["live_pct"], n_aug=p["live_n_aug"], threshold=p["live_threshold"])
            return live_trainers(setup, prepared, epochs=p["live_epochs"], scale=p["scale"])

        return factory


STUDY = AugmentationStudy()
