"""`dsopt monitor prometheus` starts a real Prometheus on 127.0.0.1, prints its URL, stops it cleanly."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

from dsopt.monitor.exporter import Exporter


def test_dsopt_monitor_prometheus_prints_its_url_scrapes_and_stops():
    ex = Exporter().start()
    ex.metric("dsopt_prediction_batches_total").inc(4)
    proc = subprocess.Popen([sys.executable, "-m", "dsopt.cli", "monitor", "prometheus", "--target", ex.address,
                             "--scrape-interval", "500ms", "--duration", "12"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        deadline, value = time.time() + 30, None
        while time.time() < deadline and value is None:
            body = json.loads(urllib.request.urlopen(f"{url}/api/v1/query?query=dsopt_prediction_batches_total",
                                                     timeout=5).read())
            result = body["data"]["result"]
            value = float(result[0]["value"][1]) if result else None
            time.sleep(0.3)
        assert value == 4
        assert proc.wait(timeout=60) == 0
        assert "prometheus: stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        ex.stop()
    try:
        urllib.request.urlopen(f"{url}/-/ready", timeout=2)
        raise AssertionError("prometheus still answers after the command ended")
    except OSError:
        pass


def test_dsopt_monitor_prometheus_without_the_binary_says_how_to_install(monkeypatch, tmp_path):
    from dsopt.cli import main

    monkeypatch.setenv("DSOPT_PROMETHEUS", str(tmp_path / "missing"))
    assert main(["monitor", "prometheus", "--duration", "1"]) == 2
