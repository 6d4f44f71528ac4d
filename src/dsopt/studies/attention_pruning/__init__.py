"""Chapter 02's controlled measurement: head-importance methods on fine-tuned MiniLMs, cost, latency, verdict.

``fixtures``: the classifiers to prune (MiniLM fine-tuned on Financial PhraseBank, cached; the small
panel model) and their batches; ``measure``: one job per fine-tuned model (seed) through the cached,
resumable job runner, accuracy vs heads removed on validation and test, cost and latency tables;
``classifier``: what is measured on the first seed's fine-tuned model afterwards (importance maps, the
article's rule, cost, latency); ``verdict``: ``compute_verdict`` (numbers and statuses, selection on
validation) and ``render_verdict``.
"""
from dsopt.studies.attention_pruning.classifier import measure_classifier
from dsopt.studies.attention_pruning.fixtures import (
    MAX_LENGTH,
    BucketBatchSampler,
    TrainedClassifier,
    bucketed_loader,
    fpb_split,
    sorted_batches,
    trained_minilm_classifier,
    trained_small_classifier,
)
from dsopt.studies.attention_pruning.measure import (
    accuracy,
    accuracy_sweep,
    baseline_accuracy,
    best_method,
    compare_methods,
    cost_rows,
    format_costs,
    format_latency,
    format_table,
    importances_for,
    largest_fraction_kept,
    latency_rows,
    majority_share,
    choices,
    sweep_method,
    test_heads,
    train_seed,
    summarize,
    verdict_heads,
)
from dsopt.studies.attention_pruning.verdict import COMPUTE_CLAIM, KEPT_CLAIM, compute_verdict, render_verdict

__all__ = [
    "COMPUTE_CLAIM", "KEPT_CLAIM", "MAX_LENGTH", "BucketBatchSampler", "TrainedClassifier", "accuracy",
    "accuracy_sweep", "baseline_accuracy", "best_method", "bucketed_loader", "compare_methods", "compute_verdict",
    "cost_rows", "format_costs", "format_latency", "format_table", "fpb_split", "importances_for",
    "largest_fraction_kept", "latency_rows", "majority_share", "measure_classifier", "render_verdict", "choices", "sweep_method", "test_heads", "train_seed", "sorted_batches",
    "summarize", "trained_minilm_classifier", "trained_small_classifier", "verdict_heads",
]
from dsopt.studies.attention_pruning.chapter import STUDY, AttentionPruningStudy  # noqa: E402  (after its parts)
