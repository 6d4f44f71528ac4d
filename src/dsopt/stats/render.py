"""Text for numbers, intervals and verdicts: one line each, status first; one renderer for tables.

Rendering only formats what :mod:`dsopt.stats.claims` decided; it never decides anything itself, so
a chapter's ``compute`` result (numbers + status) and its Markdown cannot disagree.

- :func:`verdict_line`: one line per verdict, status first (``fmt="markdown"``: the status in bold;
  ``fmt="text"``: no Markdown at all).
- :func:`verdict_details`: the notes folded beneath a verdict (reason, setting, resolution,
  normality / permutation check, power, Holm).
- :func:`render_verdicts`: per claim a compact table (claim, setting claimed vs measured, status,
  estimate with interval, n and its unit) with the details folded beneath, in Markdown, HTML or
  plain terminal text, and one provenance line above all tables.

Counts always carry their unit ("5 repeats", "8 blocks"); a relative change or ratio is never printed
from fewer than MIN_SEEDS units or when it is undefined (the absolute change is printed instead).
"""
from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Iterable

from dsopt.stats.estimates import count
from dsopt.util.validation import check_choice

if TYPE_CHECKING:  # pragma: no cover
    from dsopt.stats.claims import Verdict
    from dsopt.stats.estimates import Interval
    from dsopt.stats.setting import Setting

__all__ = ["FORMATS", "bullets", "folded", "heading", "format_interval", "format_mean_sd", "format_number", "render_verdicts", "verdict_details",
           "verdict_line", "verdicts_markdown"]

FORMATS = ("markdown", "text", "html")


