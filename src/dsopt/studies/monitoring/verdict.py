"""Chapter 07's verdict on "decay period 2 weeks -> 3 months" and "upkeep cost -65 %", from the runs.

Definitions (the article gives none):

* **decay period**: windows from the first window of the shift until the served accuracy (trailing
  mean over ``smooth`` windows) falls more than ``margin`` below the launch accuracy (held-out SST-2).
  A run whose accuracy never falls that far within the stream is *censored*: its value is a lower
  bound. "2 weeks -> 3 months" is a ratio of decay periods, 90 / 14 = 6.4, monitored over unmonitored.
  A stream of W windows after the shift can show a ratio of at most W / (the shortest unmonitored decay
  period): a claim beyond that is *not decidable by this design* (``reachable``), whatever the seeds.
* **upkeep**: what keeping the model serving costs. The claim's measure is the labels requested (the
  human cost of the auto-label -> validate -> fine-tune loop); fine-tuning compute (example-steps:
  examples x optimisation steps, deterministic; CPU seconds beside it) follows the labels and is shown as
  context, never judged a second time on the same numbers. "-65 %" compares the monitored loop with
  periodic retraining on the same label budget.

Every claim is judged with :mod:`dsopt.stats` over the stream orders (paired: the arms share each
stream order; unit "stream order"); decay periods, labels and example-steps are whole numbers
(resolution 1). Censoring can only make a contradiction unsafe, so a "contradicted" decay verdict with
censored monitored runs is reported as inconclusive, with the reason. The article's numbers are about a
production model over months; what is measured is a replayed drift stream (both settings are stated with
every verdict).

Rendering goes through :func:`dsopt.stats.render_verdicts` (one compact table per claim, details folded
beneath); ``fmt="text"`` prints no Markdown at all.
"""
from __future__ import annotations

import html
import math
from dataclasses import replace

from dsopt.stats import (CONTRADICTED, INCONCLUSIVE, Claim, Interval, Setting, Verdict, assess, count, format_interval,
                         paired, render_verdicts)

#: What the article's numbers are about (../shared/notes/CLAIMS.md).
CLAIM_SETTING = Setting(text="a production model over months")
DECAY_RATIO = 90 / 14
DECAY_CLAIM = Claim.at_least(DECAY_RATIO, on="ratio", text="decay period 2 weeks -> 3 months (x6.4)",
                             setting=CLAIM_SETTING)
UPKEEP_CLAIM = Claim.at_most(-0.65, on="relative", text="upkeep cost -65 % (labels requested)", setting=CLAIM_SETTING)
UNIT = "stream order"
#: Decay periods (windows), labels and example-steps are whole numbers.
WHOLE = 1.0
NAMES = {"decay": "decay period", "upkeep": "upkeep (labels)"}


def measured_setting(summary: dict) -> Setting:
    """What was measured, in words (no field that could differ from the claim's: the months-scale numbers are
    judged by what this design can show, ``reachable``)."""
    n, change = summary.get("n_windows"), summary.get("change_window")
    where = f" of {n} windows, the shift from window {change} on" if n is not None and change is not None else ""
    return Setting(text=f"a replayed drift stream{where} (SST-2 reviews, then financial news)")


