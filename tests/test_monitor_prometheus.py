"""A REAL Prometheus (Debian's package; .ci/run installs it) scrapes the service's exporter; its HTTP
API returns the values the service produced, and every dashboard query is valid PromQL there."""
from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import numpy as np
import pytest
from test_monitor_service import D, make_service

from dsopt.monitor.exporter import Exporter
from dsopt.monitor.prom_metrics import PANELS
from dsopt.monitor.prometheus import PrometheusServer, find_prometheus, scrape_config, values_by_label
from dsopt.util.validation import ParameterError


@pytest.fixture
def exporter():
    ex = Exporter().start()
    try:
        yield ex
    finally:
        ex.stop()


@pytest.fixture
def prometheus(exporter):
    prom = PrometheusServer([exporter.address], scrape_interval="1s")
    try:
        prom.start()
        yield prom
    finally:
        prom.stop()
    assert not prom.running


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_prometheus_scrapes_the_values_the_service_produced(exporter, prometheus):
    svc = make_service(exporter)
    rng = np.random.default_rng(0)
    preds = []
    for t in range(10):
        b = svc.predict(rng.standard_normal((20, D)) + (2.5 if t >= 7 else 0.0))
        preds.append(b.pred)
        svc.add_labels(b.ids[:8], rng.integers(0, 2, 8))
    preds = np.concatenate(preds)
    expected = {"negative": float(np.sum(preds == 0)), "positive": float(np.sum(preds == 1))}

    got = prometheus.wait_for("dsopt_predictions_total", predicate=lambda r: values_by_label(r, "class_name") == expected)
    assert values_by_label(got, "class_name") == expected
    assert all(r["metric"]["instance"] == exporter.address and r["metric"]["job"] == "dsopt" for r in got)
    assert float(prometheus.query("dsopt_prediction_batches_total")[0]["value"][1]) == 10
    assert float(prometheus.query("dsopt_window_drift_score")[0]["value"][1]) == pytest.approx(svc.windows[-1]["drift"])
    last = [r for r in svc.records if (r.signal, r.chart) == ("drift", "cusum")][-1]
    stat = prometheus.query('dsopt_chart_statistic{signal="drift", chart="cusum"}')
    assert float(stat[0]["value"][1]) == pytest.approx(last.statistic)
    assert float(prometheus.query("dsopt_prediction_confidence_count")[0]["value"][1]) == 200
    assert [t["health"] for t in prometheus.targets_health()] == ["up"]

    # scraping goes on: new predictions reach Prometheus
    svc.predict(rng.standard_normal((20, D)))
    prometheus.wait_for("dsopt_prediction_batches_total", predicate=lambda r: float(r[0]["value"][1]) == 11)

    # every dashboard panel's PromQL is accepted by this Prometheus (rate() needs two scrapes: wait)
    time.sleep(2.5)
    for panel in PANELS:
        for expr, _ in panel.exprs:
            prometheus.query(expr)  # raises PrometheusError on invalid PromQL
    assert prometheus.query("sum(rate(dsopt_predictions_total[1m]))")  # data behind the first panel


def test_prometheus_stops_and_leaves_nothing_behind(exporter):
    prom = PrometheusServer([exporter.address]).start()
    pid, folder = prom.proc.pid, prom.folder
    assert _alive(pid) and Path(folder).is_dir()
    assert prom.url.startswith("http://127.0.0.1:")
    prom.stop()
    assert not _alive(pid) and not Path(folder).exists()
    prom.stop()  # idempotent


def test_a_forgotten_prometheus_is_stopped_when_collected(exporter):
    prom = PrometheusServer([exporter.address]).start()
    pid = prom.proc.pid
    del prom
    gc.collect()
    deadline = time.time() + 20
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_scrape_config_and_validation():
    cfg = scrape_config(["127.0.0.1:1234"], scrape_interval="2s")
    assert cfg["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:1234"]
    with pytest.raises(ParameterError, match="each target must be 'host:port'"):
        scrape_config(["localhost"])
    with pytest.raises(ParameterError, match="scrape_interval must be a Prometheus duration"):
        scrape_config(["127.0.0.1:1"], scrape_interval="fast")


def test_missing_binary_names_the_fix(monkeypatch, tmp_path):
    import pickle

    from dsopt.monitor.prometheus import PrometheusNotFound

    monkeypatch.setenv("DSOPT_PROMETHEUS", str(tmp_path / "nope"))
    with pytest.raises(PrometheusNotFound, match="apt-get install prometheus") as info:
        find_prometheus()
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)  # picklable for worker processes
