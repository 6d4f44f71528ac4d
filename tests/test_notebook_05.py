"""Chapter 05 runs headless through papermill (tiny scale, from nothing) and records its table, verdict and session."""
from __future__ import annotations

import nbformat
import pytest
from conftest import assert_portable

from dsopt.chapters.results import to_jsonable
from dsopt.chapters.runner import run_chapter
from dsopt.studies.mixed_precision_verdict import compute, render

pytestmark = pytest.mark.notebook


def test_chapter_05_headless_records_table_verdict_and_session(tmp_path):
    schedule = [[3, "init_scale", 1024.0], [3, "growth_interval", 2]]
    res = run_chapter("05", {"scale": "tiny", "n_seeds": 2, "speed_repeats": 2, "speed_steps": 2, "memory_batches": 2,
                             "live_epochs": 1, "control_schedule": schedule}, tmp_path / "out", progress=False,
                      cwd=tmp_path)
    m = res["metrics"]
    assert m is not None and m["chapter"] == "05"
    assert [r["precision"] for r in m["table"]] == ["fp32", "bf16", "fp16"]
    assert all(r["n_seeds"] == 2 and 0 <= r["test_accuracy"] <= 1 for r in m["table"])
    assert set(m["speed"]["step_ms"]) == {"fp32", "bf16", "fp16"} and m["speed"]["repeats"] == 2
    mem = m["memory"]["mean"]
    assert mem["bf16"]["optimizer_state"] == mem["fp32"]["optimizer_state"]  # master state does not shrink
    assert mem["bf16"]["activations"] < mem["fp32"]["activations"]
    # the stored verdict is exactly what the library computes from the stored numbers
    v = m["verdict"]
    assert to_jsonable(compute(m["table"], m["speed"], m["memory"])) == v
    for claim in ("speed", "memory"):  # the article's GPU claims, measured on a CPU: a fact, not a test
        assert {v[claim][mode]["status"] for mode in ("bf16", "fp16")} == {"not testable here"}
    assert {v["accuracy"][mode]["status"] for mode in ("bf16", "fp16")} == {"inconclusive"}  # 2 seeds never decide
    assert v["numbers"]["fp16"]["skipped_steps"] >= 0 and 0 < v["activation_share"] < 1
    text = render(v, provenance=m["provenance"]["text"])
    md = [o["data"]["text/markdown"] for c in nbformat.read(res["notebook"], as_version=4).cells
          if c.cell_type == "code" for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert text in md and "NVIDIA" in text
    assert m["numerics"]["activations"]["fp16"][0]["scale"] == 1.0
    assert sorted(m["live_applied_changes"]) == sorted(schedule)  # the replayed panel session, same steps
    nb = nbformat.read(res["notebook"], as_version=4)
    assert "widgets" not in nb.metadata
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert_portable(res["notebook"])
