"""The verdict on "-40 % compute, > 98 % accuracy kept", computed from the measured tables.

Inputs are what chapter 02 measured: the accuracy table over seeds (:func:`~dsopt.studies.attention_pruning.
measure.summarize`: every method on several independently fine-tuned models on validation, the cells chosen
there also on test), the
latency rows of the pruned model chosen on validation (every timed repeat), the cost model's attention
share and the article rule's measured accuracy.

Selection happens on validation only: the method and its largest fraction keeping ``kept_claim``'s share
of the *validation* accuracy. The test split is then read once, for that choice: the claim "> 98 % kept"
is judged on the test accuracies of those models against their unpruned test accuracies (paired by seed,
a ratio with a Fieller interval), and "-40 % compute" on the measured latency of the pruned copy against
the intact model (paired by repeat, Holm over batch x length settings), with the cost model's FLOPs cut
beside it.

Units: the accuracy comparison counts *seeds* (independently fine-tuned models), the latency comparison
timed *repeats*. An accuracy on n test examples moves in steps of 1/n: that is its resolution when n is
known (``n_test``; otherwise none is declared). Both claims are about financial text classification with a
BERT-class encoder; MiniLM on Financial PhraseBank is that setting at small scale, so both are testable here.

Rendering goes through :func:`dsopt.stats.render_verdicts` (one compact table per claim, details folded
beneath); ``fmt="text"`` prints no Markdown at all.
"""
from __future__ import annotations

from dsopt.stats import (CONTRADICTED, INCONCLUSIVE, SUPPORTED, Claim, Setting, Verdict, assess, assess_all, count,
                         format_interval, paired, render_verdicts)
from dsopt.studies.attention_pruning.measure import best_method, largest_fraction_kept
from dsopt.util.validation import ParameterError

#: What the article's numbers are about (../shared/notes/CLAIMS.md).
CLAIM_SETTING = Setting(text="financial text classification with a BERT-class encoder")
#: "> 98 % of the accuracy kept": pruned / unpruned test accuracy (ratio of means over seeds), at least 0.98.
KEPT_CLAIM = Claim.at_least(0.98, on="ratio", text="> 98 % of the accuracy kept", scale=100, unit=" %", digits=1,
                            setting=CLAIM_SETTING)
#: "40 % less compute": the pruned model's latency / the intact model's, minus 1, at most -40 %.
COMPUTE_CLAIM = Claim.at_most(-0.40, on="relative", text="40 % less compute", setting=CLAIM_SETTING)


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return _pct(lo) if round(100 * lo) == round(100 * hi) else f"{_pct(lo)} to {_pct(hi)}"


def _by_seed(row: dict, key: str) -> dict:
    return dict(zip(row["seeds"], row["per_seed"][key]))


def _kept(row: dict, resolution: float = 0.0) -> object:
    return paired(_by_seed(row, "test_accuracy"), _by_seed(row, "baseline_test_accuracy"),
                  name=f"{row['method']} {row['fraction']:g}", unit="seed", resolution=resolution)


def combine(statuses: list[str]) -> str:
    """A compound claim (all parts must hold): supported if every part is, contradicted if any part is."""
    if any(s == CONTRADICTED for s in statuses):
        return CONTRADICTED
    if statuses and all(s == SUPPORTED for s in statuses):
        return SUPPORTED
    return INCONCLUSIVE


def measured_setting(n_test: int | None = None) -> Setting:
    """The accuracy comparison's setting, in words (no field that could differ from the claim's)."""
    return Setting(text="MiniLM fine-tuned on Financial PhraseBank"
                        + (f", accuracy on {n_test} test examples" if n_test else ""))


def latency_setting(row: dict) -> Setting:
    """The latency comparison's setting, in words."""
    threads = row.get("threads")
    return Setting(text=f"MiniLM on Financial PhraseBank, latency on {row.get('device', 'cpu')}"
                        + (f" with {threads} thread{'s' if threads != 1 else ''}" if threads else ""))


