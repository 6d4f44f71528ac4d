"""Chapter 01's verdict: the article's restarts vs the baseline schedule, paired over seeds, per claim.

Applied to the finished comparison table (:func:`dsopt.studies.lr_restarts.summarize`); it never computes a
run, so its code is not part of any run's fingerprint (editing it stales no stored run).
"""
from __future__ import annotations

from dsopt.lr import restart_positions
from dsopt.stats import Claim, Setting, Verdict, assess_all, format_mean_sd, paired, render_verdicts
from dsopt.util.validation import ParameterError, check_number

#: What the article's numbers are about (../shared/notes/CLAIMS.md): "NLP tasks", AdamW lr 1e-3, model and data
#: unnamed. Nothing in it rules a small real task out, so the schedule itself is testable here.
CLAIM_SETTING = Setting(text="'NLP tasks', AdamW lr 1e-3, model and data unnamed")
#: "Converges 30 % faster": relative change in epochs to 95 % of the best validation accuracy, at most -30 %.
SPEED_CLAIM = Claim.at_most(-0.30, on="relative", text="converges 30 % faster", setting=CLAIM_SETTING)
#: "+2 to +5 points": the change in final test accuracy, between +2 and +5 points (both ends checked).
ACCURACY_CLAIM = Claim.between(0.02, 0.05, text="+2 to +5 points of accuracy", scale=100, unit=" points", digits=1,
                               setting=CLAIM_SETTING)
#: Whole epochs: the resolution of "epochs to 95 %".
EPOCH = 1.0


def _arm(by: dict[str, dict], task: str, *, label: str | None = None, part: str | None = None) -> dict:
    found = [r for name, r in by.items() if name == label or (part is not None and part in name)]
    if len(found) != 1:
        want = repr(label) if label is not None else f"a label containing {part!r}"
        raise ParameterError("table", f"the verdict needs exactly one schedule {want} for task {task!r}; "
                                      f"the table has: {', '.join(by)}")
    return found[0]


def _by_seed(row: dict, metric: str) -> dict:
    return dict(zip(row["seeds"], row["per_seed"][metric]))


def compute_verdict(rows: list[dict], *, epochs: int, article: tuple[int, int] = (5, 2), baseline: str = "constant",
                    article_label_part: str = "(article)", speed_claim: Claim = SPEED_CLAIM,
                    accuracy_claim: Claim = ACCURACY_CLAIM, alpha: float = 0.05) -> dict:
    """Numbers and a status per claim, from the table of :func:`summarize` (JSON-safe).

    Per task, the article's restarts are paired seed by seed with the ``baseline`` schedule: epochs to
    95 % (``speed_claim``, relative change) and final test accuracy (``accuracy_claim``, difference). The
    tasks form one family per claim (Holm). The best schedule per task is chosen on the mean final
    validation accuracy, and its test accuracy is reported once, for that choice.
    """
    epochs = check_number("epochs", epochs, low=1, integer=True)
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    if not tasks:
        raise ParameterError("rows", "the verdict needs a non-empty table (see summarize)")
    pairs, per_task, measured = {}, {}, {}
    for task in tasks:
        by = {r["schedule"]: r for r in rows if r["task"] == task}
        art = _arm(by, task, part=article_label_part)
        base = _arm(by, task, label=baseline)
        n_test = art.get("n_test")  # an accuracy on n examples moves in steps of 1/n (absent in older tables)
        pairs[task] = (paired(_by_seed(art, "epochs_to_95"), _by_seed(base, "epochs_to_95"), name=task,
                              resolution=EPOCH),
                       paired(_by_seed(art, "test_acc"), _by_seed(base, "test_acc"), name=task,
                              resolution=1.0 / n_test if n_test else 0.0))
        measured[task] = Setting(dataset=task, text=f"{task}, AdamW, {epochs} epochs"
                                                    + (f", {n_test} test examples" if n_test else ""))
        best = max(by.values(), key=lambda r: r["val_acc_final"])
        per_task[task] = {
            "article": art["schedule"], "baseline": base["schedule"], "n_seeds": pairs[task][0].n,
            "epochs_to_95": {"article": art["epochs_to_95"], "baseline": base["epochs_to_95"]},
            "censored": {"article": art["n_seeds"] - art["reached_95"], "baseline": base["n_seeds"] - base["reached_95"]},
            "test_acc": {"article": art["test_acc"], "baseline": base["test_acc"]},
            "best_on_validation": {"schedule": best["schedule"], "val_acc_final": best["val_acc_final"],
                                   "test_acc": best["test_acc"], "test_acc_sd": best["test_acc_sd"]},
        }
    speed = assess_all([(pairs[t][0], speed_claim, measured[t]) for t in tasks], alpha=alpha)
    accuracy = assess_all([(pairs[t][1], accuracy_claim, measured[t]) for t in tasks], alpha=alpha)
    for t, vs, va in zip(tasks, speed, accuracy):
        per_task[t]["speed"], per_task[t]["accuracy"] = vs.as_dict(), va.as_dict()
    restarts = restart_positions({"base_lr": 1e-3, "T_0": article[0], "T_mult": article[1]}, epochs + 1e-9)
    return {"claims": {"speed": speed_claim.as_dict(), "accuracy": accuracy_claim.as_dict()}, "alpha": alpha,
            "epochs": epochs, "article": list(article), "baseline": baseline, "tasks": tasks, "per_task": per_task,
            "restarts_in_budget": restarts}


