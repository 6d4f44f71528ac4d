"""Chapter 02 as a :class:`~dsopt.studies.study.Study`: the comparison, then the first model's measurements."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dsopt.studies.attention_pruning.classifier import measure_classifier
from dsopt.studies.attention_pruning.fixtures import trained_small_classifier
from dsopt.studies.attention_pruning.measure import (compare_methods, format_table, sweep_method, summarize,
                                                     test_heads, train_seed, baseline_accuracy)
from dsopt.studies.attention_pruning.verdict import compute_verdict, render_verdict
from dsopt.studies.study import DATA, TRAINING, Study


class AttentionPruningStudy(Study):
    """Chapter 02: head-importance methods on fine-tuned MiniLMs (seeds), selection on validation; cost and
    latency of the chosen head sets on the first model; the article's rule applied as written."""

    id = "02"
    runs = (train_seed, sweep_method, test_heads)
    depends_on = (*TRAINING, *DATA, "dsopt.models", "dsopt.pruning", "dsopt.studies.attention_pruning.__init__",
                  "dsopt.studies.attention_pruning.chapter", "dsopt.studies.attention_pruning.classifier",
                  "dsopt.studies.attention_pruning.fixtures", "dsopt.studies.attention_pruning.measure")

    @staticmethod
    def spot_check_group(job) -> Any:
        """A job's seed (every round's jobs are a seed or ``(seed, method)``): a seeded spot check re-executes runs
        of one drawn seed in every round, so it fine-tunes one MiniLM, not one per round."""
        return job if isinstance(job, int) else job[0]

    @staticmethod
    def device(p: Mapping[str, Any]) -> str:
        return "auto" if p["scale"] == "full" else "cpu"

    def grid(self, params: Mapping[str, Any]) -> list:
        """The rounds known in advance: one model per seed, then every (seed, method) sweep (the test round
        follows from the sweeps' choices)."""
        p = self.parameters(params)
        seeds, methods = self.seeds(p), p["methods"].split(",")
        return [("train", s) for s in seeds] + [("sweep", s, m) for s in seeds for m in methods]

    def measure(self, params: Mapping[str, Any], *, cache_dir=None, progress: bool = True, workers=None) -> dict:
        """The comparison over seeds, then the measurements on the first seed's model (cost, latency, rule)."""
        p = self.parameters(params)
        model = {"scale": p["scale"], "finetune_epochs": p["finetune_epochs"], "finetune_lr": p["finetune_lr"]}
        comparison = compare_methods(self.seeds(p), methods=p["methods"].split(","), fractions=p["fractions"],
                                     cache_dir=cache_dir, workers=workers, progress=progress, **model)
        measured = measure_classifier(comparison, methods=p["methods"].split(","), seed=p["seed"],
                                      article_threshold=p["article_threshold"],
                                      latency_batch_sizes=p["latency_batch_sizes"],
                                      latency_lengths=p["latency_lengths"], latency_repeats=p["latency_repeats"],
                                      threads=p["threads"], device=self.device(p), cache_dir=cache_dir, **model)
        return {**measured, "params": p}

    def summarize(self, results: dict) -> dict:
        p = results["params"]
        runs = results["study"]["runs"]
        n_tests = {(r.get("classifier") or {}).get("n_test") for r in runs} | {(results.get("info") or {}).get("n_test")}
        n_tests.discard(None)
        return {"table": summarize(runs), "latency": results["latency"], "share": results["share"],
                "article": {"accuracy": results["article_accuracy"], "rows_kept": results["rows_kept"],
                            "threshold": p["article_threshold"]},
                # test examples behind each accuracy (its resolution is 1/n); None when the runs do not say
                "n_test": n_tests.pop() if len(n_tests) == 1 else None, "params": p}

    def table(self, summary: dict) -> str:
        return format_table(summary["table"], baseline_accuracy(summary["table"], "val"))

    def compute(self, summary: dict, *, alpha: float = 0.05) -> dict:
        return compute_verdict(summary["table"], summary["latency"], summary["share"], summary["article"],
                               n_test=summary.get("n_test"), alpha=alpha)

    def render(self, verdict: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
        return render_verdict(verdict, provenance=provenance, fmt=fmt)

    def claim_verdicts(self, verdict: dict) -> dict:
        from dsopt.studies.attention_pruning.verdict import claim_verdicts

        return claim_verdicts(verdict)

    render_verdict = staticmethod(render_verdict)

    def live(self, params: Mapping[str, Any]):
        """The small classifier behind the panel (trained once; the panel masks heads on it live)."""
        p = self.parameters(params)
        return lambda: trained_small_classifier(scale=p["scale"], seed=p["seed"], epochs=p["live_epochs"])


STUDY = AttentionPruningStudy()
