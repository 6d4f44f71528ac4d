"""Chapter 03's verdict on "F1 +12 %" from augmentation, per training-set size and learner, on dsopt.stats.

The claim is about the article's recipe (an embedding augmenter, 3 transformations per example) in its setting
(medical consultations, small samples, model unnamed: ../shared/notes/CLAIMS.md); Symptom2Disease at a few
examples per class tests it, so its setting is stated as text only. The closest real equivalent of the recipe
here is ``embedding_swap x3`` (textattack's embedding swap over the domain MiniLM embedding). Per (learner, size)
its test macro-F1 is paired seed by seed with no augmentation (same originals, same initial weights) and the
relative change is judged against ">= +12 %"; all (learner, size) cells form one Holm family. Counts are seeds.
Macro-F1 (a mean of per-class F1 ratios) lies on no regular grid, so no resolution is declared.

Every other arm gets its paired difference in points with a (1 - alpha) interval (per cell, uncorrected:
descriptive). The best arm per (learner, size) is chosen on mean VALIDATION macro-F1 and its test macro-F1 is
reported once, for that choice. The published anchors are printed beside the numbers: EDA (Wei & Zou, EMNLP
2019) +3.0 points mean accuracy at 500 training examples and +0.8 on full data, for CNN/RNN classifiers;
Longpre et al. (Findings of EMNLP 2020): no consistent gain from such augmentation for pretrained transformers,
even with little data.
"""
from __future__ import annotations

import html

from dsopt.stats import Claim, Setting, Verdict, assess_all, format_interval, format_mean_sd, paired, render_verdicts
from dsopt.stats.render import FORMATS, bullets, folded, heading
from dsopt.studies.augmentation.measure import BASELINE, FULL
from dsopt.util.validation import ParameterError, check_choice

#: The article's setting (text only: nothing in it rules a small public medical text set out).
CLAIM_SETTING = Setting(text="medical consultations, small samples, model unnamed")
CLAIM = Claim.at_least(0.12, on="relative", text="F1 +12 %", setting=CLAIM_SETTING)
CLAIM_ARM = "embedding_swap x3"
ANCHORS = (
    "EDA (Wei & Zou, EMNLP 2019): +3.0 points of mean accuracy at 500 training examples, +0.8 on full data "
    "(CNN/RNN classifiers, five tasks)",
    "Longpre et al. (Findings of EMNLP 2020): no consistent gain from EDA or back-translation for pretrained "
    "transformers, even with little data",
)
LEARNER_NAMES = {"transformer": "small transformer (from scratch)", "probe": "MiniLM linear probe",
                 "finetune": "MiniLM fine-tuned"}
#: The data sets' names as a reader knows them (the chapter's ``dataset`` parameter -> name).
DATASET_NAMES = {"symptom2disease": "Symptom2Disease", "sst2": "SST-2"}


def _by_seed(row: dict, field: str = "f1") -> dict[int, float]:
    return dict(zip(row["seeds"], row[field]))


def _size_order(size) -> float:
    return float("inf") if size == FULL else float(size)


def _size_label(size) -> str:
    return "the full train split" if size == FULL else f"{size} per class"


def cell_name(cell: dict) -> str:
    """A cell's row label: ``"MiniLM linear probe, 2 per class"``."""
    return f"{LEARNER_NAMES.get(cell['learner'], cell['learner'])}, {_size_label(cell['size'])}"


def measured_setting(table: list[dict], dataset: str | None = None) -> Setting:
    """What the table measured, in words: the data set (when known), the sizes and the learners."""
    sizes = sorted({r["size"] for r in table}, key=_size_order)
    numbers = [str(s) for s in sizes if s != FULL]
    what = (f"{', '.join(numbers)} examples per class" if numbers else "") + \
        (" and the full train split" if FULL in sizes and numbers else "the full train split" if FULL in sizes else "")
    learners = ", ".join(LEARNER_NAMES.get(x, x) for x in sorted({r["learner"] for r in table}))
    name = DATASET_NAMES.get(dataset, dataset) if dataset else None
    return Setting(text=f"{name + ' at ' if name else ''}{what}; {learners}")


def compute(table: list[dict], *, claim: Claim = CLAIM, claim_arm: str = CLAIM_ARM, alpha: float = 0.05,
            dataset: str | None = None) -> dict:
    """Numbers and a status per (learner, size) from :func:`~dsopt.studies.augmentation.summary.summarize`'s table.

    Returns ``{"claim", "claim_arm", "alpha", "measured", "cells": [...], "anchors"}`` (JSON-safe). Each cell:
    learner, size, the baseline's and the claim arm's F1 (mean, sd, per seed), the verdict (``as_dict``, Holm over
    the cells at level 1 - ``alpha``), every arm's paired difference in points with its (1 - ``alpha``) interval,
    and the arm chosen on validation. ``dataset``: the chapter's ``dataset`` parameter (named in the measured
    setting; the table does not carry it).
    """
    if not table:
        raise ParameterError("table", "the verdict needs a non-empty table (see summarize)")
    measured = measured_setting(table, dataset)
    cells, items = [], []
    keys = sorted({(r["learner"], r["size"]) for r in table}, key=lambda k: (k[0], _size_order(k[1])))
    for learner, size in keys:
        rows = {r["arm"]: r for r in table if r["learner"] == learner and r["size"] == size}
        base = rows.get(BASELINE)
        if base is None:
            raise ParameterError("table", f"no '{BASELINE}' arm for {learner} at size {size}")
        arms = []
        for arm, r in rows.items():
            if arm == BASELINE:
                continue
            cmp = paired(_by_seed(r), _by_seed(base), name=arm, unit="seed")
            iv = cmp.interval("difference", 1 - alpha)
            arms.append({"arm": arm, "diff_points": 100 * cmp.diff, "n": cmp.n,
                         "interval_points": [100 * iv.low, 100 * iv.high] if iv.defined else None,
                         "text": format_interval(iv, point=cmp.diff, scale=100, digits=1, unit=" points", signed=True)})
        best = max(rows.values(), key=lambda r: (r.get("val_mean") if r.get("val_mean") is not None else -1.0))
        cell = {"learner": learner, "size": size, "baseline": _arm_summary(base),
                "arms": sorted(arms, key=lambda a: a["arm"]),
                "best_on_validation": {"arm": best["arm"], "val_macro_f1": best.get("val_mean"),
                                       "test_macro_f1": best["f1_mean"], "test_macro_f1_sd": best["f1_sd"]}}
        if claim_arm in rows:
            cell["claim_arm"] = _arm_summary(rows[claim_arm])
            items.append((len(cells), paired(_by_seed(rows[claim_arm]), _by_seed(base), name=f"{learner} {size}",
                                             unit="seed")))
        cells.append(cell)
    if items:
        verdicts = assess_all([(cmp, claim, measured) for _, cmp in items], alpha=alpha)
        for (i, _), v in zip(items, verdicts):
            cells[i]["verdict"] = v.as_dict()
    return {"claim": claim.as_dict(), "claim_arm": claim_arm, "alpha": alpha, "measured": measured.as_dict(),
            "cells": cells, "anchors": list(ANCHORS)}