def claim_verdicts(v: dict) -> dict[str, Verdict]:
    """``{"speed / TASK": Verdict, "accuracy / TASK": Verdict}`` of :func:`compute_verdict`'s result (stored JSON too)."""
    return {f"{key} / {task}": Verdict.from_dict(v["per_task"][task][key])
            for key in ("speed", "accuracy") for task in v["tasks"]}


#: What each claim's number is, in words (shown above its table).
MEASURES = {
    "speed": "epochs until the validation accuracy first reaches 95 % of the best any schedule reached with that "
             "seed (whole epochs; a seed that never reaches it counts as budget + 1, a lower bound)",
    "accuracy": "final test accuracy",
}


def render_verdict(v: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
    """Each claim as one compact table (a row per task: status, estimate and interval, seeds), details folded
    beneath; then the schedule chosen on validation and where the article's restarts fall in the budget.
    ``fmt``: "markdown" (notebooks), "html" or "text" (the terminal: no Markdown)."""
    md = fmt != "text"
    blocks = [provenance and (f"_{provenance}_" if md else provenance)]
    for key in ("speed", "accuracy"):
        c = v["claims"][key]
        what = f"Claim: '{c['text']}' ({c['range']})"
        blocks.append((f"**{what}**" if md else what) + f": {MEASURES[key]}; the article's restarts vs a "
                      f"{v['baseline']} learning rate, paired over seeds.")
        items = [(task, Verdict.from_dict(v["per_task"][task][key])) for task in v["tasks"]]
        blocks.append(render_verdicts(items, fmt=fmt).rstrip())
    best = "; ".join(
        f"{task}: {b['schedule']} (validation {100 * b['val_acc_final']:.1f} %, test "
        f"{format_mean_sd(b['test_acc'], b['test_acc_sd'], scale=100, digits=1)} %)"
        for task in v["tasks"] for b in [v["per_task"][task]["best_on_validation"]])
    head = "Best schedule, chosen on validation"
    blocks.append((f"**{head}**" if md else head) + f" (its test accuracy reported once, for that choice): {best}.")
    restarts, epochs = v["restarts_in_budget"], v["epochs"]
    a0, am = v["article"]
    mid = restarts and restarts[-1] < epochs
    blocks.append(
        f"With T_0={a0}, T_mult={am} stepped per epoch the restarts fall at epochs "
        f"{', '.join(f'{r:g}' for r in restarts) or 'none'} inside a {epochs}-epoch budget"
        + (f", so training ends mid-cycle, {epochs - restarts[-1]:g} epochs after the last restart." if mid else "."))
    return "\n\n".join(b for b in blocks if b)
