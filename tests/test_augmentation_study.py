"""Chapter 03's study: subsets, the grid, the table, the verdict (constructed tables), the learners."""
from __future__ import annotations

import numpy as np
import pytest

from dsopt.studies.augmentation import BASELINE, FULL, draw_subset, format_table, steps_per_epoch, summarize
from dsopt.studies.augmentation.verdict import CLAIM_ARM, compute, render, statuses
from dsopt.util.validation import ParameterError


def test_draw_subset_is_per_class_nested_and_seeded():
    y = np.repeat(np.arange(4), 10)
    a2, a5 = draw_subset(y, 2, 0), draw_subset(y, 5, 0)
    assert np.bincount(y[a2]).tolist() == [2] * 4 and np.bincount(y[a5]).tolist() == [5] * 4
    assert set(a2) <= set(a5)  # nested
    assert not np.array_equal(draw_subset(y, 5, 1), a5)  # each seed draws its own
    assert np.array_equal(draw_subset(y, 5, 0), a5)
    assert len(draw_subset(y, FULL, 3)) == 40 and len(draw_subset(y, 50, 0)) == 40
    with pytest.raises(ParameterError, match="size"):
        draw_subset(y, 0, 0)


def test_budget_counts_original_examples_only():
    assert steps_per_epoch(48, 16) == 4 and steps_per_epoch(240, 16) == 15 and steps_per_epoch(10, 16) == 4


def _runs(base: dict, aug: dict, *, learner="probe", size=2, arm=CLAIM_ARM, val_base=0.5, val_aug=0.6):
    out = []
    for seed, f in base.items():
        out.append({"learner": learner, "size": size, "seed": seed, "arm": BASELINE, "recipe": None, "n_aug": 0,
                    "n_originals": 48, "n_train": 48, "made": 0, "kept": 0, "test_macro_f1": f,
                    "val_macro_f1": [val_base - 0.1, val_base]})
    for seed, f in aug.items():
        out.append({"learner": learner, "size": size, "seed": seed, "arm": arm, "recipe": arm.split()[0], "n_aug": 3,
                    "n_originals": 48, "n_train": 180, "made": 144, "kept": 132, "test_macro_f1": f,
                    "val_macro_f1": [val_aug]})
    return out


def test_summarize_pairs_by_seed():
    rows = summarize(_runs({0: 0.50, 1: 0.60, 2: 0.55}, {2: 0.65, 0: 0.58, 1: 0.61}))
    none, aug = rows
    assert none["arm"] == BASELINE and aug["arm"] == CLAIM_ARM
    assert aug["diff_seeds"] == [0, 1, 2] and np.allclose(aug["diffs"], [8.0, 1.0, 10.0])
    assert aug["kept_share"] == pytest.approx(132 / 144) and none["kept_share"] is None
    assert none["val_mean"] == pytest.approx(0.5) and aug["val_mean"] == pytest.approx(0.6)
    assert "| probe | 2 | embedding_swap x3 | 180 | 92 % |" in format_table(rows)


def test_verdict_supported_contradicted_inconclusive_and_holm():
    big = _runs({s: 0.50 + 0.01 * s for s in range(5)}, {s: 0.70 + 0.01 * s + 0.002 * (s % 2) for s in range(5)})
    none = _runs({s: 0.70 + 0.01 * s for s in range(5)}, {s: 0.70 + 0.01 * s + 0.001 * (-1) ** s for s in range(5)},
                 size=5)
    few = _runs({0: 0.4, 1: 0.5}, {0: 0.9, 1: 0.95}, size=10)
    v = compute(summarize(big + none + few))
    st = statuses(v)
    assert st == {"probe 2": "supported", "probe 5": "contradicted", "probe 10": "inconclusive"}
    cells = {c["size"]: c for c in v["cells"]}
    assert "Holm over 3 comparisons" in cells[2]["verdict"]["correction"]
    assert cells[10]["verdict"]["n"] == 2  # two seeds never decide, whatever their numbers
    text = render(v)
    assert text.index("**supported**") < text.index("Every arm") and "Wei & Zou" in text and "Longpre" in text
    assert "relative change" in text
    # one compact table: a row per learner and size, the relative change in percent, seeds counted
    assert "| MiniLM linear probe, 2 per class | **supported** | +" in text and "| 5 seeds |" in text
    assert "| MiniLM linear probe, 10 per class | **inconclusive** |" in text and "| 2 seeds |" in text
    assert text.index("\n\n**Best arm, chosen on validation**") < text.index("<details><summary>Every arm")
    assert "\n\n**Published anchors:**" in text
    assert all(c["verdict"]["unit"] == "seed" and c["verdict"]["resolution"] == 0 for c in v["cells"])


