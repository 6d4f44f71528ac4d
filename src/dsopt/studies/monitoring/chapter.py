"""Chapter 07 as a :class:`~dsopt.studies.study.Study`: monitoring arms over stream orders, decay and upkeep."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dsopt.studies.monitoring.measure import (StudyConfig, compare_arms, format_arm_table, format_detection_table,
                                              run_arm, summarize, ARMS)
from dsopt.studies.monitoring.verdict import compute, render
from dsopt.studies.study import DATA, TRAINING, Study


class MonitoringStudy(Study):
    """Chapter 07: a model in service on a stream that shifts at a known point; monitoring arms (none, periodic
    retraining, the SPC loop) over seeded stream orders; decay period and label upkeep."""

    id = "07"
    runs = (run_arm,)
    depends_on = (*TRAINING, *DATA, "dsopt.models", "dsopt.monitor", "dsopt.studies.monitoring.__init__",
                  "dsopt.studies.monitoring.chapter", "dsopt.studies.monitoring.data",
                  "dsopt.studies.monitoring.measure", "dsopt.studies.monitoring.stream")

    def config(self, params: Mapping[str, Any]) -> StudyConfig:
        """The run configuration (part of every run's key) from the chapter's parameters."""
        p = self.parameters(params)
        return StudyConfig.from_parameters(p["scale"], arl0=p["arl0"], window_size=p["window_size"],
                                           label_delay=p["label_delay"], labels_per_request=p["labels_per_request"],
                                           label_budget=p["label_budget"])

    def grid(self, params: Mapping[str, Any]) -> list:
        return [(arm, s) for arm in ARMS for s in self.seeds(self.parameters(params))]

    def measure(self, params: Mapping[str, Any], *, cache_dir=None, progress: bool = True, workers=1) -> dict:
        p = self.parameters(params)
        out = compare_arms(self.config(p), self.seeds(p), cache_dir=cache_dir, workers=workers, progress=progress)
        return {**out, "params": p}

    def summarize(self, results: dict) -> dict:
        p = results["params"]
        return summarize(results["runs"], margin=p["margin"], smooth=p["smooth"])

    def table(self, summary: dict) -> str:
        return format_detection_table(summary) + "\n\n" + format_arm_table(summary)

    render_verdict = staticmethod(render)

    def compute(self, summary: dict, *, alpha: float = 0.05) -> dict:
        return compute(summary, alpha=alpha)

    def render(self, verdict: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
        return render(verdict, provenance=provenance, fmt=fmt)

    def claim_verdicts(self, verdict: dict) -> dict:
        from dsopt.studies.monitoring.verdict import claim_verdicts

        return claim_verdicts(verdict)

    def live(self, params: Mapping[str, Any], *, cache_dir: str | None = None, pace: float = 0.0):
        """A factory of stream replays for the panel (``factory(epochs=..., control_schedule=...)``)."""
        from dsopt.studies.monitoring.live import live_replay

        p = self.parameters(params)
        return live_replay(self.config(p), p["seed"], cache_dir=cache_dir, pace=pace)


STUDY = MonitoringStudy()
