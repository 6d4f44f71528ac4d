"""Chapter 04's verdict: the article's weighting vs plain cross-entropy per (task, ratio) setting, per claim.

Applied to the finished comparison table (:func:`dsopt.studies.dynamic_weighting.summarize`); it never computes
a run, so its code is not part of any run's fingerprint (editing it stales no stored run).

The claims' setting (../shared/notes/CLAIMS.md): credit-card fraud, the ULB set (284,807 transactions, 492
frauds, 578:1). "Minority recall +27 %" is a relative gain of the weighting: its setting is stated as text only,
so every imbalanced task here tests it. "AUC 0.94" is a level that belongs to one data set: its claim names the
ULB set (``Setting(dataset=ULB_DATASET)``), and on any other data set (or on the ULB set with its train split's
minority subsampled) the measured AUC is reported as a fact about that set with the status "not testable here".

Resolution: a recall on a test split with ``n_positive`` minority examples moves in steps of ``1 / n_positive``.
The Study's ``summarize`` copies ``n_test`` / ``n_test_positive`` from the runs' test reports into the table; a
table without them (older metrics files) gets no resolution (none is invented).
"""
from __future__ import annotations

import html

from dsopt.stats import Claim, Setting, Verdict, assess_all, format_mean_sd, paired, render_verdicts, sample
from dsopt.stats.render import FORMATS, bullets, folded, heading
from dsopt.studies.dynamic_weighting import FPR_TARGET, PRECISION_TARGET, THRESHOLD
from dsopt.util.validation import ParameterError, check_choice

#: The data set the article's numbers are about.
ULB_DATASET = "ULB credit-card fraud"
#: The recall claim's setting, in words (text only: it never makes a claim untestable).
ULB_TEXT = "ULB credit-card fraud, 578:1"
#: "Minority recall +27 %": relative change in minority recall at threshold 0.5, at least +27 %. Its setting is
#: text only: a relative gain of the weighting, testable on any imbalanced binary task.
RECALL_CLAIM = Claim.at_least(0.27, on="relative", text="minority recall +27 %", setting=Setting(text=ULB_TEXT))
#: "AUC 0.94": the article's rule's test ROC-AUC is at least 0.94, on the ULB set (an AUC level is dataset-bound).
AUC_CLAIM = Claim.at_least(0.94, on="level", text="AUC 0.94", setting=Setting(dataset=ULB_DATASET))
#: Paired changes reported beside the claims (the article's rule minus plain cross-entropy, test split).
CHANGES = (("recall_at_threshold", f"recall @ threshold {THRESHOLD:g}"),
           ("recall_at_precision", f"recall @ precision >= {PRECISION_TARGET:g}"),
           ("recall_at_fpr", f"recall @ FPR <= {100 * FPR_TARGET:g} %"), ("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"))
#: The data set behind each task name (what a measured Setting states).
DATASETS = {"credit_card_default": "UCI credit-card default",
            "sms_spam_collection": "UCI SMS Spam Collection", "digits": "scikit-learn digits",
            "financial_phrasebank": "Financial PhraseBank"}
#: Task names that mean the ULB set (Kaggle "mlg-ulb/creditcardfraud", file creditcard.csv).
ULB_TASKS = ("creditcard", "creditcardfraud", "credit_card_fraud", "creditcard_fraud", "ulb", "ulb_fraud",
             "ulb_credit_card_fraud", "ulb_creditcard", "mlg-ulb/creditcardfraud")


def dataset_name(task: str) -> str:
    """The data set a task measures on: :data:`ULB_DATASET` for the ULB set's names, else :data:`DATASETS`'s
    name (the task's own name when it has none)."""
    t = " ".join(str(task).lower().split())
    if t in ULB_TASKS or t == ULB_DATASET.lower():
        return ULB_DATASET
    return DATASETS.get(task, task)


def measured_setting(task: str, ratio_label: str) -> Setting:
    """The setting one (task, ratio) measures: its data set; at a subsampled train ratio the data set is named
    with that change (the train split is then another data set than the one the claim's AUC came from)."""
    name = dataset_name(task)
    if ratio_label != "natural":
        name = f"{name}, train subsampled to {ratio_label}"
    return Setting(dataset=name)