def compute_verdict(table: list[dict], latency: list[dict], attention_share: dict, article: dict | None = None, *,
                    label: str = "best", kept_claim: Claim = KEPT_CLAIM, compute_claim: Claim = COMPUTE_CLAIM,
                    n_test: int | None = None, alpha: float = 0.05) -> dict:
    """Numbers and a status per claim (JSON-safe; each claim's ``Verdict.as_dict()``), from the measured tables.

    ``latency``: rows for the pruned model named ``label`` (the method chosen on validation at its largest
    fraction keeping ``kept_claim.low`` of the validation accuracy). ``attention_share``: {length: attention
    FLOPs / whole-model FLOPs}, the most any head pruning can remove. ``article``: {"accuracy", "rows_kept",
    "threshold"} of the literal rule (one model). ``n_test``: test examples behind each accuracy (resolution
    1/n_test; None: not known, no resolution declared). Intervals at level 1 - ``alpha``.
    """
    if not table:
        raise ParameterError("table", "the verdict needs a non-empty accuracy table (see summarize)")
    if kept_claim.on != "ratio" or kept_claim.low is None:
        raise ParameterError("kept_claim", "kept_claim must be a ratio claim with a lower end, e.g. "
                                           "Claim.at_least(0.98, on='ratio')")
    n_test = int(n_test) if n_test else None
    resolution = 1.0 / n_test if n_test else 0.0
    share = kept_claim.low
    per_method = largest_fraction_kept(table, share)
    best, f_best = best_method(table, share)
    at = {(r["method"], r["fraction"]): r for r in table}
    fractions = sorted({r["fraction"] for r in table})
    chosen = at[(best, f_best)] if f_best > 0 else at[(best, fractions[0])]
    kept = assess(_kept(chosen, resolution), kept_claim, alpha=alpha, measured=measured_setting(n_test))
    methods = {}
    for m, f in per_method.items():
        r = at.get((m, f))
        if r is None:
            methods[m] = {"fraction": 0.0}
            continue
        c = _kept(r, resolution)
        iv = c.interval("ratio", 1 - alpha)
        methods[m] = {"fraction": f, "heads_removed": r["heads_removed"], "val_kept": r["val_kept"],
                      "test_kept": c.point("ratio"), "test_kept_interval": iv.as_dict(),
                      "text": format_interval(iv, point=c.point("ratio"), scale=100, digits=1, unit=" %")}
    out = {
        "claims": {"kept": kept_claim.as_dict(), "compute": compute_claim.as_dict()}, "alpha": alpha,
        "n_seeds": chosen["n_seeds"], "n_test": n_test, "resolution": resolution, "baseline": {
            "val_accuracy": float(sum(chosen["per_seed"]["baseline_val_accuracy"]) / chosen["n_seeds"]),
            "test_accuracy": float(sum(chosen["per_seed"]["baseline_test_accuracy"]) / chosen["n_seeds"])},
        "chosen": {"method": best, "fraction": f_best, "kept_on_validation": f_best > 0,
                   "evaluated_fraction": chosen["fraction"], "heads_removed": chosen["heads_removed"],
                   "heads_total": chosen["heads_total"], "val_kept": chosen["val_kept"], "test_kept": chosen["kept"],
                   "test_accuracy": chosen["accuracy"], "test_accuracy_sd": chosen["accuracy_sd"]},
        "largest_fraction_kept_on_validation": per_method, "method_order": list(methods), "methods": methods,
        "kept": kept.as_dict(),
    }
    rows = [x for x in latency if x["label"] == label]
    if rows:
        verdicts = assess_all([(paired(x["pruned_times_ms"], x["baseline_times_ms"], unit="repeat"), compute_claim,
                                latency_setting(x)) for x in rows], alpha=alpha)
        out["compute"] = [{"batch_size": x["batch_size"], "length": x["length"], "flops_cut": x["flops_cut"],
                           "threads": x["threads"], "device": x["device"], **v.as_dict()}
                          for x, v in zip(rows, verdicts)]
        statuses = [v.status for v in verdicts]
        compute_status = (SUPPORTED if SUPPORTED in statuses
                          else CONTRADICTED if all(s == CONTRADICTED for s in statuses) else INCONCLUSIVE)
        budget = any(v.budget_limited for v in verdicts)
    else:
        out["compute"] = []
        compute_status, budget = INCONCLUSIVE, False
    out["compute_status"] = compute_status
    out["attention_share"] = {str(k): attention_share[k] for k in sorted(attention_share, key=int)}
    out["head_pruning_cap_below_claim"] = bool(attention_share) and max(attention_share.values()) < -compute_claim.high
    out["status"] = combine([kept.status, compute_status])
    budget = budget or kept.budget_limited
    out["label"] = "inconclusive at this budget" if out["status"] == INCONCLUSIVE and budget else out["status"]
    if article:
        out["article"] = dict(article)
    at_claim = [r for r in table if abs(r["fraction"] - (-compute_claim.high)) < 1e-9] if compute_claim.high else []
    out["at_claimed_fraction"] = {r["method"]: {"val_kept": r["val_kept"]} for r in at_claim}
    return out


def _setting_name(c: dict) -> str:
    return f"batch {c['batch_size']} x {c['length']} tokens"


def claim_verdicts(v: dict) -> dict[str, Verdict]:
    """``{"kept / test": Verdict, "compute / batch B x L tokens": Verdict, ...}`` of :func:`compute_verdict`'s
    result (a stored JSON too): one entry per claim and setting, the statuses of the result."""
    out = {"kept / test": Verdict.from_dict(v["kept"])}
    for c in v["compute"]:
        out[f"compute / {_setting_name(c)}"] = Verdict.from_dict(c)
    return out


