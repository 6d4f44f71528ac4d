"""Chapter 04 runs headless through papermill (tiny scale) and records its table, verdict and live session."""
from __future__ import annotations

import nbformat
import pytest

from conftest import assert_portable

from dsopt.chapters.results import to_jsonable
from dsopt.chapters.runner import run_chapter
from dsopt.studies.dynamic_weighting_verdict import compute_verdict, render_verdict

pytestmark = pytest.mark.notebook


def test_chapter_04_headless_records_table_and_verdict(tmp_path):
    schedule = [[2, "scheme", "focal"], [2, "gamma", 1.0]]
    res = run_chapter("04", {"scale": "tiny", "epochs": 1, "n_seeds": 2, "live_epochs": 1, "imbalance_ratio": 20.0,
                             "control_schedule": schedule}, tmp_path / "out", progress=False, cwd=tmp_path)
    m = res["metrics"]
    assert m is not None and m["chapter"] == "04"
    rows = m["table"]
    assert {(r["task"], r["ratio_label"]) for r in rows} == {
        (t, rl) for t in ("credit_card_default", "sms_spam_collection") for rl in ("natural", "20:1")}
    schemes = {r["scheme"] for r in rows}
    assert {"unweighted", "article (probability)", "article (logit)", "focal (gamma=2, alpha=0.25)",
            "class-balanced (beta=0.9999)", "inverse frequency"} == schemes
    assert all(r["n_seeds"] == 2 and 0 <= r["pr_auc"] <= 1 and 0 <= r["recall_at_threshold"] <= 1 for r in rows)
    # the stored verdict is exactly what the library computes from the stored table (issue #10, item 6)
    assert to_jsonable(compute_verdict(rows)) == m["verdict"]
    v = m["verdict"]
    assert len(v["settings"]) == 4 and all("Holm over 4" in s["recall"]["correction"] for s in v["per_setting"].values())
    assert all(s["recall"]["status"] == "inconclusive" for s in v["per_setting"].values())  # 2 seeds never decide
    # neither task is the ULB set the article's AUC came from: its AUC is a fact, not a test of the claim
    assert all(s["auc"]["status"] == "not testable here" and s["auc"]["point"] is not None
               for s in v["per_setting"].values())
    assert all(r["n_test_positive"] and r["n_test"] for r in rows)  # the recall's resolution: 1 / minority examples
    assert all(s["recall"]["resolution"] == 1 / s["n_test_positive"] for s in v["per_setting"].values())
    text = render_verdict(v, provenance=m["provenance"]["text"])
    assert "recall @ threshold 0.5" in text and "recall @ precision >= 0.8" in text and "recall @ FPR <= 1 %" in text
    assert "**Claim: 'minority recall +27 %'**" in text and "chosen on validation PR-AUC" in text
    md = [o["data"]["text/markdown"] for c in nbformat.read(res["notebook"], as_version=4).cells
          if c.cell_type == "code" for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert text in md  # the notebook shows the rendering of the stored verdict
    assert round(m["article_vs_ulb"]["ratio"]) == 578
    assert sorted(m["live_applied_changes"]) == sorted(schedule)  # the replayed panel session (same steps)
    nb = nbformat.read(res["notebook"], as_version=4)
    assert "widgets" not in nb.metadata
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert_portable(res["notebook"])
    text_out = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "at most 1.048x between any two samples" in text_out
