"""Chapter 04's verdict: the article's weighting vs plain cross-entropy per (task, ratio) setting, per claim.

Applied to the finished comparison table (:func:`dsopt.studies.dynamic_weighting.summarize`); it never computes
a run, so its code is not part of any run's fingerprint (editing it stales no stored run).
"""
from __future__ import annotations

from dsopt.stats import Claim, assess_all, format_mean_sd, paired, sample
from dsopt.studies.dynamic_weighting import FPR_TARGET, PRECISION_TARGET, THRESHOLD
from dsopt.util.validation import ParameterError

#: "Minority recall +27 %": relative change in minority recall at threshold 0.5, at least +27 %.
RECALL_CLAIM = Claim.at_least(0.27, on="relative", text="minority recall +27 %")
#: "AUC 0.94": the article's rule's test ROC-AUC is at least 0.94.
AUC_CLAIM = Claim.at_least(0.94, on="level", text="AUC 0.94")
#: Paired changes reported beside the claims (the article's rule minus plain cross-entropy, test split).
CHANGES = (("recall_at_threshold", f"recall @ threshold {THRESHOLD:g}"),
           ("recall_at_precision", f"recall @ precision >= {PRECISION_TARGET:g}"),
           ("recall_at_fpr", f"recall @ FPR <= {100 * FPR_TARGET:g} %"), ("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"))


def _by_seed(row: dict, metric: str) -> dict:
    return dict(zip(row["seeds"], row["per_seed"][metric]))


def compute_verdict(rows: list[dict], *, article: str = "article (probability)", baseline: str = "unweighted",
                    recall_claim: Claim = RECALL_CLAIM, auc_claim: Claim = AUC_CLAIM, alpha: float = 0.05) -> dict:
    """Numbers and a status per claim and setting, from the table of :func:`summarize` (JSON-safe).

    Per (task, ratio) setting: ``recall_claim`` on the article's rule vs ``baseline`` paired over seeds
    (minority recall at threshold 0.5), ``auc_claim`` on the article's rule's ROC-AUC (a level). The
    settings form one family per claim (Holm). Beside them: paired changes with 95 % intervals at every
    operating point (:data:`CHANGES`), and the scheme with the best *validation* PR-AUC, whose test PR-AUC is
    reported once, for that choice.
    """
    settings = list(dict.fromkeys((r["task"], r["ratio_label"]) for r in rows))
    if not settings:
        raise ParameterError("rows", "the verdict needs a non-empty table (see summarize)")
    per, recall_items, auc_items = {}, [], []
    for task, rl in settings:
        by = {r["scheme"]: r for r in rows if (r["task"], r["ratio_label"]) == (task, rl)}
        if article not in by or baseline not in by:
            raise ParameterError("rows", f"rows for {task}/{rl} need the schemes {article!r} and {baseline!r}; "
                                         f"the table has: {', '.join(by)}")
        a, b = by[article], by[baseline]
        recall_items.append((paired(_by_seed(a, "recall_at_threshold"), _by_seed(b, "recall_at_threshold")), recall_claim))
        auc_items.append((sample(_by_seed(a, "roc_auc")), auc_claim))
        changes = {}
        for m, label in CHANGES:
            c = paired(_by_seed(a, m), _by_seed(b, m))
            iv = c.interval("difference")
            changes[m] = {"label": label, "baseline": c.baseline_mean, "article": c.treatment_mean, "change": c.diff,
                          "interval": iv.as_dict(), "text": f"{label} {c.baseline_mean:.3f} -> {c.treatment_mean:.3f}, "
                                                           f"change {iv.render(point=c.diff, signed=True)}"}
        best = max(by.values(), key=lambda r: r["val_pr_auc"])
        per[f"{task} / {rl}"] = {
            "task": task, "ratio_label": rl, "train_ratio": a["train_ratio"], "test_prevalence": a["test_prevalence"],
            "epochs": a.get("epochs"), "n_seeds": a["n_seeds"], "changes": changes,
            "best_on_validation": {"scheme": best["scheme"], "val_pr_auc": best["val_pr_auc"],
                                   "test_pr_auc": best["pr_auc"], "test_pr_auc_sd": best["pr_auc_sd"]},
        }
    for key, items in (("recall", recall_items), ("auc", auc_items)):
        for name, v in zip(per, assess_all(items, alpha=alpha)):
            per[name][key] = v.as_dict()
    return {"claims": {"recall": recall_claim.as_dict(), "auc": auc_claim.as_dict()}, "alpha": alpha,
            "article": article, "baseline": baseline, "settings": list(per), "per_setting": per}


def render_verdict(v: dict) -> str:
    """Markdown for :func:`compute_verdict`'s result: each claim with a status per setting first, then the numbers."""
    c = v["claims"]
    settings = [(name, v["per_setting"][name]) for name in v["settings"]]  # the JSON sorts keys: measured order
    lines = [f"**Claim: '{c['recall']['text']}'** ({c['recall']['range']}; minority recall at threshold {THRESHOLD:g}, "
             f"{v['article']} vs {v['baseline']}, paired over seeds):"]
    lines += [f"- {name}: {s['recall']['line_without_claim']}" for name, s in settings]
    lines.append(f"**Claim: '{c['auc']['text']}'** ({c['auc']['range']}; the test ROC-AUC of {v['article']}; "
                 "an AUC level belongs to a data set and model, the claim's was ULB card fraud):")
    lines += [f"- {name}: {s['auc']['line_without_claim']}" for name, s in settings]
    lines.append(f"**Changes by {v['article']} against {v['baseline']}** (test split, paired over seeds, "
                 "95 % intervals, not corrected: descriptive):")
    for name, s in settings:
        lines.append(f"- {name} (train {s['train_ratio']:.1f}:1, test prevalence {100 * s['test_prevalence']:.1f} %, "
                     f"{s['epochs']} epochs): " + "; ".join(s["changes"][m]["text"] for m, _ in CHANGES if m in s["changes"]) + ".")
    lines.append("**Best scheme, chosen on validation PR-AUC** (its test PR-AUC reported once, for that choice):")
    for name, s in settings:
        b = s["best_on_validation"]
        lines.append(f"- {name}: {b['scheme']}: validation {b['val_pr_auc']:.3f}, test "
                     f"{format_mean_sd(b['test_pr_auc'], b['test_pr_auc_sd'])}.")
    return "\n".join(lines)

