"""The learning-curve table of chapter 03: macro-F1 per learner, size and arm, paired against no augmentation."""
from __future__ import annotations

import numpy as np

from dsopt.studies.augmentation.measure import BASELINE, FULL


def _size_key(size) -> float:
    return float("inf") if size == FULL else float(size)


def summarize(runs: list[dict]) -> list[dict]:
    """One row per (learner, size, arm): mean/sd of test macro-F1 over seeds, and the paired difference.

    ``val_mean``: mean over seeds of the validation macro-F1 of what each run selected (epoch or C).
    ``diffs`` are the per-seed differences to the no-augmentation run of the same learner, size and
    seed (same originals, same initial weights), in F1 points (x100); ``seeds`` lists their seeds.
    """
    base = {(r["learner"], r["size"], r["seed"]): r["test_macro_f1"] for r in runs if r["arm"] == BASELINE}
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["learner"], r["size"], r["arm"]), []).append(r)
    rows = []
    for (learner, size, arm), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        f1 = np.array([r["test_macro_f1"] for r in rs], dtype=float)
        val = [max(r["val_macro_f1"]) for r in rs if r.get("val_macro_f1")]  # the chosen epoch's / C's value
        paired = [(r["seed"], 100 * (r["test_macro_f1"] - base[(learner, size, r["seed"])]))
                  for r in rs if (learner, size, r["seed"]) in base]
        rows.append({
            "learner": learner, "size": size, "arm": arm, "recipe": rs[0]["recipe"], "n_aug": rs[0]["n_aug"],
            "n_seeds": len(rs), "n_originals": int(np.mean([r["n_originals"] for r in rs])),
            "n_train": float(np.mean([r["n_train"] for r in rs])),
            "kept_share": (float(np.sum([r["kept"] for r in rs]) / max(1, np.sum([r["made"] for r in rs])))
                           if arm != BASELINE else None),
            "f1_mean": float(f1.mean()), "f1_sd": float(f1.std(ddof=1)) if len(f1) > 1 else None,
            "val_mean": float(np.mean(val)) if val else None,
            "f1": [float(v) for v in f1], "seeds": [int(r["seed"]) for r in rs],
            "diffs": [float(d) for _, d in paired], "diff_seeds": [int(s) for s, _ in paired],
        })
    rows.sort(key=lambda r: (r["learner"], _size_key(r["size"]), r["arm"] != BASELINE, r["arm"]))
    return rows


def format_table(rows: list[dict]) -> str:
    """The table as Markdown: macro-F1 (%) mean +- sd over seeds, and the paired difference in points."""
    out = ["| learner | per class | arm | train size | kept | test macro-F1 (%) | vs none (points, per seed) |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        sd = "" if r["f1_sd"] is None else f" +- {100 * r['f1_sd']:.1f}"
        kept = "" if r["kept_share"] is None else f"{100 * r['kept_share']:.0f} %"
        diffs = "" if r["arm"] == BASELINE else ", ".join(f"{d:+.1f}" for d in r["diffs"])
        out.append(f"| {r['learner']} | {r['size']} | {r['arm']} | {r['n_train']:.0f} | {kept} | "
                   f"{100 * r['f1_mean']:.1f}{sd} | {diffs} |")
    return "\n".join(out)
