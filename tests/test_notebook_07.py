"""Chapter 07 runs headless through papermill (tiny scale, from nothing): ARL table, comparison, verdict,
and a real Prometheus that scraped the replayed stream and was stopped."""
from __future__ import annotations

import subprocess

import nbformat
import pytest
from conftest import assert_portable

from dsopt.chapters.runner import run_chapter
from dsopt.stats import STATUSES
from dsopt.studies.monitoring.verdict import compute, render

pytestmark = pytest.mark.notebook


def _prometheus_pids() -> list[str]:
    out = subprocess.run(["pgrep", "-f", "dsopt-prometheus-"], capture_output=True, text=True, check=False)
    return out.stdout.split()


def test_chapter_07_headless_records_arl_table_comparison_and_verdict(tmp_path, shared_data):
    before = _prometheus_pids()
    res = run_chapter("07", {"scale": "tiny", "n_seeds": 3, "live_windows": 40}, tmp_path / "out", progress=False,
                      cwd=tmp_path)
    m = res["metrics"]
    assert m is not None and m["chapter"] == "07"
    assert len(m["arl_table"]) >= 20 and all(abs(r["rel_error"]) < 0.05 for r in m["arl_table"])
    s = m["summary"]
    assert len(s["detection"]) == 12 and {r["arm"] for r in s["arms"]} == {"none", "monitor", "periodic"}
    assert all(r["n_seeds"] == 3 for r in s["arms"])
    drift = [r for r in s["detection"] if r["signal"] == "drift"]
    assert all(r["detected"] == 3 for r in drift)  # the shift to news is seen on the inputs in every stream
    v = m["verdict"]
    assert set(v["claims"]) == {"decay", "upkeep"}  # upkeep judged once (labels); compute is context
    assert all(c["status"] in STATUSES for c in v["claims"].values())
    assert all(c["unit"] == "stream order" for c in v["claims"].values())
    again = compute(s)  # the verdict follows from the stored table
    assert {k: c["status"] for k, c in again["claims"].items()} == {k: c["status"] for k, c in v["claims"].items()}
    nb = nbformat.read(res["notebook"], as_version=4)
    md = [o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
          if "text/markdown" in o.get("data", {})]
    assert render(v, provenance=m["provenance"]["text"]) in md  # the stored verdict renders as the notebook showed it
    assert "widgets" not in nb.metadata
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert [o for o in outputs if o.output_type == "error"] == []
    text = "".join(o.get("text", "") for o in outputs)
    assert "every simulated ARL within 5 % of its reference: True" in text
    assert "scraped the exporter" in text and "both servers are stopped" in text  # a real Prometheus ran
    assert_portable(res["notebook"])
    assert _prometheus_pids() == before  # and it was stopped
