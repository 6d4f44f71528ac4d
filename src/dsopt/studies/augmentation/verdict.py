"""Chapter 03's verdict on "F1 +12 %" from augmentation, per training-set size and learner, on dsopt.stats.

The claim is about the article's recipe (an embedding augmenter, 3 transformations per example); its
closest real equivalent here is ``embedding_swap x3`` (textattack's embedding swap over the domain
MiniLM embedding). Per (learner, size) its test macro-F1 is paired seed by seed with no augmentation
(same originals, same initial weights) and the relative change is judged against ">= +12 %"; all
(learner, size) cells form one Holm family. Every other arm gets its paired difference in points
with a 95 % interval (per cell, uncorrected: descriptive). The best arm per (learner, size) is chosen
on mean VALIDATION macro-F1 and its test macro-F1 is reported once, for that choice. The published
anchors are printed beside the numbers: EDA (Wei & Zou, EMNLP 2019) +3.0 points mean accuracy at 500
training examples and +0.8 on full data, for CNN/RNN classifiers; Longpre et al. (Findings of EMNLP
2020): no consistent gain from such augmentation for pretrained transformers, even with little data.
"""
from __future__ import annotations

from dsopt.stats import Claim, assess_all, format_interval, format_mean_sd, paired
from dsopt.studies.augmentation.measure import BASELINE, FULL
from dsopt.util.validation import ParameterError

CLAIM = Claim.at_least(0.12, on="relative", text="F1 +12 %")
CLAIM_ARM = "embedding_swap x3"
ANCHORS = (
    "EDA (Wei & Zou, EMNLP 2019): +3.0 points of mean accuracy at 500 training examples, +0.8 on full data "
    "(CNN/RNN classifiers, five tasks)",
    "Longpre et al. (Findings of EMNLP 2020): no consistent gain from EDA or back-translation for pretrained "
    "transformers, even with little data",
)
LEARNER_NAMES = {"transformer": "small transformer (from scratch)", "probe": "MiniLM linear probe",
                 "finetune": "MiniLM fine-tuned"}


def _by_seed(row: dict, field: str = "f1") -> dict[int, float]:
    return dict(zip(row["seeds"], row[field]))


def _size_order(size) -> float:
    return float("inf") if size == FULL else float(size)


def compute(table: list[dict], *, claim: Claim = CLAIM, claim_arm: str = CLAIM_ARM, alpha: float = 0.05) -> dict:
    """Numbers and a status per (learner, size) from :func:`~dsopt.studies.augmentation.summary.summarize`'s table.

    Returns ``{"claim", "claim_arm", "alpha", "cells": [...], "anchors"}`` (JSON-safe). Each cell: learner,
    size, the baseline's and the claim arm's F1 (mean, sd, per seed), the verdict (``as_dict``), every
    arm's paired difference in points with its interval, and the arm chosen on validation.
    """
    if not table:
        raise ParameterError("table", "the verdict needs a non-empty table (see summarize)")
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
            cmp = paired(_by_seed(r), _by_seed(base), name=arm)
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
            items.append((len(cells), paired(_by_seed(rows[claim_arm]), _by_seed(base), name=f"{learner} {size}")))
        cells.append(cell)
    if items:
        verdicts = assess_all([(cmp, claim) for _, cmp in items], alpha=alpha)
        for (i, _), v in zip(items, verdicts):
            cells[i]["verdict"] = v.as_dict()
    return {"claim": claim.as_dict(), "claim_arm": claim_arm, "alpha": alpha, "cells": cells, "anchors": list(ANCHORS)}


def _arm_summary(r: dict) -> dict:
    return {"arm": r["arm"], "f1_mean": r["f1_mean"], "f1_sd": r["f1_sd"], "f1": r["f1"], "seeds": r["seeds"],
            "n_train": r["n_train"], "kept_share": r.get("kept_share")}


def _size_label(size) -> str:
    return "the full train split" if size == FULL else f"{size} per class"


def render(v: dict) -> str:
    """Markdown: the claim and each cell's status first, then the numbers, the choice on validation, the anchors."""
    c = v["claim"]
    lines = [f"**Claim: '{c['text']}'** ({c['range']}, of test macro-F1), tested with "
             f"`{v['claim_arm']}` (the closest real equivalent of the article's recipe) against no augmentation, "
             "paired over seeds (same originals, same initial weights), Holm-corrected over every learner and size:"]
    for cell in v["cells"]:
        name = f"{LEARNER_NAMES.get(cell['learner'], cell['learner'])}, {_size_label(cell['size'])}"
        if "verdict" not in cell:
            lines.append(f"- {name}: `{v['claim_arm']}` was not run (no verdict).")
            continue
        b, a = cell["baseline"], cell["claim_arm"]
        lines.append(f"- {name}: {cell['verdict']['line_without_claim']} Macro-F1 "
                     f"{format_mean_sd(b['f1_mean'], b['f1_sd'], scale=100, digits=1)} % without, "
                     f"{format_mean_sd(a['f1_mean'], a['f1_sd'], scale=100, digits=1)} % with augmentation.")
    lines.append("**Every arm against no augmentation** (difference of test macro-F1 in points, 95 % paired t "
                 "interval per cell, not corrected for the number of arms):")
    for cell in v["cells"]:
        name = f"{LEARNER_NAMES.get(cell['learner'], cell['learner'])}, {_size_label(cell['size'])}"
        parts = [f"`{a['arm']}` {a['text']}" for a in cell["arms"]]
        lines.append(f"- {name}: " + ("; ".join(parts) if parts else "no augmented arm"))
    lines.append("**Best arm, chosen on validation** (mean validation macro-F1; its test macro-F1 reported once):")
    for cell in v["cells"]:
        b = cell["best_on_validation"]
        val = "n/a" if b["val_macro_f1"] is None else f"{100 * b['val_macro_f1']:.1f} %"
        lines.append(f"- {LEARNER_NAMES.get(cell['learner'], cell['learner'])}, {_size_label(cell['size'])}: "
                     f"`{b['arm']}` (validation {val}; test "
                     f"{format_mean_sd(b['test_macro_f1'], b['test_macro_f1_sd'], scale=100, digits=1)} %)")
    lines.append("**Published anchors:** " + "; ".join(v["anchors"]) + ".")
    return "\n".join(lines)


def statuses(v: dict) -> dict[str, str]:
    """``{"transformer 2": "inconclusive", ...}``: the status per cell (for tests and the metrics JSON)."""
    return {f"{c['learner']} {c['size']}": c["verdict"]["status"] for c in v["cells"] if "verdict" in c}