def format_number(x: float, *, scale: float = 1.0, digits: int = 3, unit: str = "", signed: bool = False) -> str:
    """``x * scale`` with ``digits`` decimals, a + when ``signed`` and positive, then ``unit``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return ("+inf" if x > 0 else "-inf") + unit
    v = x * scale
    if round(v, digits) == 0:
        v = 0.0  # no "-0.0"
    return f"{v:+.{digits}f}{unit}" if signed else f"{v:.{digits}f}{unit}"


def format_mean_sd(mean: float, sd: float | None, *, scale: float = 1.0, digits: int = 3, unit: str = "",
                   per: str = "seed") -> str:
    """``"93.0 +- 0.4"`` (mean +- sd over seeds); one seed (sd nan/None) reads ``"93.0 (1 seed, sd unknown)"``
    (``per="repeat"``: ``"(1 repeat, sd unknown)"``)."""
    m = format_number(mean, scale=scale, digits=digits)
    if sd is None or (isinstance(sd, float) and math.isnan(sd)):
        return f"{m}{unit} ({count(1, per)}, sd unknown)"
    return f"{m} +- {format_number(sd, scale=scale, digits=digits)}{unit}"


def _level(level: float) -> str:
    return f"{100 * level:.3g} %"


def format_interval(interval: "Interval", *, point: float | None = None, scale: float = 1.0, digits: int = 3,
                    unit: str = "", signed: bool = False, show_n: bool = True) -> str:
    """One line, e.g. ``"+3.1 points [+1.2, +5.0] (95 % paired t, 5 seeds)"`` (``show_n=False``: no count).

    An interval that cannot exist (one seed) reads "no interval from 1 seed"; an unbounded one
    (a ratio against a baseline not distinguishable from 0) reads "unbounded".
    """
    def num(x):
        return format_number(x, scale=scale, digits=digits, signed=signed)
    head = f"{num(point)} " if point is not None else ""
    seeds = count(interval.n, interval.unit)
    tail = f", {seeds}" if show_n else ""
    if not interval.defined:
        return " ".join(x for x in (head.strip(), unit.strip(), f"(no interval from {seeds})") if x)
    if not interval.bounded:
        return f"{head}{unit.strip()} (interval unbounded: {_level(interval.level)} {interval.method}{tail})"
    return f"{head}[{num(interval.low)}, {num(interval.high)}]{unit} ({_level(interval.level)} {interval.method}{tail})"


def _estimate(v: "Verdict", *, show_n: bool = True) -> str:
    c = v.claim
    if v.absolute is not None:  # no relative number: the absolute change instead
        return "absolute change " + format_interval(v.absolute, point=v.absolute_point, signed=True, show_n=show_n)
    return format_interval(v.interval, point=v.point, scale=c.scale, digits=c.digits, unit=c.unit, signed=c.signed,
                           show_n=show_n)


def _budget(v: "Verdict") -> str:
    """The power clause: "about 8 blocks give an 80 % chance of a decision" (or why no number is given)."""
    from dsopt.stats.claims import MAX_SEEDS, MIN_SEEDS
    from dsopt.stats.power import POWER

    if not v.budget_limited:
        return ""
    u = v.unit
    if v.n < 2:
        return f"one {u} shows no noise (it is unknown): run at least {count(MIN_SEEDS, u)}"
    if v.seeds_needed is not None:
        return f"about {count(v.seeds_needed, u)} give an {100 * POWER:.0f} % chance of a decision"
    return f"more than {count(MAX_SEEDS, u)} would be needed for an {100 * POWER:.0f} % chance of a decision"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _reason(v: "Verdict") -> str:
    r = v.reason
    for prefix in ("undefined: ", "design: "):
        if r.startswith(prefix):
            r = r[len(prefix):]
    return r


def _check_fmt(fmt: str) -> str:
    return check_choice("fmt", fmt, FORMATS)


def verdict_line(v: "Verdict", name: str = "", *, claim: bool = True, fmt: str = "markdown") -> str:
    """``**status** (name): 'claim' (range): measured estimate [interval] (...). Reason; power; correction.``

    One line, status first. ``claim=False`` leaves the claim out (for lists under a heading that already
    states it); ``fmt="text"`` prints the status without Markdown bold. The longer notes (resolution,
    normality / permutation check) are in :func:`verdict_details` / :func:`render_verdicts`.
    """
    _check_fmt(fmt)
    c = v.claim
    what = f" ({name})" if name else ""
    claim_text = f"'{c.text}'" + (f" ({c.describe()})" if c.text != c.describe() else "")
    notes = [n for n in (_reason(v), _budget(v), v.correction) if n]
    text = "; ".join(notes)
    claim_part = f" {claim_text}:" if claim else ""
    status = f"**{v.label}**" if fmt == "markdown" else f"<b>{html.escape(v.label)}</b>" if fmt == "html" else v.label
    line = f"{status}{what}:{claim_part} measured {_estimate(v)}. " + (_cap(text) + "." if text else "")
    return line.rstrip()


def verdicts_markdown(lines: Iterable[tuple[str, "Verdict"]], *, fmt: str = "markdown") -> str:
    """A bullet list of ``(name, verdict)`` lines, status first on each (``fmt="text"``: no bold)."""
    return "\n".join(f"- {verdict_line(v, name, fmt=fmt)}" for name, v in lines)


def _setting_text(v: "Verdict", measured: "Setting | None" = None) -> str | None:
    claimed = v.claim.setting
    meas = v.measured if v.measured is not None else measured
    if claimed is None and meas is None:
        return None
    return f"claimed: {claimed.describe() if claimed else 'any'}; measured: {meas.describe() if meas else 'not stated'}"


def verdict_details(v: "Verdict") -> list[str]:
    """The notes beneath a verdict, one sentence each: reason, resolution, small-sample check, power, Holm."""
    from dsopt.stats.claims import CONTRADICTED, MIN_SEEDS, SUPPORTED

    out = []
    reason = _reason(v)
    if reason:
        out.append(_cap(reason) + ".")
    u = v.unit
    if v.claim.on in ("relative", "ratio") and v.absolute is not None and v.n < MIN_SEEDS and "relative number" not in reason \
            and "ratio number" not in reason:
        out.append(f"No {v.claim.on} number is printed from fewer than {count(MIN_SEEDS, u)}: the absolute change instead.")
    if v.resolution > 0:
        out.append(f"Resolution {v.resolution:.4g} per value (in the values' units): a quantisation variance of "
                   "resolution^2/12 per value is added to the spread used for the interval and the test.")
    if v.equal_within_resolution and "equal within resolution" not in reason:
        out.append("The arms are equal within resolution (float tolerance included): no improvement can be supported.")
    if v.normality:
        out.append(_cap(v.normality) + f" ({count(v.n, u)}; too few for a permutation check).")
    if not math.isnan(v.p_permutation):
        how = f"exact over {2 ** v.n} sign patterns" if v.permutation_exact else "Monte Carlo sign patterns"
        head = f"Sign-flip permutation test of the decisive contrast ({how}): p = {v.p_permutation:.3g}"
        level = f"the {100 * (1 - v.alpha_used):.4g} % level"
        if v.status in (SUPPORTED, CONTRADICTED):
            if v.permutation_confirms:
                out.append(f"{head}, confirms the t decision at {level}.")
            else:
                floor = 2 / 2 ** v.n if v.permutation_exact else math.nan
                extra = (f" (the smallest p it can reach with {count(v.n, u)} is {floor:.3g})"
                         if floor > v.alpha_used else "")
                out.append(f"{head}: it does NOT confirm the t decision at {level}{extra}.")
        else:
            out.append(f"{head} (the t test did not decide either)." if v.p_permutation > v.alpha_used
                       else f"{head}: it would decide where the t test does not.")
    budget = _budget(v)
    if budget:
        if v.seeds_needed is not None and not math.isnan(v.decision_probability):
            budget += (f" (simulated probability {100 * v.decision_probability:.0f} % at {count(v.seeds_needed, u)}, "
                       f"counting the uncertainty of this {v.n}-{u} estimate)")
        out.append(_cap(budget) + ".")
    if v.correction:
        out.append(v.correction + ".")
    if not math.isnan(v.p_decisive):
        out.append(f"Decisive p-value {v.p_decisive:.3g}" + (" (Holm-adjusted)." if v.correction else "."))
    return out


def _claim_text(v: "Verdict") -> str:
    c = v.claim
    return c.text + (f" ({c.describe()})" if c.text != c.describe() else "")


def _row(name: str, v: "Verdict", measured, with_claim: bool, with_setting: bool) -> list[str]:
    row = [name or v.claim.text] + ([_claim_text(v)] if with_claim else [])
    if with_setting:
        row.append(_setting_text(v, measured) or "any")
    return row + [v.label, _estimate(v, show_n=False), count(v.n, v.unit)]


def _md_cell(x: str) -> str:
    return html.escape(x, quote=False).replace("|", "\\|").replace("\n", " ")


def render_verdicts(items: Iterable[tuple[str, "Verdict"]], *, fmt: str = "markdown",
                    measured: "Setting | None" = None, provenance: str | None = None) -> str:
    """Every ``(name, verdict)`` as one row of a compact table (what, claim, [setting claimed vs measured,]
    status, estimate with its interval in the claim's units, n and its unit), read in seconds; each row's
    details (reason, setting, resolution, normality/permutation, power, Holm) folded beneath the table.

    ``fmt``: "markdown" (a table, then one ``<details><summary>`` per row), "html" (the same as HTML) or
    "text" (an aligned plain table and indented notes: no Markdown, for the terminal). ``measured``: the setting
    measured, shown where a verdict does not carry its own (the setting column appears when any row has a
    claimed or measured setting). ``provenance``: a line from the caller (where the runs came from), printed once
    above the table.
    """
    _check_fmt(fmt)
    items = list(items)
    claims = {_claim_text(v) for _, v in items}
    settings = {_setting_text(v, measured) for _, v in items}
    with_claim, with_setting = len(claims) > 1, len(settings) > 1
    head = [""] + (["claim"] if with_claim else []) + (["setting"] if with_setting else []) + \
        ["status", "estimate [interval]", "n"]
    rows = [_row(name, v, measured, with_claim, with_setting) for name, v in items]
    status_col = head.index("status")
    notes = [(r[0], verdict_details(v)) for r, (_, v) in zip(rows, items)]
    blocks = []
    if provenance:
        blocks.append({"markdown": f"_{provenance}_", "html": f'<p class="provenance">{html.escape(provenance)}</p>',
                       "text": provenance}[fmt])
    common = ([f"claim: {next(iter(claims))}"] if items and not with_claim else []) + \
        ([f"setting: {next(iter(settings))}"] if items and not with_setting and next(iter(settings)) else [])
    if common:
        blocks.append({"markdown": "  \n".join(_md_cell(c) for c in common),
                       "html": "".join(f"<p>{html.escape(c)}</p>" for c in common), "text": "\n".join(common)}[fmt])
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            cells = [_md_cell(x) for x in r]
            cells[status_col] = f"**{cells[status_col]}**"
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
        for title, details in notes:
            if details:
                blocks.append("\n".join([f"<details><summary>details: {_md_cell(title)}</summary>", ""]
                                        + [f"- {_md_cell(d)}" for d in details] + ["", "</details>"]))
    elif fmt == "html":
        ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in r) + "</tr>" for r in rows)
        blocks.append(f"<table><tr>{ths}</tr>{trs}</table>")
        for title, details in notes:
            if details:
                lis = "".join(f"<li>{html.escape(d)}</li>" for d in details)
                blocks.append(f"<details><summary>details: {html.escape(title)}</summary><ul>{lis}</ul></details>")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
        lines += ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows]
        blocks.append("\n".join(lines))
        for title, details in notes:
            if details:
                blocks.append("\n".join([f"{title}:"] + [f"    - {d}" for d in details]))
    return "\n\n".join(blocks) + "\n"


def heading(title: str, rest: str = "", fmt: str = "markdown") -> str:
    """A paragraph led by a bold ``title`` (plain in the terminal): how chapters head a claim's table."""
    _check_fmt(fmt)
    if fmt == "markdown":
        return f"**{title}**{rest}"
    if fmt == "html":
        return f"<p><b>{html.escape(title)}</b>{html.escape(rest)}</p>"
    return f"{title}{rest}"


def bullets(lines: list[str], fmt: str = "markdown", indent: str = "") -> str:
    """A bullet list (``<ul>`` in HTML)."""
    if fmt == "html":
        return "<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>"
    return "\n".join(f"{indent}- {x}" for x in lines)


def folded(summary: str, lines: list[str], fmt: str = "markdown") -> str:
    """Longer notes beneath a verdict: ``<details>`` in Markdown and HTML, an indented list under a plain line in
    the terminal."""
    _check_fmt(fmt)
    if fmt == "markdown":
        return "\n".join([f"<details><summary>{html.escape(summary, quote=False)}</summary>", "",
                          bullets(lines, fmt), "", "</details>"])
    if fmt == "html":
        return f"<details><summary>{html.escape(summary)}</summary>{bullets(lines, fmt)}</details>"
    return f"{summary}:\n" + bullets(lines, fmt, indent="    ")
