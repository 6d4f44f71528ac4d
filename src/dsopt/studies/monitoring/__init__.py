"""Chapter 07: monitoring a model in service (SST-2 sentiment model, shift to financial news).

``data`` (pools, label map, MiniLM embeddings, launch model), ``stream`` (the seeded stream with a
gradual shift at a known point and delayed labels), ``measure`` (arms x seeds through ``run_jobs``,
detection / accuracy / upkeep tables), ``verdict`` (``compute`` on ``dsopt.stats`` + ``render``).
"""
from dsopt.studies.monitoring.data import CLASS_NAMES, FPB_LABEL_MAP, load_features, load_pools
from dsopt.studies.monitoring.measure import (
    ARM_LABELS,
    ARMS,
    StudyConfig,
    chart_designs,
    compare_arms,
    detection_charts,
    format_arm_table,
    format_designs,
    format_detection_table,
    run_arm,
    summarize,
)
from dsopt.studies.monitoring.stream import SCALE_STREAMS, StreamConfig, build_stream
from dsopt.studies.monitoring.verdict import compute as compute_verdict
from dsopt.studies.monitoring.verdict import render as render_verdict

__all__ = ["ARMS", "ARM_LABELS", "CLASS_NAMES", "FPB_LABEL_MAP", "SCALE_STREAMS", "StreamConfig", "StudyConfig",
           "build_stream", "chart_designs", "compare_arms", "compute_verdict", "detection_charts", "format_arm_table", "format_designs",
           "format_detection_table", "load_features", "load_pools", "render_verdict", "run_arm", "summarize"]
from dsopt.studies.monitoring.chapter import STUDY, MonitoringStudy  # noqa: E402  (after its parts)
