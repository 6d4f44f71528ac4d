"""The monitored model service, its Prometheus exporter (over real HTTP) and the Grafana dashboard JSON."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from dsopt.monitor import CUSUM, EWMA, EmbeddingDrift, Shewhart
from dsopt.monitor.dashboard import base_metric, grafana_dashboard, metric_names_in, write_grafana_provisioning
from dsopt.monitor.exporter import BatchHistogram, Exporter
from dsopt.monitor.prom_metrics import METRIC_NAMES, PANELS
from dsopt.monitor.service import ModelService
from dsopt.monitor.signals import SignalMonitor
from dsopt.util.validation import ParameterError

D = 12


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Linear(D, 2)


def make_service(exporter=None, window=20, reference=5):
    rng = np.random.default_rng(0)
    drift = EmbeddingDrift(4).fit(rng.standard_normal((400, D)))
    charts = {"ewma": EWMA(0.2, 2.86), "cusum": CUSUM(0.5, 4.0), "shewhart": Shewhart(3.0)}
    monitor = SignalMonitor(charts, signals=("drift", "confidence", "error"), reference_windows=reference)
    return ModelService(make_model(), ["negative", "positive"], window_size=window, monitor=monitor, drift=drift,
                        exporter=exporter)


def scrape(url: str) -> dict[str, float]:
    """Parse an exposition text into {sample with labels: value} (no prometheus_client parser needed)."""
    out = {}
    for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


@pytest.fixture
def exporter():
    ex = Exporter().start()
    try:
        yield ex
    finally:
        ex.stop()


def test_exporter_serves_what_the_service_produced_over_http(exporter):
    svc = make_service(exporter)
    rng = np.random.default_rng(1)
    preds = []
    for t in range(12):
        b = svc.predict(rng.standard_normal((20, D)) + (2.0 if t >= 8 else 0.0))
        preds.append(b.pred)
        svc.add_labels(b.ids[:10], rng.integers(0, 2, 10))
    preds = np.concatenate(preds)
    s = scrape(exporter.url)
    assert s['dsopt_predictions_total{class_name="negative"}'] == np.sum(preds == 0)
    assert s['dsopt_predictions_total{class_name="positive"}'] == np.sum(preds == 1)
    assert s["dsopt_prediction_batches_total"] == 12
    assert s["dsopt_predict_latency_seconds_count"] == 12
    assert s["dsopt_prediction_confidence_count"] == 240
    assert s['dsopt_prediction_confidence_bucket{le="+Inf"}'] == 240
    assert s["dsopt_window_index"] == 11
    assert s["dsopt_window_drift_score"] == pytest.approx(svc.windows[-1]["drift"])
    assert s["dsopt_window_mean_confidence"] == pytest.approx(svc.windows[-1]["mean_confidence"])
    assert s["dsopt_labels_received_total"] == 120
    last = {(r.signal, r.chart): r for r in svc.records}
    r = last[("drift", "ewma")]
    assert s['dsopt_chart_statistic{chart="ewma",signal="drift"}'] == pytest.approx(r.statistic)
    assert s['dsopt_chart_upper_limit{chart="ewma",signal="drift"}'] == pytest.approx(r.upper)
    n_alarms = sum(1 for x in svc.records if x.alarm and (x.signal, x.chart) == ("drift", "ewma"))
    assert n_alarms >= 1  # the +2 shift of the inputs after window 8 moves the drift score
    assert s['dsopt_chart_alarms_total{chart="ewma",signal="drift"}'] == n_alarms
    assert s["dsopt_monitor_phase"] == 1


def test_confidence_histogram_matches_numpy_binning():
    from prometheus_client import CollectorRegistry

    h = BatchHistogram("x", "doc", (0.5, 0.7, 0.9, 1.0), CollectorRegistry())
    v = np.array([0.5, 0.55, 0.7, 0.71, 0.95, 1.0, 1.2])
    h.observe_many(v[:3])
    h.observe_many(v[3:])
    cum, total = h.snapshot()
    assert cum.tolist() == [1, 3, 4, 6, 7]  # le=0.5, 0.7, 0.9, 1.0, +Inf (bounds inclusive, like Prometheus)
    assert total == pytest.approx(v.sum())


def test_windows_close_inside_batches_and_charts_start_after_the_reference():
    svc = make_service(window=7, reference=3)
    b = svc.predict(np.random.default_rng(0).standard_normal((30, D)))
    assert [w["n"] for w in svc.windows] == [7, 7, 7, 7]  # 2 items wait in the open window
    assert svc.monitor.monitoring("confidence") and not svc.monitor.monitoring("error")  # no labels yet
    assert {r.window for r in b.records} == {3}  # windows 0-2 were the reference period


def test_a_reference_without_variation_keeps_collecting_instead_of_failing():
    svc = make_service(window=5, reference=3)
    svc.predict(np.zeros((20, D)))  # identical inputs: the confidence never varies
    assert not svc.monitor.monitoring("confidence") and len(svc.windows) == 4


def test_delayed_labels_give_each_window_its_error_rate():
    svc = make_service(window=10, reference=3)
    x = np.random.default_rng(3).standard_normal((40, D))
    b = svc.predict(x)
    truth = b.pred.copy()
    truth[:5] = 1 - truth[:5]  # 5 wrong in window 0
    svc.add_labels(b.ids[:10], truth[:10])
    svc.add_labels(b.ids[10:14], truth[10:14])
    assert svc.windows[0]["error"] == pytest.approx(0.5) and svc.windows[0]["labelled"] == 10
    assert svc.windows[1]["error"] == 0.0 and svc.windows[1]["labelled"] == 4
    with pytest.raises(ParameterError, match="no prediction was served for ids"):
        svc.add_labels([10_000], [1])
    with pytest.raises(ParameterError, match="got 1 labels for 2 ids"):
        svc.add_labels(b.ids[:2], [1])


def test_a_stuck_scraper_never_blocks_prediction(exporter):
    svc = make_service(exporter)
    stuck = socket.create_connection(("127.0.0.1", exporter.port))
    stuck.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never finished: this connection hangs
    try:
        done = threading.Event()

        def work():
            for _ in range(50):
                svc.predict(np.zeros((20, D)))
            done.set()

        threading.Thread(target=work, daemon=True).start()
        assert done.wait(30), "predictions waited on the exporter"
        assert scrape(exporter.url)["dsopt_prediction_batches_total"] == 50  # other scrapes are still answered
    finally:
        stuck.close()


def test_exporter_binds_loopback_on_a_free_port_and_stops_cleanly():
    ex = Exporter().start()
    port = ex.port
    assert ex.host == "127.0.0.1" and port > 0
    assert urllib.request.urlopen(ex.url, timeout=5).status == 200
    thread = ex._thread
    ex.stop()
    assert not thread.is_alive()
    ex.stop()  # idempotent
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    ex2 = Exporter().start(port=port)  # the port was released
    ex2.stop()


def test_two_exporters_do_not_share_series():
    a, b = Exporter(), Exporter()
    a.metric("dsopt_prediction_batches_total").inc(3)
    assert "dsopt_prediction_batches_total 3.0" in a.text()
    assert "dsopt_prediction_batches_total 0.0" in b.text()


def test_model_swap_is_atomic_for_predictions():
    svc = make_service()
    x = np.random.default_rng(4).standard_normal((20, D)).astype(np.float32)
    new = make_model(seed=9)
    svc.swap_model(new, version=7)
    b = svc.predict(x)
    assert b.version == 7
    assert np.array_equal(b.pred, new(torch.from_numpy(x)).argmax(1).numpy())


# -- the Grafana dashboard ----------------------------------------------------------------------
def exercised_exporter() -> Exporter:
    """An exporter after predictions, labels, alarms and loop events, so every labelled series exists."""
    ex = Exporter()
    svc = make_service(ex, window=10, reference=3)
    rng = np.random.default_rng(5)
    for t in range(10):
        b = svc.predict(rng.standard_normal((10, D)) + (3.0 if t > 5 else 0))
        svc.add_labels(b.ids, rng.integers(0, 2, 10))
    for event in ("alarm", "labels_requested", "candidate_trained", "promoted", "rejected", "rolled_back"):
        ex.metric("dsopt_retrain_events_total").labels(event=event).inc()
    ex.metric("dsopt_labels_requested_total").inc(10)
    ex.metric("dsopt_candidate_validation_accuracy").labels(model="candidate").set(0.8)
    return ex


def test_every_dashboard_query_names_a_metric_the_exporter_serves():
    served = {base_metric(n) for n in exercised_exporter().sample_names()}
    dash = grafana_dashboard()
    assert len(dash["panels"]) == len(PANELS) >= 8
    for panel in dash["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names_in(target["expr"])
            assert names, target["expr"]
            missing = {base_metric(n) for n in names} - served
            assert not missing, f"panel {panel['title']!r} reads {missing}, which the exporter does not serve"
    # and every metric we define is served under its own name
    assert {m.removesuffix("_total") for m in METRIC_NAMES} <= {base_metric(n).removesuffix("_total") for n in
                                                                  exercised_exporter().sample_names()}


def test_dashboard_json_structure_is_grafana_provisioning_format(tmp_path):
    paths = write_grafana_provisioning(tmp_path, "http://127.0.0.1:9999")
    dash = json.loads(Path(paths["dashboard"]).read_text())
    ds = json.loads(Path(paths["datasource"]).read_text())
    provider = json.loads(Path(paths["provider"]).read_text())
    assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus"
    assert ds["datasources"][0]["url"] == "http://127.0.0.1:9999"
    assert provider["providers"][0]["options"]["path"] == str((tmp_path / "dashboards").resolve())
    uid = ds["datasources"][0]["uid"]
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 30
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert p["type"] == "timeseries" and p["datasource"]["uid"] == uid
        assert set(p["gridPos"]) == {"h", "w", "x", "y"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs))
    boxes = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dash["panels"]}
    assert len(boxes) == len(dash["panels"])  # no two panels on top of each other


def test_metric_names_in_promql():
    assert metric_names_in("histogram_quantile(0.5, sum by (le) (rate(dsopt_predict_latency_seconds_bucket[1m])))") == {
        "dsopt_predict_latency_seconds_bucket"}
    assert base_metric("dsopt_predict_latency_seconds_bucket") == "dsopt_predict_latency_seconds"


def test_latency_is_measured_per_batch():
    svc = make_service()
    slow = torch.nn.Sequential(make_model())

    class Slow(torch.nn.Module):
        def forward(self, x):
            time.sleep(0.02)
            return slow(x)

    svc.swap_model(Slow(), 2)
    assert svc.predict(np.zeros((5, D))).latency >= 0.02
