"""Run every benchmark in ``benchmarks/`` and print one table of their targets, with intervals and statuses.

Usage: python benchmarks/run_all.py [--quick] [--json out.json] [--only NAME[,NAME]] [--timeout S]

Each benchmark runs as a subprocess of this interpreter, with its default arguments, or with ``--quick``
with the small arguments of :data:`QUICK` (the whole suite in a few minutes on a 2-core machine; quick
figures are noisier, so expect more "not distinguishable at this noise"). The benchmarks write their
records (see ``report.py``) to a temporary file named by ``DSOPT_BENCH_RESULTS``; this script collects them
and prints one table: benchmark, target, baseline, measured, ratio with its 95 % interval, target bound,
status; then once the machine (CPU model and capability, torch version, cores) and, per benchmark, its
outcome, seconds and the load average before and after. ``--json PATH`` writes all of it
machine-readable, to compare two machines. A benchmark that fails, or is skipped (exit status 77 from
``report.skip``, or an optional module missing), is a row saying so with the last lines of its stderr.
The exit status is 1 only when a benchmark failed; a missed target never makes it non-zero.
Progress goes to stderr, one line per benchmark started and finished.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import report  # noqa: E402

BENCHMARKS = ("trainer_overhead", "lr_schedule", "pruning_latency", "weighting_step", "mixed_precision",
              "augmentation", "monitoring", "distributed_training", "dask_grid")

# --quick: small arguments per benchmark (what they measure is unchanged, only sizes and repeats shrink)
QUICK: dict[str, list[str]] = {
    "trainer_overhead": ["--epochs", "1", "--repeats", "3"],
    "lr_schedule": [],  # no arguments: the 100,000-step preview and 60 slider changes take seconds
    "pruning_latency": ["--batch", "8", "--lengths", "32", "--fractions", "0.5", "--repeats", "3", "--warmup", "1"],
    "weighting_step": ["--tasks", "credit_card_default", "--steps", "50", "--repeats", "3"],
    "mixed_precision": ["--epochs", "1", "--repeats", "3", "--skip-modes"],  # the modes part has no target
    "augmentation": ["--sentences", "5", "--n", "1", "--repeats", "3"],
    "monitoring": ["--batches", "5", "--batch-size", "8", "--repeats", "3", "--no-encoder"],
    "distributed_training": ["--repeats", "2", "--workers", "2"],
    "dask_grid": ["--jobs", "8", "--repeats", "2"],
}
TAIL_LINES = 8


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_facts() -> dict:
    """CPU model and capability, torch version, core count, platform."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {"cpu_model": model or "unknown", "cores": os.cpu_count(), "python": platform.python_version(),
             "platform": platform.platform(), "torch": None, "cpu_capability": None}
    try:
        import torch

        facts["torch"] = torch.__version__
        facts["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        facts["torch_threads"] = torch.get_num_threads()
    except Exception as e:  # torch missing or too old: say so, do not fail the suite
        facts["torch_error"] = f"{type(e).__name__}: {e}"
    return facts


def classify(rc: int, stderr: str) -> tuple[str, str]:
    """``(outcome, reason)`` of a finished benchmark: ok / skipped / failed."""
    if rc == 0:
        return "ok", ""
    if rc == report.SKIP_CODE:
        m = re.search(r"SKIPPED [^:]*: (.*)", stderr)
        return "skipped", m.group(1).strip() if m else "skipped"
    m = re.search(r"ModuleNotFoundError: No module named '([^']+)'", stderr)
    if m and not m.group(1).split(".")[0] in ("dsopt", "dsopt_widgets", "report"):
        return "skipped", f"optional module {m.group(1)!r} not installed"
    return "failed", f"exit status {rc}"


def run_one(name: str, args: list[str], timeout: float | None = None) -> dict:
    """Run benchmarks/NAME.py in a subprocess; its outcome, seconds, loads and records."""
    fd, path = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".jsonl")
    os.close(fd)
    env = dict(os.environ, **{report.ENV: path})
    cmd = [sys.executable, str(HERE / f"{name}.py"), *args]
    load0, t0 = loadavg(), time.perf_counter()
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc = -1
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")) \
            + f"\ntimed out after {timeout} s"
    seconds = time.perf_counter() - t0
    records = report.read_records(path)
    os.unlink(path)
    outcome, reason = classify(rc, err)
    if rc == -1:
        outcome, reason = "failed", f"timed out after {timeout} s"
    return {"benchmark": name, "args": args, "rc": rc, "outcome": outcome, "reason": reason,
            "seconds": round(seconds, 1), "load_before": load0, "load_after": loadavg(),
            "stderr_tail": err.strip().splitlines()[-TAIL_LINES:], "stdout": out, "records": records}