def _arm_summary(r: dict) -> dict:
    return {"arm": r["arm"], "f1_mean": r["f1_mean"], "f1_sd": r["f1_sd"], "f1": r["f1"], "seeds": r["seeds"],
            "n_train": r["n_train"], "kept_share": r.get("kept_share")}


def claim_verdicts(v: dict) -> dict[str, Verdict]:
    """``{"MiniLM linear probe, 2 per class": Verdict, ...}`` of :func:`compute`'s result (a stored JSON too): one
    per (learner, size) cell that ran the claim's arm, named as the rows of the verdict table."""
    return {cell_name(c): Verdict.from_dict(c["verdict"]) for c in v["cells"] if "verdict" in c}


# ----------------------------------------------------------------------------- rendering


def _code(x: str, fmt: str) -> str:
    return f"`{x}`" if fmt == "markdown" else x


def _pct(mean, sd) -> str:
    return f"{format_mean_sd(mean, sd, scale=100, digits=1)} %"


def render(v: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
    """The claim as one compact table (a row per learner and size: status, relative change of test macro-F1 in
    percent with its interval, seeds), details folded beneath (:func:`dsopt.stats.render_verdicts`); then the arm
    chosen on validation, every arm's difference (folded) and the published anchors. ``fmt``: "markdown"
    (notebooks), "html" or "text" (the terminal: no Markdown at all). ``provenance``: printed once on top."""
    check_choice("fmt", fmt, FORMATS)
    c = v["claim"]
    level = f"{100 * (1 - v.get('alpha', 0.05)):.3g} %"
    blocks = []
    if provenance:
        blocks.append({"markdown": f"_{provenance}_", "html": f'<p class="provenance">{html.escape(provenance)}</p>',
                       "text": provenance}[fmt])
    arm = _code(v["claim_arm"], fmt)
    blocks.append(heading(f"Claim: '{c['text']}'", f" ({c['range']}, of test macro-F1): {arm} "
                        "(the closest real equivalent of the article's recipe) against no augmentation, paired over "
                        "seeds (same originals, same initial weights), Holm over every learner and size.", fmt))
    items = [(cell_name(cell), Verdict.from_dict(cell["verdict"])) for cell in v["cells"] if "verdict" in cell]
    if items:
        blocks.append(render_verdicts(items, fmt=fmt).rstrip())
    missing = [cell_name(cell) for cell in v["cells"] if "verdict" not in cell]
    if missing:
        line = f"{arm} was not run (no verdict) for: {'; '.join(missing)}."
        blocks.append(f"<p>{html.escape(line)}</p>" if fmt == "html" else line)
    best = []
    for cell in v["cells"]:
        b = cell["best_on_validation"]
        val = "n/a" if b["val_macro_f1"] is None else f"{100 * b['val_macro_f1']:.1f} %"
        best.append(f"{cell_name(cell)}: {_code(b['arm'], fmt)} (validation {val}; test "
                    f"{_pct(b['test_macro_f1'], b['test_macro_f1_sd'])})")
    blocks.append(heading("Best arm, chosen on validation", " (mean validation macro-F1; its test macro-F1 reported "
                                                          "once, for that choice):", fmt)
                  + ("" if fmt == "html" else "\n") + bullets(best, fmt))
    every = []
    for cell in v["cells"]:
        b = cell["baseline"]
        parts = [f"{_code(a['arm'], fmt)} {a['text']}" for a in cell["arms"]]
        every.append(f"{cell_name(cell)}: no augmentation {_pct(b['f1_mean'], b['f1_sd'])}; "
                     + ("; ".join(parts) if parts else "no augmented arm"))
    blocks.append(folded(f"Every arm against no augmentation (test macro-F1 without augmentation, mean +- sd over "
                          f"seeds; each arm's difference in points, {level} paired t interval per cell, not corrected "
                          "for the number of arms)", every, fmt))
    blocks.append(heading("Published anchors:", " " + "; ".join(v["anchors"]) + ".", fmt))
    return "\n\n".join(blocks)


def statuses(v: dict) -> dict[str, str]:
    """``{"transformer 2": "inconclusive", ...}``: the status per cell (for tests and the metrics JSON)."""
    return {f"{c['learner']} {c['size']}": c["verdict"]["status"] for c in v["cells"] if "verdict" in c}