def compute(summary: dict, *, decay_claim: Claim = DECAY_CLAIM, upkeep_claim: Claim = UPKEEP_CLAIM,
            alpha: float = 0.05) -> dict:
    """Status and numbers per claim (each claim's ``Verdict.as_dict()``, JSON-safe), from
    :func:`dsopt.studies.monitoring.measure.summarize` output; intervals at level 1 - ``alpha``."""
    ps = summary["per_seed"]
    measured = measured_setting(summary)
    out: dict = {"margin": summary["margin"], "smooth": summary["smooth"], "alpha": alpha, "claims": {},
                 "context": {}}
    none, mon, per = ps.get("none"), ps.get("monitor"), ps.get("periodic")
    if none and mon:
        observable = summary["n_windows"] - summary["change_window"]
        shortest = min(none["decay"]) if none["decay"] else math.nan
        reach = observable / shortest if shortest else math.nan
        claim = decay_claim
        if math.isfinite(reach) and claim.reachable is None:
            claim = replace(claim, reachable=(None, reach))
        v = assess(paired(mon["decay"], none["decay"], unit=UNIT, resolution=WHOLE), claim, alpha=alpha,
                   measured=measured)
        censored_unmonitored, censored_monitored = int(sum(none["censored"])), int(sum(mon["censored"]))
        if censored_unmonitored:
            v.status, v.more_units_help, v.seeds_needed = INCONCLUSIVE, False, None
            v.decision_probability = math.nan
            v.reason = (f"undefined: without monitoring the accuracy stayed within {100 * summary['margin']:g} points "
                        f"of launch in {censored_unmonitored} of {count(len(none['decay']), UNIT)}: no decay to stretch")
        elif v.status == CONTRADICTED and censored_monitored:
            v.status, v.more_units_help, v.seeds_needed = INCONCLUSIVE, False, None
            v.decision_probability = math.nan
            v.reason = (f"censored: in {count(censored_monitored, UNIT)} the monitored model had not decayed when the "
                        "stream ended (its decay period is a lower bound): a longer stream would decide, not more "
                        "stream orders")
        d = v.as_dict()
        d["max_measurable_ratio"] = None if not math.isfinite(reach) else reach
        d["observable_windows"] = observable
        d["censored_monitored"], d["censored_unmonitored"] = censored_monitored, censored_unmonitored
        d["per_stream"] = [{"seed": s, "monitored": m, "unmonitored": u, "ratio": m / u if u else None,
                            "lower_bound": bool(c)}
                           for s, m, u, c in zip(mon["seeds"], mon["decay"], none["decay"], mon["censored"])]
        out["claims"]["decay"] = d
        out["context"]["accuracy_monitor_vs_none"] = _diff(mon["acc_shift"], none["acc_shift"], alpha)
    if mon and per:
        labels = paired(mon["labels"], per["labels"], unit=UNIT, resolution=WHOLE)
        out["claims"]["upkeep"] = assess(labels, upkeep_claim, alpha=alpha, measured=measured).as_dict()
        steps = paired(mon["example_steps"], per["example_steps"], unit=UNIT, resolution=WHOLE)
        out["context"]["upkeep_compute"] = _relative(steps, labels, alpha)
        out["context"]["accuracy_monitor_vs_periodic"] = _diff(mon["acc_shift"], per["acc_shift"], alpha)
    if per and none:
        out["context"]["accuracy_periodic_vs_none"] = _diff(per["acc_shift"], none["acc_shift"], alpha)
    return out


def _diff(t, b, alpha: float) -> dict:
    """Context (no claim): the paired accuracy difference with its interval at level 1 - alpha."""
    cmp = paired(t, b, unit=UNIT)
    iv = cmp.interval("difference", 1 - alpha)
    return {"point": cmp.point("difference"), "interval": iv.as_dict(), "n": cmp.n, "unit": UNIT}


def _relative(steps, labels, alpha: float) -> dict:
    """Context: fine-tuning compute's relative change, and whether it is the labels' own (the same per stream)."""
    iv = steps.interval("relative", 1 - alpha)
    und = steps.undefined("relative", 1 - alpha)
    t, b = steps.treatment, steps.baseline
    lt, lb = labels.treatment, labels.baseline
    same = bool(len(t) == len(lt) and all(
        (x == 0 and y == 0 and p == 0 and q == 0) or (y and q and abs(x / y - p / q) <= 1e-9 * max(1.0, abs(p / q)))
        for x, y, p, q in zip(t, b, lt, lb)))
    return {"point": None if und else steps.point("relative"), "interval": iv.as_dict(), "undefined": und,
            "n": steps.n, "unit": UNIT, "same_as_labels": same}


def claim_verdicts(verdict: dict) -> dict[str, Verdict]:
    """``{"decay": Verdict, "upkeep": Verdict}`` of :func:`compute`'s result (a stored JSON too): the statuses
    of the result, one entry per claim."""
    return {name: Verdict.from_dict(d) for name, d in verdict["claims"].items()}


def _interval(d: dict) -> Interval:
    return Interval.from_dict(d["interval"])


