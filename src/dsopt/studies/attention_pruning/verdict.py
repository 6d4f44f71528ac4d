"""A plain verdict on "-40 % compute, > 98 % accuracy kept", computed from the measured tables.

Inputs are what chapter 02 measured: the accuracy table (:func:`dsopt.studies.attention_pruning.measure.summarize`), the
latency rows of the pruned model the verdict is about (:func:`~dsopt.studies.attention_pruning.measure.latency_rows`),
the cost model's attention share and the article rule's measured accuracy. Every number in the text
comes from those inputs; the claim holds only if one measured pruned model keeps >= ``claim_kept``
of the accuracy while its measured latency AND its FLOPs both drop by >= ``claim_compute``.
"""
from __future__ import annotations

from dsopt.studies.attention_pruning.measure import best_method, largest_fraction_kept


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _signed_span(values) -> str:
    """Signed percentages, e.g. "+2 % to -12 %" (minus = less)."""
    def one(x):
        return f"{100 * x:+.0f} %"
    lo, hi = max(values), min(values)
    return one(lo) if round(100 * lo) == round(100 * hi) else f"{one(lo)} to {one(hi)}"


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return _pct(lo) if round(100 * lo) == round(100 * hi) else f"{_pct(lo)} to {_pct(hi)}"


def verdict(table: list[dict], baseline_accuracy: float, latency: list[dict], attention_share: dict[int, float],
            article: dict | None = None, *, label: str = "best", claim_compute: float = 0.40,
            claim_kept: float = 0.98) -> dict:
    """Verdict text plus the numbers it rests on.

    ``latency``: rows for the pruned model named ``label`` (the best method at its largest fraction
    keeping ``claim_kept``). ``attention_share``: {length: attention FLOPs / whole-model FLOPs}, the
    most any head pruning can remove. ``article``: {"accuracy", "rows_kept"} of the literal rule.
    """
    per_method = largest_fraction_kept(table, claim_kept)
    kept_at = {(r["method"], r["fraction"]): r for r in table}
    best, f_best = best_method(table, claim_kept)
    rows = [r for r in latency if r["label"] == label]
    lines = [f"Unpruned model: test accuracy {100 * baseline_accuracy:.1f} %; keeping {_pct(claim_kept)} of it means "
             f">= {100 * claim_kept * baseline_accuracy:.1f} %."]
    holds = False
    out = {"largest_fraction_kept": per_method, "best_method": best, "best_fraction": f_best}
    if f_best > 0:
        r = kept_at[(best, f_best)]
        lines.append(f"Best method: {best}, which removes {r['heads_removed']}/{r['heads_total']} heads "
                     f"({_pct(f_best)}) at test accuracy {100 * r['accuracy']:.1f} % ({100 * r['kept']:.1f} % kept).")
        if rows:
            flops = [x["flops_cut"] for x in rows]
            lat = [x["latency_cut"] for x in rows]
            conf = sorted({(x["batch_size"], x["length"]) for x in rows})
            lines.append(f"That cuts whole-model FLOPs by {_span(flops)} (cost model); measured latency changed by "
                         f"{_signed_span([-x for x in lat])} (batch x length {', '.join(f'{b}x{t}' for b, t in conf)}; "
                         f"{rows[0]['threads']} thread(s), {rows[0]['device']}).")
            holds = any(x["flops_cut"] >= claim_compute and x["latency_cut"] >= claim_compute for x in rows)
            out.update(flops_cut=flops, latency_cut=lat)
    else:
        lines.append(f"No method keeps {_pct(claim_kept)} of the accuracy at any measured fraction of heads removed.")
    lines.append("Largest fraction of heads removed with >= " + _pct(claim_kept) + " kept, per method: "
                 + ", ".join(f"{m} {_pct(f)}" for m, f in per_method.items()) + ".")
    at_claim = [r for r in table if abs(r["fraction"] - claim_compute) < 1e-9]
    if at_claim:
        lines.append(f"With {_pct(claim_compute)} of heads removed, accuracy kept: "
                     + ", ".join(f"{r['method']} {100 * r['kept']:.1f} %" for r in at_claim) + ".")
    if attention_share:
        lines.append(f"Attention is {_span(attention_share.values())} of this model's FLOPs at lengths "
                     f"{', '.join(str(t) for t in sorted(attention_share))}: removing every head would cut at most "
                     f"that much" + (", so head pruning alone cannot reach "
                                     f"{_pct(claim_compute)} less compute here." if max(attention_share.values()) < claim_compute else "."))
    if article:
        lines.append(f"The article's rule as written scores every head 1/L and, with threshold {article['threshold']:g}, "
                     f"kept {_pct(article['rows_kept'])} of attention rows on the test set (accuracy "
                     f"{100 * article['accuracy']:.1f} %); it multiplies a mask into weights already computed, so it "
                     "removes no computation.")
    lines.append(f"'-{_pct(claim_compute)} compute, > {_pct(claim_kept)} accuracy kept': "
                 + ("holds" if holds else "not supported") + " by these measurements.")
    out.update(holds=holds, text="\n".join(lines))
    return out
