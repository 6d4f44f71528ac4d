"""Chapter 03's controlled measurement: domain text augmentation by training-set size.

``learners``: the small transformer from scratch, the MiniLM linear probe, MiniLM fine-tuned (each picks
its model on validation and is tested once); ``measure``: subsets, the augmentation / probe / training
grids (all through ``run_jobs``); ``summary``: the learning-curve table; ``verdict``: "+12 % F1" per size
and learner on ``dsopt.stats``; ``live``: the panel's "try it" runs.
"""
from dsopt.studies.augmentation.learners import LEARNERS, finetune_minilm, probe, steps_per_epoch, train_transformer
from dsopt.studies.augmentation.measure import (
    BASELINE,
    FULL,
    GRIDS,
    Setup,
    arm_label,
    augment_job,
    augment_texts,
    demo,
    domain_embedding,
    draw_subset,
    format_demo,
    learn_job,
    probe_job,
    run_study,
    setup,
    vectors_for,
)
from dsopt.studies.augmentation.summary import format_table, summarize

__all__ = [
    "BASELINE", "FULL", "GRIDS", "LEARNERS", "Setup", "arm_label", "augment_job", "augment_texts", "demo", "domain_embedding", "format_demo", "draw_subset",
    "finetune_minilm", "format_table", "learn_job", "probe", "probe_job", "run_study", "setup", "steps_per_epoch", "summarize",
    "train_transformer", "vectors_for",
]
from dsopt.studies.augmentation.chapter import STUDY, AugmentationStudy  # noqa: E402  (after its parts)