def test_best_arm_is_chosen_on_validation_not_test():
    runs = _runs({s: 0.6 for s in range(3)}, {s: 0.8 + 0.01 * s for s in range(3)}, val_base=0.9, val_aug=0.5)
    cell = compute(summarize(runs))["cells"][0]
    assert cell["best_on_validation"]["arm"] == BASELINE  # higher validation F1, lower test F1


def test_verdict_refuses_a_table_without_baseline():
    with pytest.raises(ParameterError, match="non-empty"):
        compute([])
    rows = [r for r in summarize(_runs({0: 0.5}, {0: 0.6})) if r["arm"] != BASELINE]
    with pytest.raises(ParameterError, match="no 'none' arm"):
        compute(rows)


@pytest.fixture(scope="module")
def tiny_study(nltk_data, tmp_path_factory):
    """The tiny grid on the real split, with validation and test cut to 2 examples per class (48 each, not
    180): the tests below check the grid's plumbing (pairs, counts, caching, the threshold), not the F1, and
    MiniLM-encoding the full validation and test sets for the probe was most of this fixture's time."""
    from dataclasses import replace

    from dsopt.data.splits import Splits
    from dsopt.studies.augmentation import run_study, setup

    s = setup(nltk_data=nltk_data, cache_dir=tmp_path_factory.mktemp("study"))
    train, val, test = s.splits
    s = replace(s, splits=Splits(train, val.subset(draw_subset(val.y, 2, 0)), test.subset(draw_subset(test.y, 2, 0))))
    return s, run_study(s, scale="tiny", seeds=[0], sizes=[1], learners=["probe"], n_augs=[1, 2], progress=False)


def test_tiny_study_runs_pairs_and_filters(tiny_study):
    s, res = tiny_study
    arms = {r["arm"]: r for r in res["runs"]}
    assert set(arms) == {BASELINE, "embedding_swap x1", "embedding_swap x2"}
    n_cls = len(s.class_names)
    assert all(r["n_originals"] == n_cls for r in res["runs"])
    assert arms["embedding_swap x2"]["n_train"] == n_cls + arms["embedding_swap x2"]["kept"]
    assert arms["embedding_swap x1"]["kept"] <= arms["embedding_swap x2"]["kept"]
    assert 0 <= res["table"][0]["f1_mean"] <= 1 and res["grid"]["threshold"] == 0.8
    assert res["grid"]["n_val"] == res["grid"]["n_test"] == 2 * n_cls  # evaluated on the splits it was given
    ex = res["examples"][0]
    assert ex["recipe"] == "embedding_swap" and all("similarity" in a for a in ex["augmentations"])