def _by_seed(row: dict, metric: str) -> dict:
    return dict(zip(row["seeds"], row["per_seed"][metric]))


def _positives(a: dict, b: dict) -> int | None:
    """Minority examples in the test split, when both rows state the same number (else None: no resolution)."""
    n = a.get("n_test_positive")
    return int(n) if n and n == b.get("n_test_positive") else None


def compute_verdict(rows: list[dict], *, article: str = "article (probability)", baseline: str = "unweighted",
                    recall_claim: Claim = RECALL_CLAIM, auc_claim: Claim = AUC_CLAIM, alpha: float = 0.05) -> dict:
    """Numbers and a status per claim and setting, from the table of :func:`summarize` (JSON-safe).

    Per (task, ratio) setting: ``recall_claim`` on the article's rule vs ``baseline`` paired over seeds
    (minority recall at threshold 0.5, resolution 1 / minority test examples when the table states them),
    ``auc_claim`` on the article's rule's ROC-AUC (a level; "not testable here" unless the task is the ULB set
    at its natural ratio). The settings form one Holm family per claim (at level 1 - ``alpha``). Beside them:
    paired changes with (1 - ``alpha``) intervals at every operating point (:data:`CHANGES`, descriptive), and
    the scheme with the best *validation* PR-AUC, whose test PR-AUC is reported once, for that choice.
    """
    settings = list(dict.fromkeys((r["task"], r["ratio_label"]) for r in rows))
    if not settings:
        raise ParameterError("rows", "the verdict needs a non-empty table (see summarize)")
    per, recall_items, auc_items = {}, [], []
    level = 1 - alpha
    for task, rl in settings:
        by = {r["scheme"]: r for r in rows if (r["task"], r["ratio_label"]) == (task, rl)}
        if article not in by or baseline not in by:
            raise ParameterError("rows", f"rows for {task}/{rl} need the schemes {article!r} and {baseline!r}; "
                                         f"the table has: {', '.join(by)}")
        a, b = by[article], by[baseline]
        name = f"{task} / {rl}"
        n_pos = _positives(a, b)
        res = 1.0 / n_pos if n_pos else 0.0
        meas = measured_setting(task, rl)
        recall_items.append((paired(_by_seed(a, "recall_at_threshold"), _by_seed(b, "recall_at_threshold"),
                                    name=name, unit="seed", resolution=res), recall_claim, meas))
        auc_items.append((sample(_by_seed(a, "roc_auc"), name=name, unit="seed"), auc_claim, meas))
        changes = {}
        for m, label in CHANGES:
            c = paired(_by_seed(a, m), _by_seed(b, m), unit="seed", resolution=res if m.startswith("recall") else 0.0)
            iv = c.interval("difference", level)
            changes[m] = {"label": label, "baseline": c.baseline_mean, "article": c.treatment_mean, "change": c.diff,
                          "interval": iv.as_dict(), "text": f"{label} {c.baseline_mean:.3f} -> {c.treatment_mean:.3f}, "
                                                           f"change {iv.render(point=c.diff, signed=True)}"}
        best = max(by.values(), key=lambda r: r["val_pr_auc"])
        per[name] = {
            "task": task, "ratio_label": rl, "dataset": dataset_name(task), "measured": meas.as_dict(),
            "train_ratio": a["train_ratio"], "test_prevalence": a["test_prevalence"],
            "n_test": a.get("n_test"), "n_test_positive": n_pos,
            "epochs": a.get("epochs"), "n_seeds": a["n_seeds"], "changes": changes,
            "best_on_validation": {"scheme": best["scheme"], "val_pr_auc": best["val_pr_auc"],
                                   "test_pr_auc": best["pr_auc"], "test_pr_auc_sd": best["pr_auc_sd"]},
        }
    for key, items in (("recall", recall_items), ("auc", auc_items)):
        for name, v in zip(per, assess_all(items, alpha=alpha)):
            per[name][key] = v.as_dict()
    return {"claims": {"recall": recall_claim.as_dict(), "auc": auc_claim.as_dict()}, "alpha": alpha,
            "article": article, "baseline": baseline, "settings": list(per), "per_setting": per}


