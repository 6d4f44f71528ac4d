"""Chapter 03 runs headless through papermill (tiny scale), offline, and records its table and verdict."""
from __future__ import annotations

import nbformat
import pytest
from conftest import assert_portable

from dsopt.chapters.results import to_jsonable
from dsopt.chapters.runner import run_chapter
from dsopt.studies.augmentation.verdict import compute, render

pytestmark = pytest.mark.notebook


def test_chapter_03_headless_records_table_and_verdict(tmp_path, nltk_data, monkeypatch):
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    res = run_chapter("03", {"scale": "tiny", "n_seeds": 2, "live_size": 1, "live_epochs": 2},
                      tmp_path / "out", progress=False, cwd=tmp_path)
    m = res["metrics"]
    assert m is not None and m["chapter"] == "03"
    assert {r["learner"] for r in m["table"]} == {"probe", "transformer"}
    assert {r["arm"] for r in m["table"]} == {"none", "embedding_swap x3"}
    assert all(r["n_seeds"] == 2 and 0 <= r["f1_mean"] <= 1 for r in m["table"])
    # the stored verdict is what the library computes from the stored table; 2 seeds never decide
    assert to_jsonable(compute(m["table"], dataset=m["parameters"]["dataset"])) == m["verdict"]
    assert {c["verdict"]["status"] for c in m["verdict"]["cells"]} == {"inconclusive"}
    assert m["verdict"]["measured"]["text"].startswith("Symptom2Disease at 2 examples per class")
    assert "| **inconclusive at this budget** |" in render(m["verdict"]) or "| **inconclusive** |" in render(m["verdict"])
    errors = [s["error"] for s in m["article_recipe"]]
    assert errors == ["ImportError", "OfflineError", "TypeError"]
    assert m["live"]["live_size"] == 1 and m["live"]["live_recipe"] == "embedding_swap"
    nb = nbformat.read(res["notebook"], as_version=4)
    md = [o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code"
          for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert render(m["verdict"], provenance=m["provenance"]["text"]) in md
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "cannot import name 'WordEmbeddingAugmenter'" in text and "[" in text  # the literal recipe; marked swaps
    assert "widgets" not in nb.metadata
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert_portable(res["notebook"])
