"""Chapter 01 runs headless through papermill (tiny scale) and records its comparison table."""
from __future__ import annotations

import nbformat
import pytest

from conftest import assert_portable

from dsopt.chapters.runner import run_chapter

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
    assert "With T_0=5, T_mult=2 stepped per epoch" in m["verdict"]["text"]
    assert m["live_applied_changes"] == [[2, "T_0", 2]]  # the replayed panel session
    nb = nbformat.read(res["notebook"], as_version=4)
    assert "widgets" not in nb.metadata
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert_portable(res["notebook"])
