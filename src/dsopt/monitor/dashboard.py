"""A Grafana dashboard for the service, generated from the same panel definitions as the notebook's
plotly dashboards (:data:`dsopt.monitor.prom_metrics.PANELS`), in Grafana's file-provisioning layout.

Grafana is not installable on the machines dsopt targets, so nothing here talks to Grafana: we
write the three files a Grafana server reads at start-up (``provisioning/datasources/dsopt.yaml``,
``provisioning/dashboards/dsopt.yaml`` and the dashboard JSON) and test their structure: every
panel's PromQL names a metric the exporter serves.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from dsopt.monitor.prom_metrics import PANELS, PanelSpec
from dsopt.util.atomic import atomic_write_text

DATASOURCE_UID = "dsopt-prometheus"
DASHBOARD_UID = "dsopt-model-service"
_METRIC_RE = re.compile(r"\b(dsopt_[a-z0-9_]+)\b")
_SUFFIXES = ("_bucket", "_count", "_sum")


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (``dsopt_*``, histogram suffixes kept)."""
    return set(_METRIC_RE.findall(expr))


def base_metric(sample_name: str) -> str:
    """``dsopt_x_bucket`` -> ``dsopt_x`` (a histogram's series share its name)."""
    for suffix in _SUFFIXES:
        if sample_name.endswith(suffix):
            return sample_name[: -len(suffix)]
    return sample_name


def grafana_dashboard(panels: tuple[PanelSpec, ...] = PANELS, *, title: str = "dsopt model service",
                      datasource_uid: str = DATASOURCE_UID, refresh: str = "5s") -> dict:
    """The dashboard JSON model: one time-series panel per :class:`PanelSpec`, two per row."""
    out = []
    for i, p in enumerate(panels):
        out.append({
            "id": i + 1,
            "type": "timeseries",
            "title": p.title,
            "description": p.description,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "datasource": {"type": "prometheus", "uid": datasource_uid},
            "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
            "targets": [{"refId": chr(ord("A") + j), "expr": expr, "legendFormat": legend,
                         "datasource": {"type": "prometheus", "uid": datasource_uid}}
                        for j, (expr, legend) in enumerate(p.exprs)],
        })
    return {
        "uid": DASHBOARD_UID, "title": title, "tags": ["dsopt", "monitoring"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": refresh,
        "time": {"from": "now-15m", "to": "now"}, "panels": out,
    }


def write_grafana_provisioning(folder: str | os.PathLike, prometheus_url: str = "http://127.0.0.1:9090") -> dict:
    """Write Grafana's provisioning files under ``folder``; return their paths.

    Point Grafana at it with ``GF_PATHS_PROVISIONING=FOLDER/provisioning``; the dashboard JSON lands in
    ``FOLDER/dashboards/dsopt-model-service.json``. YAML is written as JSON (a subset of YAML).
    """
    root = Path(folder)
    dash_dir = root / "dashboards"
    paths = {
        "datasource": root / "provisioning" / "datasources" / "dsopt.yaml",
        "provider": root / "provisioning" / "dashboards" / "dsopt.yaml",
        "dashboard": dash_dir / f"{DASHBOARD_UID}.json",
    }
    atomic_write_text(paths["datasource"], json.dumps({"apiVersion": 1, "datasources": [{
        "name": "dsopt Prometheus", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
        "url": prometheus_url, "isDefault": True, "jsonData": {"timeInterval": "1s"}}]}, indent=2))
    atomic_write_text(paths["provider"], json.dumps({"apiVersion": 1, "providers": [{
        "name": "dsopt", "folder": "dsopt", "type": "file", "disableDeletion": False,
        "options": {"path": str(dash_dir.resolve())}}]}, indent=2))
    atomic_write_text(paths["dashboard"], json.dumps(grafana_dashboard(), indent=2))
    return {k: str(v) for k, v in paths.items()}
