"""Structured records of the benchmarks' targets, with an interval and a status for each.

Every benchmark in ``benchmarks/`` measures one or more targets as a ratio against a baseline measured in
the same run ("Trainer / plain <= 1.05"). Besides its human text it calls :func:`record` once per target:

    import report
    report.record("trainer_overhead", "Trainer / plain loop, wall time",
                  baseline=(mp, "s", "plain loop, median"), measured=(mt, "s", "Trainer, median"),
                  ratio=mt / mp, target="<= 1.05", repeats=[b / a for a, b in zip(tp, tt)])

which prints one more line (the interval and the status) and, when the environment variable
``DSOPT_BENCH_RESULTS`` names a file, appends the record to it as one JSON line (``run_all.py`` reads them).

The interval: a 95 % Student t interval for the mean of the per-repeat *paired* ratios (repeat i of the
measured arm over repeat i of the baseline arm; the benchmarks already interleave the two arms, so a load
change during the run hits both halves of a pair alike and mostly cancels in their ratio). Why t and not a
bootstrap of medians: the benchmarks run 3 to 7 repeats, and with so few values a bootstrap of the median
takes only a handful of distinct values (with 3 repeats its percentile interval is essentially min..max at
an unknown coverage), while the t interval has its stated coverage for roughly normal ratios, which paired
ratios of timings close to 1 are; an outlier repeat widens it, which errs towards "not distinguishable"
rather than towards a wrong verdict. Note that the printed point (``ratio``) is what the benchmark has
always printed (usually the ratio of the two medians); the interval is about the mean paired ratio, so on a
noisy machine the point can sit near an edge of the interval. Where a benchmark times its baseline only
once (lr_schedule's torch stepping), the per-repeat ratios share that one baseline time and the interval
covers only the measured side's noise; the record's ``note`` says so.

Status, from the interval against the target's bound:

* ``met``: the whole interval is on the right side of the bound;
* ``not met``: the whole interval is on the wrong side;
* ``not distinguishable at this noise``: the interval straddles the bound;
* with a single repeat there is no interval: the point decides, and the status says
  ``met (1 repeat: no interval)`` / ``not met (1 repeat: no interval)``.

A target is a comparison and a bound: ``"<= 1.05"``, ``"< 50"``, ``">= 10"``, ``"> 1"``. A target with no
baseline (an absolute budget such as "panel latency < 50 ms") is recorded with ``baseline=None``; then
``ratio`` holds the measured value itself, in the measured unit.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import sys
from typing import Sequence

ENV = "DSOPT_BENCH_RESULTS"
MET, NOT_MET, UNDECIDED = "met", "not met", "not distinguishable at this noise"
ONE = " (1 repeat: no interval)"
LEVEL = 0.95

# two-sided 95 % quantiles of Student's t, df = 1..30 (beyond 30: a normal approximation, see _t975)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def _t975(df: int) -> float:
    if df < 1:
        raise ValueError("df must be >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964  # Cornish-Fisher expansion of t around z: exact to 3 decimals for df > 30
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def parse_target(target: str) -> tuple[str, float]:
    """``"<= 1.05"`` -> ``("<=", 1.05)``; the comparison is one of <=, <, >=, >."""
    s = target.strip()
    for op in ("<=", ">=", "<", ">"):
        if s.startswith(op):
            return op, float(s[len(op):].strip().rstrip("x").strip())
    raise ValueError(f"target {target!r}: expected '<= B', '< B', '>= B' or '> B'")


def _ok(value: float, op: str, bound: float) -> bool:
    return {"<=": value <= bound, "<": value < bound, ">=": value >= bound, ">": value > bound}[op]


def interval(repeats: Sequence[float]) -> tuple[float, float] | None:
    """95 % t interval for the mean of the per-repeat ratios; None with fewer than 2 repeats."""
    xs = [float(x) for x in repeats]
    if len(xs) < 2:
        return None
    m = statistics.fmean(xs)
    half = _t975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return m - half, m + half


def status(ratio: float, target: str, repeats: Sequence[float] | None = None) -> str:
    """``met`` / ``not met`` / ``not distinguishable at this noise`` (see the module's docstring)."""
    op, bound = parse_target(target)
    ci = interval(repeats or [])
    if ci is None:
        return (MET if _ok(ratio, op, bound) else NOT_MET) + ONE
    lo, hi = ci
    if _ok(lo, op, bound) and _ok(hi, op, bound):
        return MET
    if not _ok(lo, op, bound) and not _ok(hi, op, bound):
        return NOT_MET
    return UNDECIDED


def _side(x) -> dict | None:
    if x is None:
        return None
    if isinstance(x, dict):
        return {"value": float(x["value"]), "unit": x.get("unit", ""), "what": x.get("what", "")}
    value, unit, what = x
    return {"value": float(value), "unit": unit, "what": what}


def make_record(benchmark: str, name: str, *, baseline, measured, ratio: float, target: str,
                repeats: Sequence[float] | None = None, note: str = "") -> dict:
    """The record as a dict (no printing, no writing). ``baseline``/``measured``: (value, unit, what)."""
    reps = [float(r) for r in repeats] if repeats is not None else []
    ci = interval(reps)
    op, bound = parse_target(target)
    return {"benchmark": benchmark, "name": name, "baseline": _side(baseline), "measured": _side(measured),
            "ratio": float(ratio), "target": {"op": op, "bound": bound, "text": f"{op} {bound:g}"},
            "repeats": reps, "n_repeats": len(reps),
            "interval": None if ci is None else {"low": ci[0], "high": ci[1], "level": LEVEL,
                                                  "method": "t interval on the mean of per-repeat paired ratios"},
            "status": status(ratio, target, reps), "note": note}


def describe(rec: dict) -> str:
    """The human line printed under the benchmark's own: interval and status."""
    ci = rec["interval"]
    if ci is None:
        span = f"{rec['ratio']:.4g}, {max(rec['n_repeats'], 1)} repeat: no interval"
    else:
        span = (f"95 % interval {ci['low']:.4g} .. {ci['high']:.4g} "
                f"(t on {rec['n_repeats']} per-repeat paired ratios)")
    note = f"; {rec['note']}" if rec.get("note") else ""
    return f"    [{rec['name']}] {span}; target {rec['target']['text']}: {rec['status']}{note}"


def record(benchmark: str, name: str, *, baseline, measured, ratio: float, target: str,
           repeats: Sequence[float] | None = None, note: str = "", out=None) -> dict:
    """Build the record, print its interval/status line, append it to ``$DSOPT_BENCH_RESULTS`` if set."""
    rec = make_record(benchmark, name, baseline=baseline, measured=measured, ratio=ratio, target=target,
                      repeats=repeats, note=note)
    print(describe(rec), file=out or sys.stdout, flush=True)
    path = os.environ.get(ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
    return rec


def read_records(path: str) -> list[dict]:
    """The records appended to ``path`` (blank lines ignored)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


SKIP_CODE = 77  # exit status of a benchmark that cannot run here (a missing optional dependency)


def skip(benchmark: str, reason: str) -> None:
    """End the benchmark as skipped: the reason on stderr, exit status 77 (run_all shows 'skipped: reason')."""
    print(f"SKIPPED {benchmark}: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(SKIP_CODE)