def render(result: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
    """Each claim as a compact table (status, estimate with its interval in the claim's units, n stream orders;
    details folded beneath), then short context: fine-tuning compute, per-stream ratios, accuracy. ``fmt``:
    "markdown" (notebooks), "html" or "text" (the terminal: no Markdown)."""
    def bold(x: str) -> str:
        return {"markdown": f"**{x}**", "html": f"<b>{html.escape(x)}</b>"}.get(fmt, x)

    def folded(title: str, lines: list[str]) -> str:
        if fmt == "text":
            return f"{title}:\n" + "\n".join(f"    - {x}" for x in lines)
        if fmt == "html":
            return (f"<details><summary>{html.escape(title)}</summary><ul>"
                    + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul></details>")
        return "\n".join([f"<details><summary>{title}</summary>", ""] + [f"- {x}" for x in lines] + ["", "</details>"])

    verdicts = claim_verdicts(result)
    blocks = [provenance and {"markdown": f"_{provenance}_", "html": f"<p>{html.escape(provenance)}</p>"}.get(
        fmt, provenance)]
    if "decay" in verdicts:
        d = result["claims"]["decay"]
        blocks.append(bold("Decay period") + f": windows from the shift until the served accuracy (trailing mean over "
                      f"{result['smooth']} window{'s' if result['smooth'] != 1 else ''}) falls more than {100 * result['margin']:g} points below launch; "
                      "monitored + loop / no monitoring, paired by stream order.")
        blocks.append(render_verdicts([(NAMES["decay"], verdicts["decay"])], fmt=fmt).rstrip())
        lines = []
        if d.get("max_measurable_ratio") is not None:
            lines.append(f"This stream has {d['observable_windows']} windows after the shift: it can show a decay period "
                         f"at most x{d['max_measurable_ratio']:.1f} the shortest unmonitored one "
                         f"(the claim needs x{DECAY_RATIO:.1f}).")
        lines.append(f"Censored (never decayed within the stream, a lower bound): {count(d['censored_monitored'], UNIT)} "
                     f"monitored, {count(d['censored_unmonitored'], UNIT)} unmonitored.")
        if d.get("per_stream"):
            lines.append("Per stream order, monitored / unmonitored decay period (windows): " + ", ".join(
                f"{p['monitored']}/{p['unmonitored']}"
                + ("" if p["ratio"] is None else f" = {'>=' if p['lower_bound'] else ''}x{p['ratio']:.1f}")
                for p in d["per_stream"]) + ".")
        blocks.append(folded("Decay period: reach of this stream, censoring, per stream order", lines))
    if "upkeep" in verdicts:
        blocks.append(bold("Upkeep") + ": labels requested by the monitored loop / by periodic retraining on the same "
                      "label budget, minus 1, paired by stream order.")
        blocks.append(render_verdicts([(NAMES["upkeep"], verdicts["upkeep"])], fmt=fmt).rstrip())
    ctx = result["context"]
    context = []
    c = ctx.get("upkeep_compute")
    if c:
        iv = Interval.from_dict(c["interval"])
        num = ("undefined (" + c["undefined"] + ")" if c.get("undefined")
               else format_interval(iv, point=c["point"], scale=100, digits=0, unit=" %", signed=True))
        context.append("Fine-tuning compute (example-steps), monitored vs periodic, relative change: " + num + "; "
                       + ("proportional to the labels in every stream order, so the same measurement: judged once, as labels, "
                          "above." if c.get("same_as_labels") else
                          "context only: the claim is judged on the labels."))
    words = {"accuracy_monitor_vs_none": "monitoring + loop vs no monitoring",
             "accuracy_monitor_vs_periodic": "monitoring + loop vs periodic retraining",
             "accuracy_periodic_vs_none": "periodic retraining vs no monitoring"}
    acc = [f"{label}: " + format_interval(_interval(ctx[key]), point=ctx[key]["point"], scale=100, digits=1,
                                          unit=" points", signed=True)
           for key, label in words.items() if key in ctx]
    if context:
        blocks.append("\n".join(f"- {x}" for x in context))
    if acc:
        blocks.append(folded("Accuracy from the shift on (context, not a claim): paired differences", acc))
    return "\n\n".join(b for b in blocks if b)
