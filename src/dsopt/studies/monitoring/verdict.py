"""Chapter 07's verdict on "decay period 2 weeks -> 3 months" and "upkeep cost -65 %", from the runs.

Definitions (the article gives none):

* **decay period**: windows from the first window of the shift until the served accuracy (trailing
  mean over ``smooth`` windows) falls more than ``margin`` below the launch accuracy (held-out SST-2).
  A run whose accuracy never falls that far within the stream is *censored*: its value is a lower
  bound. "2 weeks -> 3 months" is a ratio of decay periods, 90 / 14 = 6.4, monitored over unmonitored.
* **upkeep**: what keeping the model serving costs, in labels requested and in fine-tuning compute
  (example-steps: examples x optimisation steps, deterministic; CPU seconds are reported beside it).
  "-65 %" compares the monitored loop with periodic retraining on the same label budget.

Every claim is judged with :mod:`dsopt.stats` over the stream seeds (paired: the arms share each
seed's stream). Censoring can only make a contradiction unsafe, so a "contradicted" decay verdict
with censored monitored runs is reported as inconclusive, with the reason.
"""
from __future__ import annotations

import math

from dsopt.stats import CONTRADICTED, INCONCLUSIVE, Claim, assess, paired

DECAY_RATIO = 90 / 14
DECAY_CLAIM = Claim.at_least(DECAY_RATIO, on="ratio", text="decay period 2 weeks -> 3 months (x6.4)")
UPKEEP_LABELS_CLAIM = Claim.at_most(-0.65, on="relative", text="upkeep -65 % (labels)")
UPKEEP_COMPUTE_CLAIM = Claim.at_most(-0.65, on="relative", text="upkeep -65 % (fine-tuning compute)")


def compute(summary: dict, *, decay_claim: Claim = DECAY_CLAIM, labels_claim: Claim = UPKEEP_LABELS_CLAIM,
            compute_claim: Claim = UPKEEP_COMPUTE_CLAIM, alpha: float = 0.05) -> dict:
    """Status and numbers per claim, from :func:`dsopt.studies.monitoring.measure.summarize` output."""
    ps = summary["per_seed"]
    out: dict = {"margin": summary["margin"], "smooth": summary["smooth"], "claims": {}, "context": {}}
    none, mon, per = ps.get("none"), ps.get("monitor"), ps.get("periodic")
    if none and mon:
        v = assess(paired(mon["decay"], none["decay"]), decay_claim, alpha=alpha)
        d = v.as_dict()
        observable = summary["n_windows"] - summary["change_window"]
        shortest = min(none["decay"]) if none["decay"] else math.nan
        d["max_measurable_ratio"] = observable / shortest if shortest else math.nan
        d["censored_monitored"] = int(sum(mon["censored"]))
        d["per_stream"] = [{"seed": s, "monitored": m, "unmonitored": u, "ratio": m / u if u else None,
                            "lower_bound": bool(c)}
                           for s, m, u, c in zip(mon["seeds"], mon["decay"], none["decay"], mon["censored"])]
        d["censored_unmonitored"] = int(sum(none["censored"]))
        if d["censored_unmonitored"]:
            d.update(status=INCONCLUSIVE, label="inconclusive",
                     reason=f"undefined: without monitoring the accuracy stayed within {100 * summary['margin']:g} points "
                            f"of launch in {d['censored_unmonitored']} of {len(none['decay'])} streams: no decay to stretch")
        elif d["status"] == CONTRADICTED and d["censored_monitored"]:
            d.update(status=INCONCLUSIVE, label="inconclusive",
                     reason=f"censored: in {d['censored_monitored']} streams the monitored model had not decayed when "
                            "the stream ended (its decay period is a lower bound)")
        out["claims"]["decay"] = d
        out["context"]["accuracy_monitor_vs_none"] = _diff(mon["acc_shift"], none["acc_shift"])
    if mon and per:
        for name, key, claim in (("upkeep_labels", "labels", labels_claim),
                                 ("upkeep_compute", "example_steps", compute_claim)):
            out["claims"][name] = assess(paired(mon[key], per[key]), claim, alpha=alpha).as_dict()
        out["context"]["accuracy_monitor_vs_periodic"] = _diff(mon["acc_shift"], per["acc_shift"])
    if per and none:
        out["context"]["accuracy_periodic_vs_none"] = _diff(per["acc_shift"], none["acc_shift"])
    return out


def _diff(t, b) -> dict:
    cmp = paired(t, b)
    iv = cmp.interval("difference")
    return {"point": cmp.point("difference"), "low": iv.low, "high": iv.high, "n": cmp.n,
            "method": iv.method}


def _num(x) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    return x if isinstance(x, str) else f"{x:.3g}"


def _pts(x: float) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:+.1f}"


def render(result: dict) -> str:
    """Markdown: each claim's status first, then the numbers; then the accuracy context."""
    lines = []
    names = {"decay": "Decay period", "upkeep_labels": "Upkeep (labels)", "upkeep_compute": "Upkeep (compute)"}
    for key, d in result["claims"].items():
        iv = d["interval"]
        est, lo, hi = _num(d["point"]), _num(iv.get("low")), _num(iv.get("high"))
        quantity = {"ratio": "ratio", "relative": "relative change", "difference": "difference"}.get(d["claim"]["on"], "")
        line = (f"- **{names.get(key, key)}: {d['label']}** — claim: {d['claim']['text']} ({d['claim']['range']}). "
                f"Measured {quantity} {est}, 95 % interval [{lo}, {hi}] over {d['n']} streams.")
        if d.get("reason"):
            line += f" {d['reason']}."
        if d.get("seeds_needed"):
            line += f" About {d['seeds_needed']} streams would decide it at this noise."
        if key == "decay" and d.get("per_stream"):
            ratios = ", ".join(("n/a" if p["ratio"] is None else f"{'>=' if p['lower_bound'] else ''}{p['ratio']:.2g}")
                               for p in d["per_stream"])
            line += f" Per stream, monitored / unmonitored decay period: {ratios}."
        if key == "decay" and d.get("max_measurable_ratio") == d.get("max_measurable_ratio"):
            line += (f" (This stream can show at most a x{d['max_measurable_ratio']:.1f} longer decay period; "
                     f"censored: {d['censored_monitored']} monitored, {d['censored_unmonitored']} unmonitored.)")
        lines.append(line)
    ctx = result["context"]
    words = {"accuracy_monitor_vs_none": "monitoring + loop vs no monitoring",
             "accuracy_monitor_vs_periodic": "monitoring + loop vs periodic retraining",
             "accuracy_periodic_vs_none": "periodic retraining vs no monitoring"}
    for key, label in words.items():
        if key in ctx:
            c = ctx[key]
            lines.append(f"- Accuracy from the shift on, {label}: {_pts(c['point'])} points "
                         f"(95 % interval {_pts(c['low'])} to {_pts(c['high'])}, {c['n']} streams).")
    return "\n".join(lines)
