"""Chapter 01 runs headless through papermill (tiny scale) and records its comparison table."""
from __future__ import annotations

import nbformat
import pytest
from conftest import assert_portable

from dsopt.chapters.results import to_jsonable
from dsopt.chapters.runner import run_chapter
from dsopt.studies.lr_restarts_verdict import compute_verdict, render_verdict

pytestmark = pytest.mark.notebook


def test_chapter_01_headless_records_table_and_verdict(tmp_path):
    res = run_chapter("01", {"scale": "tiny", "epochs": 3, "n_seeds": 2, "live_epochs": 1,
                             "control_schedule": [[2, "T_0", 2]]}, tmp_path / "out", progress=False, cwd=tmp_path)
    m = res["metrics"]
    assert m is not None and m["chapter"] == "01"
    tasks = {row["task"] for row in m["table"]}
    assert tasks == {"digits", "financial_phrasebank"}
    labels = {row["schedule"] for row in m["table"]}
    assert {"constant", "one cosine cycle", "restarts T_0=5, T_mult=2 (article)"} <= labels
    assert all(row["n_seeds"] == 2 and 0 <= row["test_acc"] <= 1 for row in m["table"])
    # the stored verdict is exactly what the library computes from the stored table (item 6 of issue #10)
    p = m["parameters"]
    again = to_jsonable(compute_verdict(m["table"], epochs=p["epochs"], article=(p["article_T_0"], p["article_T_mult"])))
    assert again == m["verdict"]
    for task in tasks:
        for claim in ("speed", "accuracy"):
            assert m["verdict"]["per_task"][task][claim]["status"] == "inconclusive"  # 2 seeds never decide
    assert m["verdict"]["restarts_in_budget"] == []  # T_0=5 lies beyond a 3-epoch budget
    assert "measured here" in m["provenance"]["text"] and m["provenance"]["computed"] > 0  # from nothing: all here
    text = render_verdict(m["verdict"], provenance=m["provenance"]["text"])
    assert "inconclusive at this budget" in text and "chosen on validation" in text
    md = [o["data"]["text/markdown"] for c in nbformat.read(res["notebook"], as_version=4).cells
          if c.cell_type == "code" for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert text in md  # the notebook shows the rendering of the stored verdict
    assert m["live_applied_changes"] == [[2, "T_0", 2]]  # the replayed panel session
    nb = nbformat.read(res["notebook"], as_version=4)
    assert "widgets" not in nb.metadata
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert_portable(res["notebook"])
