"""Chapter 02's controlled measurement: head-importance methods on a fine-tuned MiniLM, cost, latency, verdict.

``fixtures``: the classifiers to prune (MiniLM fine-tuned on Financial PhraseBank, cached; the small
panel model) and their batches; ``measure``: accuracy vs heads removed, cost and latency tables;
``verdict``: the verdict computed from those tables.
"""
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
                                                      best_method,
                                                      cost_rows,
                                                      format_costs,
                                                      format_latency,
                                                      format_table,
                                                      importances_for,
                                                      largest_fraction_kept,
                                                      latency_rows,
                                                      majority_share,
                                                      summarize,
                                                      verdict_heads,
)
from dsopt.studies.attention_pruning.verdict import verdict

__all__ = [
    "MAX_LENGTH", "BucketBatchSampler", "TrainedClassifier", "bucketed_loader", "fpb_split", "sorted_batches",
    "trained_minilm_classifier", "trained_small_classifier", "accuracy", "accuracy_sweep", "best_method",
    "cost_rows", "format_costs", "format_latency", "format_table", "importances_for", "largest_fraction_kept",
    "latency_rows", "majority_share", "summarize", "verdict_heads", "verdict",
]
