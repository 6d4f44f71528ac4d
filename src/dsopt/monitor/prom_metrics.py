"""The service's Prometheus metrics, defined once: the exporter, the Grafana dashboard and the
notebook's plotly dashboards are all generated from :data:`METRICS` and :data:`PANELS`.

Names follow Prometheus conventions (``dsopt_`` prefix, base units, ``_total`` for counters,
``_seconds`` for durations). Chart series carry two labels: ``signal`` (drift, confidence, error)
and ``chart`` (shewhart, shewhart+WE1234, ewma, cusum).
"""
from __future__ import annotations

from dataclasses import dataclass, field

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


@dataclass(frozen=True)
class PanelSpec:
    """One dashboard panel: PromQL expressions (with legends), the unit, and what it shows."""

    title: str
    exprs: tuple[tuple[str, str], ...]
    unit: str = "none"
    description: str = ""
    thresholds: tuple = field(default=())


LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONFIDENCE_BUCKETS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 1.0)
CHART_LABELS = ("signal", "chart")

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("dsopt_predictions_total", COUNTER, "Predictions served, by predicted class.", ("class_name",)),
    MetricSpec("dsopt_prediction_batches_total", COUNTER, "Prediction batches served."),
    MetricSpec("dsopt_predict_latency_seconds", HISTOGRAM, "Wall time of one prediction batch.", (), LATENCY_BUCKETS),
    MetricSpec("dsopt_prediction_confidence", HISTOGRAM, "Top-class probability of each prediction.", (),
               CONFIDENCE_BUCKETS),
    MetricSpec("dsopt_window_index", GAUGE, "Index of the last closed monitoring window."),
    MetricSpec("dsopt_window_mean_confidence", GAUGE, "Mean top-class probability in the last closed window."),
    MetricSpec("dsopt_window_drift_score", GAUGE, "Embedding drift score of the last closed window (about N(0,1) "
                                                  "while inputs look like the launch data)."),
    MetricSpec("dsopt_window_error_rate", GAUGE, "Error rate of the last window whose delayed labels arrived."),
    MetricSpec("dsopt_window_labelled_items", GAUGE, "Labelled items behind the last window error rate."),
    MetricSpec("dsopt_labels_received_total", COUNTER, "Delayed labels received (audit sample and requests)."),
    MetricSpec("dsopt_chart_statistic", GAUGE, "Plotted statistic of each SPC chart (standardised units).",
               CHART_LABELS),
    MetricSpec("dsopt_chart_upper_limit", GAUGE, "Upper control limit of each SPC chart.", CHART_LABELS),
    MetricSpec("dsopt_chart_lower_limit", GAUGE, "Lower control limit of each SPC chart.", CHART_LABELS),
    MetricSpec("dsopt_chart_alarm", GAUGE, "1 while the chart's last point is an alarm, else 0.", CHART_LABELS),
    MetricSpec("dsopt_chart_alarms_total", COUNTER, "Alarms raised by each SPC chart.", CHART_LABELS),
    MetricSpec("dsopt_monitor_phase", GAUGE, "0 = collecting the reference period, 1 = monitoring."),
    MetricSpec("dsopt_retrain_events_total", COUNTER, "Retraining loop events (alarm, labels_requested, "
                                                      "candidate_trained, promoted, rejected, rolled_back).",
               ("event",)),
    MetricSpec("dsopt_labels_requested_total", COUNTER, "Labels requested by the retraining loop (the label budget "
                                                        "spent)."),
    MetricSpec("dsopt_retrain_compute_seconds_total", COUNTER, "CPU seconds spent fine-tuning candidates."),
    MetricSpec("dsopt_model_version", GAUGE, "Version number of the model in service."),
    MetricSpec("dsopt_candidate_validation_accuracy", GAUGE, "Held-out accuracy of the last candidate and of the "
                                                             "model it was compared with.", ("model",)),
)
METRIC_NAMES = {m.name for m in METRICS}
RETRAIN_EVENTS = ("alarm", "labels_requested", "candidate_trained", "promoted", "rejected", "rolled_back")

PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("Predictions per second, by class", (("sum by (class_name) (rate(dsopt_predictions_total[1m]))",
                                                    "{{class_name}}"),), "reqps"),
    PanelSpec("Batch latency (p50, p95)", (
        ("histogram_quantile(0.5, sum by (le) (rate(dsopt_predict_latency_seconds_bucket[1m])))", "p50"),
        ("histogram_quantile(0.95, sum by (le) (rate(dsopt_predict_latency_seconds_bucket[1m])))", "p95")), "s"),
    PanelSpec("Confidence (mean of the last window; p10 of the last minute)", (
        ("dsopt_window_mean_confidence", "window mean"),
        ("histogram_quantile(0.1, sum by (le) (rate(dsopt_prediction_confidence_bucket[1m])))", "p10")),
        "percentunit"),
    PanelSpec("Embedding drift score", (("dsopt_window_drift_score", "drift score"),), "none",
              "about N(0, 1) while the inputs look like the launch data"),
    PanelSpec("Error rate (delayed labels)", (("dsopt_window_error_rate", "error rate"),), "percentunit"),
    PanelSpec("SPC statistics and limits", (
        ("dsopt_chart_statistic", "{{signal}} {{chart}}"),
        ("dsopt_chart_upper_limit", "UCL {{signal}} {{chart}}")), "none"),
    PanelSpec("SPC alarms (per chart)", (("increase(dsopt_chart_alarms_total[5m])", "{{signal}} {{chart}}"),),
              "none"),
    PanelSpec("Retraining loop", (
        ("increase(dsopt_retrain_events_total[5m])", "{{event}}"),
        ("dsopt_model_version", "model version")), "none"),
    PanelSpec("Labels spent", (("dsopt_labels_requested_total", "requested for retraining"),
                               ("dsopt_labels_received_total", "received")), "none"),
)