def render_verdict(v: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
    """The compound claim and its status first; each part as a compact table (status, estimate with its interval
    in the claim's units, n and its unit; details folded beneath); then short context (cost model, the article's
    rule) and the per-method numbers folded. ``fmt``: "markdown" (notebooks), "html" or "text" (the terminal:
    no Markdown)."""
    import html as _html

    def bold(x: str) -> str:
        return {"markdown": f"**{x}**", "html": f"<b>{_html.escape(x)}</b>"}.get(fmt, x)

    kc, cc = v["claims"]["kept"], v["claims"]["compute"]
    ch = v["chosen"]
    label = v.get("label") or {"inconclusive": "inconclusive at this budget"}.get(v["status"], v["status"])
    seeds = count(v["n_seeds"], "seed")
    blocks = [provenance and {"markdown": f"_{provenance}_", "html": f"<p>{_html.escape(provenance)}</p>"}.get(fmt, provenance)]
    blocks.append(bold(f"Claim: '{cc['text']}, {kc['text']}' -- {label}") +
                  f" (both parts must hold; {seeds}: independently fine-tuned models).")
    choice = (f"{ch['method']}, the largest measured fraction keeping {_pct(kc['low'])} of the validation accuracy: "
              f"{ch['heads_removed']}/{ch['heads_total']} heads ({_pct(ch['fraction'])}), validation "
              f"{100 * ch['val_kept']:.1f} % kept" if ch["kept_on_validation"] else
              f"{ch['method']}, but no measured fraction keeps {_pct(kc['low'])} of the validation accuracy; judged at "
              f"the smallest fraction measured, {ch['heads_removed']}/{ch['heads_total']} heads "
              f"({_pct(ch['evaluated_fraction'])})")
    per = (f"; each accuracy on {v['n_test']} test examples (resolution 1/{v['n_test']})" if v.get("n_test") else "")
    blocks.append(bold("Accuracy kept") + f": test accuracy of the pruned model chosen on validation / the intact "
                  f"model's, paired by seed{per}. Chosen on validation: {choice}.")
    verdicts = claim_verdicts(v)
    blocks.append(render_verdicts([("kept / test", verdicts["kept / test"])], fmt=fmt).rstrip())
    if v["compute"]:
        first = v["compute"][0]
        blocks.append(bold("Compute") + f": latency of that pruned model / the intact one, minus 1, paired by repeat "
                      f"({first['device']})" + ("; Holm over the batch x length settings." if len(v["compute"]) > 1 else "."))
        blocks.append(render_verdicts([(_setting_name(c), verdicts[f"compute / {_setting_name(c)}"])
                                       for c in v["compute"]], fmt=fmt).rstrip())
    else:
        blocks.append(bold("Compute") + ": no pruned model was timed (nothing removed), so "
                      f"'{cc['text']}' was not measured.")
    context = []
    if v["compute"]:
        context.append("Cost model, FLOPs removed by the same heads: " + ", ".join(
            f"{_setting_name(c)} -{100 * c['flops_cut']:.1f} %" for c in v["compute"]) + ".")
    if v["attention_share"]:
        context.append(f"Attention is {_span(v['attention_share'].values())} of this model's FLOPs at lengths "
                       f"{', '.join(sorted(v['attention_share'], key=int))} tokens: removing every head cuts at most "
                       "that much" + (f", so head pruning alone cannot reach {_pct(-cc['high'])} less compute here."
                                      if v["head_pruning_cap_below_claim"] else "."))
    a = v.get("article")
    if a:
        context.append(f"The article's rule as written scores every head 1/L and, with threshold {a['threshold']:g}, "
                       f"kept {_pct(a['rows_kept'])} of attention rows on the test set (accuracy "
                       f"{100 * a['accuracy']:.1f} %, one model); it multiplies a mask into weights already computed, "
                       "so it removes no computation.")
    if context:
        blocks.append("\n".join(f"- {c}" for c in context))
    level = f"{100 * (1 - v['alpha']):g} %"
    title = (f"Per method: largest fraction keeping {_pct(kc['low'])} on validation, test accuracy kept there "
             f"(paired by seed, {level} Fieller interval, descriptive)")
    lines = []
    for m in v["method_order"]:  # the stored JSON sorts dict keys: keep the measured order
        x = v["methods"][m]
        lines.append(f"{m}: " + (f"{_pct(x['fraction'])} of heads, test kept {x['text']}" if x["fraction"] > 0
                                 else "no measured fraction"))
    if v["at_claimed_fraction"]:
        lines.append(f"With {_pct(-cc['high'])} of heads removed, validation accuracy kept: "
                     + ", ".join(f"{m} {100 * v['at_claimed_fraction'][m]['val_kept']:.1f} %"
                                 for m in v["method_order"] if m in v["at_claimed_fraction"]) + ".")
    if lines:
        if fmt == "text":
            blocks.append(f"{title}:\n" + "\n".join(f"    - {x}" for x in lines))
        elif fmt == "html":
            blocks.append(f"<details><summary>{_html.escape(title)}</summary><ul>"
                          + "".join(f"<li>{_html.escape(x)}</li>" for x in lines) + "</ul></details>")
        else:
            blocks.append("\n".join([f"<details><summary>{title}</summary>", ""] + [f"- {x}" for x in lines]
                                    + ["", "</details>"]))
    return "\n\n".join(b for b in blocks if b)
