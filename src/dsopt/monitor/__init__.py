"""Monitoring a model in service: SPC charts with calibrated ARL, drift scores, a Prometheus-instrumented
service, a local Prometheus, dashboards and an alarm-driven retraining loop.

Pure building blocks (numpy only) are re-exported here; the pieces with heavier dependencies live in
their own modules: ``service`` (torch model service + prometheus_client exporter), ``prometheus``
(run Debian's prometheus), ``dashboard`` (Grafana JSON), ``loop`` (retraining loop, model store).
"""
from dsopt.monitor.arl import arl_curve, arl_table, calibrate, format_arl_table, markov_arl, simulate_arl
from dsopt.monitor.charts import (
    CHART_KINDS,
    CUSUM,
    EWMA,
    WE_RULE_TEXT,
    WE_RULES,
    Point,
    Shewhart,
    make_chart,
    run_chart,
)
from dsopt.monitor.drift import EmbeddingDrift
from dsopt.monitor.standardize import Reference

__all__ = [
    "CHART_KINDS",
    "CUSUM",
    "EWMA",
    "WE_RULES",
    "WE_RULE_TEXT",
    "EmbeddingDrift",
    "Point",
    "Reference",
    "Shewhart",
    "arl_curve",
    "arl_table",
    "calibrate",
    "format_arl_table",
    "make_chart",
    "markov_arl",
    "run_chart",
    "simulate_arl",
]