#: The claims in the order they are rendered, with their short names (the ``claim_verdicts`` prefixes).
CLAIM_KEYS = ("recall", "auc")


def claim_verdicts(v: dict) -> dict[str, Verdict]:
    """``{"recall / TASK / RATIO": Verdict, "auc / TASK / RATIO": Verdict}`` of :func:`compute_verdict`'s result
    (a stored JSON too): one per claim and setting, the rows of the verdict tables."""
    return {f"{key} / {name}": Verdict.from_dict(v["per_setting"][name][key])
            for key in CLAIM_KEYS for name in v["settings"]}


# ----------------------------------------------------------------------------- rendering


def render_verdict(v: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
    """Each claim as one compact table (a row per setting: status, estimate with its interval, seeds; setting
    claimed vs measured), details folded beneath (:func:`dsopt.stats.render_verdicts`); then the scheme chosen on
    validation and, folded, the changes at every operating point. ``fmt``: "markdown" (notebooks), "html" or
    "text" (the terminal: no Markdown at all). ``provenance``: where the runs came from, printed once on top."""
    check_choice("fmt", fmt, FORMATS)
    c = v["claims"]
    names = v["settings"]  # the JSON sorts keys: the measured order is this list
    per = v["per_setting"]
    alpha = v.get("alpha", 0.05)
    level = f"{100 * (1 - alpha):.3g} %"
    blocks = []
    if provenance:
        blocks.append({"markdown": f"_{provenance}_", "html": f'<p class="provenance">{html.escape(provenance)}</p>',
                       "text": provenance}[fmt])
    intro = {
        "recall": (f" ({c['recall']['range']}): minority recall at threshold {THRESHOLD:g}, {v['article']} vs "
                   f"{v['baseline']} on the test split, paired over seeds, Holm over the {len(names)} settings. "
                   "A relative recall gain is a property of the weighting: every imbalanced task here tests it "
                   "(the claim's own setting is the ULB fraud set at 578:1)."),
        "auc": (f" ({c['auc']['range']}): the test ROC-AUC of {v['article']}. An AUC level belongs to one data set: "
                f"the article's is the {ULB_DATASET} set (284,807 transactions, 492 frauds). On any other data set "
                "the measured AUC is a fact about that set, not a test of the claim (status: not testable here)."),
    }
    for key in CLAIM_KEYS:
        blocks.append(heading(f"Claim: '{c[key]['text']}'", intro[key], fmt))
        items = [(name, Verdict.from_dict(per[name][key])) for name in names]
        blocks.append(render_verdicts(items, fmt=fmt).rstrip())
    best = []
    for name in names:
        b = per[name]["best_on_validation"]
        best.append(f"{name}: {b['scheme']} (validation PR-AUC {b['val_pr_auc']:.3f}; test PR-AUC "
                    f"{format_mean_sd(b['test_pr_auc'], b['test_pr_auc_sd'])})")
    blocks.append(heading("Best scheme, chosen on validation PR-AUC", " (its test PR-AUC reported once, for that "
                                                                     "choice):", fmt) + ("" if fmt == "html" else "\n")
                  + bullets(best, fmt))
    changes = []
    for name in names:
        s = per[name]
        counts = (f", {s['n_test']} test examples ({s['n_test_positive']} minority)" if s.get("n_test") and
                  s.get("n_test_positive") else "")
        changes.append(f"{name} ({s.get('dataset') or s['task']}; train {s['train_ratio']:.1f}:1, test prevalence "
                       f"{100 * s['test_prevalence']:.1f} %{counts}, {s['epochs']} epochs): "
                       + "; ".join(s["changes"][m]["text"] for m, _ in CHANGES if m in s["changes"]) + ".")
    blocks.append(folded(f"Changes by {v['article']} against {v['baseline']} at every operating point (test split, "
                          f"paired over seeds, {level} intervals, not corrected: descriptive)", changes, fmt))
    return "\n\n".join(blocks)
