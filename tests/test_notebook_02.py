"""Chapter 02 runs headless through papermill (tiny scale) and records its table, costs and verdict."""
from __future__ import annotations

import nbformat
import pytest

from conftest import assert_portable

from dsopt.chapters.runner import run_chapter

pytestmark = pytest.mark.notebook

TINY = {"scale": "tiny", "finetune_epochs": 0, "fractions": [0.25, 0.5], "n_random_seeds": 2, "live_epochs": 2,
        "latency_batch_sizes": [1, 4], "latency_lengths": [16, 32], "latency_repeats": 2}


def test_chapter_02_headless_records_table_and_verdict(tmp_path):
    res = run_chapter("02", TINY, tmp_path / "out", progress=False, cwd=tmp_path)
    m = res["metrics"]
    assert m is not None and m["chapter"] == "02"
    assert {r["method"] for r in m["table"]} == {"gradient", "entropy", "confidence", "random"}
    rand = [r for r in m["table"] if r["method"] == "random"]
    assert all(r["n_seeds"] == 2 for r in rand) and {r["heads_removed"] for r in rand} == {18, 36}
    assert all(0 <= r["accuracy"] <= 1 for r in m["table"])
    assert m["article_rule"]["row_mean_is_1_over_L"] is True
    assert {c["length"] for c in m["costs"]} == {16, 32}
    assert all(r["baseline_ms"] > 0 and r["threads"] == 1 for r in m["latency"])
    assert "accuracy kept': " in m["verdict"]["text"] and m["classifier"]["n_test"] == 96
    nb = nbformat.read(res["notebook"], as_version=4)
    assert "widgets" not in nb.metadata
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert_portable(res["notebook"])
