"""Attention-head pruning: importance, selection, soft masking, structural removal, cost, latency.

Works on every dsopt model with ``attention_layers()`` (TransformerClassifier, MiniLMEncoder,
MiniLMClassifier). Heads are always named by ORIGINAL index (``{layer: [heads]}``), so a head set
means the same heads on a masked model and on its structurally pruned copy, and the two give the
same outputs. transformers 5 removed ``head_mask`` and ``prune_heads``; these few dozen lines are ours.
"""
from dsopt.pruning.article import (
                      RuleLog,
                      apply_article_rule,
                      article_keep_mask,
                      article_rule,
                      article_statistic,
                      rule_keeps,
)
from dsopt.pruning.cost import Cost, model_cost, reduction
from dsopt.pruning.heads import HeadSet, check_head_set, count_heads, grid_shape, head_set_to_mask, mask_to_head_set
from dsopt.pruning.importance import (
                      METHODS,
                      attention_statistics,
                      gradient_importance,
                      head_importance,
                      random_importance,
)
from dsopt.pruning.latency import Latency, compare_latency, example_inputs, measure_latency
from dsopt.pruning.masking import apply_head_mask, gates, masked, restore_gates
from dsopt.pruning.removal import head_counts, pruned_copy, remove_heads, removed_heads
from dsopt.pruning.selection import select_heads

__all__ = [
    "RuleLog", "apply_article_rule", "article_keep_mask", "article_rule", "article_statistic", "rule_keeps",
    "Cost", "model_cost", "reduction",
    "HeadSet", "check_head_set", "count_heads", "grid_shape", "head_set_to_mask", "mask_to_head_set",
    "METHODS", "attention_statistics", "gradient_importance", "head_importance", "random_importance",
    "Latency", "compare_latency", "example_inputs", "measure_latency", "apply_head_mask", "gates", "masked",
    "restore_gates", "head_counts", "pruned_copy", "remove_heads", "removed_heads", "select_heads",
]