def test_tiny_study_reuses_runs_and_threshold_recomputes_nothing(tiny_study, monkeypatch):
    from dsopt.studies.augmentation import measure, run_study

    s, first = tiny_study
    calls = []
    real = measure.augment_texts
    monkeypatch.setattr(measure, "augment_texts", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = run_study(s, scale="tiny", seeds=[0], sizes=[1], learners=["probe"], n_augs=[1, 2], progress=False)
    assert calls == [] and again["table"] == first["table"]
    strict = run_study(s, scale="tiny", seeds=[0], sizes=[1], learners=["probe"], n_augs=[1, 2], threshold=1.0,
                       progress=False)
    assert calls == []  # the threshold applies to stored similarities
    assert all(r["kept"] == 0 for r in strict["runs"])


def test_grid_validation_names_the_parameter(tiny_study):
    from dsopt.studies.augmentation import run_study

    s, _ = tiny_study
    with pytest.raises(ParameterError, match="recipes must be one of"):
        run_study(s, scale="tiny", seeds=[0], recipes=["WordEmbeddingAugmenter"], progress=False)
    with pytest.raises(ParameterError, match="learners must be one of"):
        run_study(s, scale="tiny", seeds=[0], learners=["svm"], progress=False)
    with pytest.raises(ParameterError, match="scale must be one of"):
        run_study(s, scale="huge", progress=False)


def test_small_transformer_selects_on_validation(shared_data):
    from dsopt.data import load_splits
    from dsopt.studies.augmentation import train_transformer

    tr, va, te = load_splits("symptom2disease", seed=0)
    idx = draw_subset(tr.y, 2, 0)
    r = train_transformer([tr.texts[i] for i in idx], tr.y[idx], va.texts, va.y, te.texts, te.y, n_classes=24,
                          n_originals=len(idx), seed=0, scale="tiny", epochs=3)
    assert len(r["val_macro_f1"]) == 3 and r["best_epoch"] == int(np.argmax(r["val_macro_f1"])) + 1
    assert r["steps"] == 3 * steps_per_epoch(48, 16) and 0 <= r["test_macro_f1"] <= 1
    r2 = train_transformer([tr.texts[i] for i in idx], tr.y[idx], va.texts, va.y, te.texts, te.y, n_classes=24,
                           n_originals=len(idx), seed=0, scale="tiny", epochs=3)
    assert r2 == r  # seeded: bitwise the same run


# ----------------------------------------------------------------------------- issue #19: verdicts a person can act on
def _table():
    big = _runs({s: 0.50 + 0.01 * s for s in range(5)}, {s: 0.70 + 0.01 * s + 0.002 * (s % 2) for s in range(5)})
    other = _runs({s: 0.50 + 0.01 * s for s in range(5)}, {s: 0.55 + 0.01 * s + 0.003 * (s % 2) for s in range(5)},
                  arm="wordnet_swap x3")
    none = _runs({s: 0.70 + 0.01 * s for s in range(5)}, {s: 0.70 + 0.01 * s + 0.001 * (-1) ** s for s in range(5)},
                  size=5, learner="transformer")
    return summarize(big + [r for r in other if r["arm"] != BASELINE] + none)


def test_study_verbs_setting_claim_verdicts_and_stored_rendering():
    import json

    from dsopt.stats import Verdict
    from dsopt.studies.catalog import get_study

    study = get_study("03")
    v = study.compute({"table": _table(), "params": {"dataset": "symptom2disease"}})
    assert v["measured"]["text"].startswith("Symptom2Disease at 2, 5 examples per class")
    assert all(c["verdict"]["status"] != "not testable here" for c in v["cells"])  # the article's setting: text only
    cv = study.claim_verdicts(v)
    assert list(cv) == ["MiniLM linear probe, 2 per class", "small transformer (from scratch), 5 per class"]
    assert all(isinstance(x, Verdict) for x in cv.values())
    assert {k: x.status for k, x in cv.items()} == {"MiniLM linear probe, 2 per class": "supported",
                                                   "small transformer (from scratch), 5 per class": "contradicted"}
    stored = json.loads(json.dumps(v, sort_keys=True))  # as save_metrics stores it
    for fmt in ("markdown", "text", "html"):
        prov = "stored runs"
        assert study.render(stored, fmt=fmt, provenance=prov) == study.render(v, fmt=fmt, provenance=prov)
    assert study.claim_verdicts(stored).keys() == cv.keys()
    md = study.render(v)
    assert "claimed: medical consultations, small samples, model unnamed; measured: Symptom2Disease at 2, 5" in md
    assert "`wordnet_swap x3` +5." in md  # every arm's difference, in points, inside the folded part


def test_text_rendering_has_no_markdown_and_alpha_widens_the_intervals():
    from dsopt.studies.catalog import get_study

    study = get_study("03")
    summary = {"table": _table(), "params": {"dataset": "symptom2disease"}}
    v05, v01 = study.compute(summary), study.compute(summary, alpha=0.01)
    text = study.render(v05, fmt="text", provenance="computed here")
    assert "**" not in text and "|---|" not in text and "<details>" not in text and "`" not in text
    assert text.startswith("computed here\n\nClaim: 'F1 +12 %'")
    assert "\n    - MiniLM linear probe, 2 per class: " in text
    assert v01["alpha"] == 0.01
    for a, b in zip(v05["cells"], v01["cells"]):
        ia, ib = a["verdict"]["interval"], b["verdict"]["interval"]
        assert ib["low"] < ia["low"] and ib["high"] > ia["high"]
        (da,), (db,) = ([x["interval_points"] for x in c["arms"] if x["arm"] == CLAIM_ARM] for c in (a, b))
        assert db[0] < da[0] and db[1] > da[1]
    assert "99 % paired t interval per cell" in study.render(v01)
    assert compute(summary["table"])["measured"]["text"].startswith("2, 5 examples per class")  # no data set named
