"""Chapter 02 runs headless through papermill (tiny scale) and records its table, costs and verdict."""
from __future__ import annotations

import nbformat
import pytest

from conftest import assert_portable

from dsopt.chapters.results import to_jsonable
from dsopt.chapters.runner import run_chapter
from dsopt.studies.attention_pruning import compute_verdict, render_verdict

pytestmark = pytest.mark.notebook

TINY = {"scale": "tiny", "finetune_epochs": 0, "fractions": [0.25, 0.5], "n_seeds": 3, "live_epochs": 2,
        "latency_batch_sizes": [1, 4], "latency_lengths": [16, 32], "latency_repeats": 2}


def test_chapter_02_headless_records_table_and_verdict(tmp_path):
    res = run_chapter("02", TINY, tmp_path / "out", progress=False, cwd=tmp_path)
    m = res["metrics"]
    assert m is not None and m["chapter"] == "02"
    assert {r["method"] for r in m["table"]} == {"gradient", "entropy", "confidence", "random"}
    rand = [r for r in m["table"] if r["method"] == "random"]
    assert {r["heads_removed"] for r in rand} == {18, 36}
    assert all(r["n_seeds"] == 3 and r["seeds"] == [0, 1, 2] for r in m["table"])  # every method on 3 models
    assert all(0 <= r["val_accuracy"] <= 1 for r in m["table"])
    # the test split is read only for the cells chosen on validation
    assert sorted([r["method"], r["fraction"]] for r in m["table"] if r["tested"]) == sorted(m["choices"])
    assert all(0 <= r["accuracy"] <= 1 for r in m["table"] if r["tested"]) and len(m["choices"]) >= 1
    assert [r["seed"] for r in m["runs"]] == [0, 1, 2] and len({r["baseline"]["test_accuracy"] for r in m["runs"]}) > 1
    assert m["article_rule"]["row_mean_is_1_over_L"] is True
    assert {c["length"] for c in m["costs"]} == {16, 32}
    assert all(r["baseline_ms"] > 0 and r["threads"] == 1 for r in m["latency"])
    assert m["classifier"]["n_test"] == 96
    # the stored verdict is exactly what the library computes from the stored tables (issue #10, item 6)
    share = {c["length"]: c["attention_share"] for c in m["costs"]}
    a = m["article_rule"]
    again = compute_verdict(m["table"], m["latency"], share,
                            {"accuracy": a["test_accuracy"], "rows_kept": a["rows_kept"], "threshold": a["threshold"]},
                            n_test=m["classifier"]["n_test"])  # each accuracy on n_test examples: resolution 1/n_test
    assert to_jsonable(again) == m["verdict"]
    v = m["verdict"]
    assert v["status"] in ("supported", "contradicted", "inconclusive") and v["n_seeds"] == 3
    chosen = next(r for r in m["table"] if (r["method"], r["fraction"]) == (v["chosen"]["method"], v["chosen"]["evaluated_fraction"]))
    assert v["kept"]["point"] == pytest.approx(chosen["accuracy"] / m["baseline_test_accuracy"])  # test of the val choice
    text = render_verdict(v, provenance=m["provenance"]["text"])
    md = [o["data"]["text/markdown"] for c in nbformat.read(res["notebook"], as_version=4).cells
          if c.cell_type == "code" for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert text in md and "Chosen on validation" in text
    assert v["kept"]["resolution"] == pytest.approx(1 / 96) and v["kept"]["unit"] == "seed"
    assert all(c["unit"] == "repeat" for c in v["compute"]) and "| 3 seeds |" in text
    nb = nbformat.read(res["notebook"], as_version=4)
    assert "widgets" not in nb.metadata
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert_portable(res["notebook"])