def assemble(runs: list[dict], facts: dict, quick: bool) -> dict:
    """Everything machine-readable: the machine, the runs (with their records), and the flat records."""
    return {"machine": facts, "quick": quick, "runs": runs,
            "records": [r for run in runs for r in run["records"]],
            "failed": [run["benchmark"] for run in runs if run["outcome"] == "failed"]}


def _side(s: dict | None) -> str:
    if s is None:
        return "-"
    return f"{s['value']:.4g} {s['unit']}".strip()


def _ratio(rec: dict) -> str:
    ci = rec.get("interval")
    if ci is None:
        return f"{rec['ratio']:.3g} (n=1)" if rec.get("n_repeats", 0) <= 1 else f"{rec['ratio']:.3g}"
    return f"{rec['ratio']:.3g} [{ci['low']:.3g}, {ci['high']:.3g}] n={rec['n_repeats']}"


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    lines = [fmt.format(*header).rstrip(), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*map(str, r)).rstrip() for r in rows]
    return lines


def format_table(doc: dict) -> str:
    """The human report: one table of targets (and of failed/skipped benchmarks), the machine, the loads."""
    rows = []
    for run in doc["runs"]:
        if run["outcome"] != "ok" or not run["records"]:
            what = run["outcome"] if run["outcome"] != "ok" else "ok, but recorded no target"
            rows.append([run["benchmark"], "-", "-", "-", "-", "-",
                         f"{what}: {run['reason']}" if run["reason"] else what])
        for rec in run["records"]:
            rows.append([run["benchmark"], rec["name"], _side(rec["baseline"]), _side(rec["measured"]),
                         _ratio(rec), rec["target"]["text"], rec["status"]])
    lines = _grid(["benchmark", "target", "baseline", "measured", "ratio [95 % interval]", "target", "status"],
                  rows)
    m = doc["machine"]
    lines += ["", f"machine: {m['cpu_model']}, cpu capability {m.get('cpu_capability')}, {m['cores']} cores, "
                  f"torch {m.get('torch')}, python {m['python']}" + (" (--quick sizes)" if doc["quick"] else "")]

    def ld(x):
        return " ".join(f"{v:.2f}" for v in x) if x else "?"

    lines += _grid(["benchmark", "outcome", "seconds", "load avg 1/5/15 before -> after"],
                   [[r["benchmark"], r["outcome"], f"{r['seconds']:.1f}",
                     f"{ld(r['load_before'])} -> {ld(r['load_after'])}"] for r in doc["runs"]])
    for run in doc["runs"]:
        if run["outcome"] != "ok":
            lines += ["", f"{run['benchmark']} ({run['outcome']}: {run['reason']}), last lines of stderr:"]
            lines += [f"  | {t}" for t in run["stderr_tail"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small arguments per benchmark (see QUICK)")
    ap.add_argument("--json", metavar="PATH", help="also write records, machine facts and loads as JSON")
    ap.add_argument("--only", metavar="NAME[,NAME]", help="run only these benchmarks")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per benchmark (default: none)")
    args = ap.parse_args(argv)
    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip().removesuffix(".py") for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            ap.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    facts = machine_facts()
    runs = []
    for name in names:
        bargs = QUICK[name] if args.quick else []
        print(f"[run_all] {name} {' '.join(bargs) or '(default arguments)'} ... started (load {loadavg()})", file=sys.stderr, flush=True)
        run = run_one(name, bargs, args.timeout)
        print(f"[run_all] {name}: {run['outcome']} in {run['seconds']:.1f} s, {len(run['records'])} record(s)",
              file=sys.stderr, flush=True)
        runs.append(run)
    doc = assemble(runs, facts, args.quick)
    print(format_table(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 1 if doc["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
