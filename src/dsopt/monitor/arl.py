"""Average run length (ARL) of the SPC charts: seeded vectorised simulation, Markov-chain
evaluation, ARL-vs-shift curves and calibration to a target in-control ARL.

Two independent routes to the same number, so each checks the other:

* :func:`simulate_arl` runs ``runs`` charts side by side through ``chart.step`` (the code that
  raises the alarms in the service) on N(shift, 1) data until each signals.
* :func:`markov_arl` evaluates the chart as a Markov chain: exact for Shewhart charts with runs
  rules (the minimal-history construction of Champ & Woodall, Technometrics 29, 1987), Brook &
  Evans (Biometrika 59, 1972) for CUSUM, Lucas & Saccucci (Technometrics 32, 1990) for EWMA; the
  last two discretise the statistic into ``states`` intervals (the error falls as 1/states^2).

ARLs are zero-state (the chart starts fresh when the shift starts), counted in plotted points
(windows, subgroups), as in the published tables.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import numpy as np

from dsopt.monitor.charts import CUSUM, EWMA, Chart, Shewhart
from dsopt.util.validation import ParameterError, check_number


# -- simulation -----------------------------------------------------------------------------------
def simulate_arl(chart: Chart, shift: float = 0.0, *, runs: int = 10_000, seed: int = 0,
                 max_steps: int = 1_000_000) -> dict:
    """ARL of ``chart`` for a mean shift of ``shift`` sigma, from ``runs`` independent seeded runs.

    Returns ``{"arl", "se", "sd", "runs", "censored", "run_lengths"}``; ``se`` is the standard error
    of the mean run length. Runs still silent after ``max_steps`` points count as ``max_steps``
    (``censored`` says how many; the ARL is then a lower bound).
    """
    runs = check_number("runs", runs, low=1, high=10_000_000, integer=True)
    max_steps = check_number("max_steps", max_steps, low=1, integer=True)
    shift = float(check_number("shift", shift, low=-20.0, high=20.0))
    rng = np.random.default_rng(seed)
    state = chart.init(runs)
    alive = np.arange(runs)
    lengths = np.full(runs, max_steps, dtype=np.int64)
    t = 0
    while alive.size and t < max_steps:
        t += 1
        state, point = chart.step(state, rng.standard_normal(alive.size) + shift)
        if point.alarm.any():
            lengths[alive[point.alarm]] = t
            keep = ~point.alarm
            alive = alive[keep]
            state = {name: value[keep] for name, value in state.items()}
    rl = lengths.astype(float)
    sd = float(rl.std(ddof=1)) if runs > 1 else 0.0
    return {"arl": float(rl.mean()), "se": sd / math.sqrt(runs), "sd": sd, "runs": runs,
            "censored": int(alive.size), "run_lengths": lengths}


# -- Markov chains --------------------------------------------------------------------------------
def _phi(x):
    from scipy.special import ndtr

    return ndtr(x)


def _solve_arl(Q: np.ndarray, start: int) -> float:
    """ARL from the transient-state transition matrix ``Q``: solve (I - Q) a = 1, read a[start]."""
    n = Q.shape[0]
    a = np.linalg.solve(np.eye(n) - Q, np.ones(n))
    return float(a[start])


def _ewma_arl(chart: EWMA, mu: float, states: int) -> float:
    m = states | 1  # odd: one interval centred on 0, where the chart starts
    ucl = chart.L * chart.sigma
    w = 2.0 * ucl / m
    centres = -ucl + w * (np.arange(m) + 0.5)
    lam = chart.lam
    lower = (centres - w / 2)[None, :]
    upper = (centres + w / 2)[None, :]
    base = ((1.0 - lam) * centres)[:, None]
    Q = _phi((upper - base) / lam - mu) - _phi((lower - base) / lam - mu)
    return _solve_arl(Q, m // 2)


def _cusum_one_sided_arl(k: float, h: float, mu: float, states: int) -> float:
    m = states
    w = 2.0 * h / (2 * m - 1)  # state 0 = [0, w/2), state j = [(j - 1/2) w, (j + 1/2) w); signal above h
    x = (np.arange(m) * w)[:, None]
    j = np.arange(m)[None, :]
    Q = _phi((j + 0.5) * w - x + k - mu) - _phi((j - 0.5) * w - x + k - mu)
    Q[:, 0] = _phi(0.5 * w - x[:, 0] + k - mu)
    return _solve_arl(Q, 0)


def _cusum_arl(chart: CUSUM, mu: float, states: int) -> float:
    """Two-sided ARL from the one-sided ones: 1/ARL = 1/ARL+ + 1/ARL- (Lucas & Crosier 1982)."""
    up = _cusum_one_sided_arl(chart.k, chart.h, mu, states)
    down = _cusum_one_sided_arl(chart.k, chart.h, -mu, states)
    return 1.0 / (1.0 / up + 1.0 / down)


# Shewhart + runs rules: zones of z by multiples of c = L/3. Symbols +-1: (0, c], +-2: (c, 2c],
# +-3: (2c, 3c], +-4: beyond 3c (rule 1); 0 = no point yet.
_SYMBOLS = (-4, -3, -2, -1, 1, 2, 3, 4)


def _signals(window: tuple, rules: tuple) -> bool:
    """Do the rules fire on ``window`` (zone symbols, oldest first, newest last)?"""
    s = window[-1]
    if abs(s) == 4:
        return True
    if 2 in rules:
        last = window[-3:]
        if sum(v >= 3 for v in last) >= 2 or sum(v <= -3 for v in last) >= 2:
            return True
    if 3 in rules:
        last = window[-5:]
        if sum(v >= 2 for v in last) >= 4 or sum(v <= -2 for v in last) >= 4:
            return True
    if 4 in rules and len(window) >= 8:
        last = window[-8:]
        if all(v > 0 for v in last) or all(v < 0 for v in last):
            return True
    return False


def _reduce(window: tuple, rules: tuple, memory: int) -> tuple:
    """Keep only what the rules can still use from the last ``memory`` symbols (newest last).

    Position 0 = newest. Rule 2 looks back 2 points (needs zone A vs B vs C and the side), rule 3
    looks back 4 (beyond c or not, and the side), rule 4 looks back 7 (the side, and only while the
    run from the newest point is unbroken).
    """
    hist = window[-memory:]
    out = []
    newest_sign = (hist[-1] > 0) - (hist[-1] < 0)
    run_unbroken = True
    for pos, v in enumerate(reversed(hist)):
        sign = (v > 0) - (v < 0)
        run_unbroken = run_unbroken and sign == newest_sign and sign != 0
        a = abs(v)
        if pos <= 1 and 2 in rules:
            keep = a
        elif pos <= 3 and 3 in rules:
            keep = min(a, 2)
        else:
            keep = 1 if a else 0
        if keep == 1 and not (4 in rules and run_unbroken):
            keep = 0  # a point inside +-c only matters to rule 4's run
        out.append(sign * keep)
    return tuple(reversed(out))


@functools.lru_cache(maxsize=16)
def _we_automaton(rules: tuple) -> tuple[np.ndarray, int]:
    """(next_state [states, 8] with -1 = signal, start state) of the runs-rules chart, by breadth-first search."""
    memory = 7 if 4 in rules else 4 if 3 in rules else 2 if 2 in rules else 1
    start = (0,) * memory
    index = {start: 0}
    order = [start]
    transitions = []
    i = 0
    while i < len(order):
        state = order[i]
        row = []
        for sym in _SYMBOLS:
            window = state + (sym,)
            if _signals(window, rules):
                row.append(-1)
                continue
            nxt = _reduce(window, rules, memory)
            if nxt not in index:
                index[nxt] = len(order)
                order.append(nxt)
            row.append(index[nxt])
        transitions.append(row)
        i += 1
    return np.asarray(transitions, dtype=np.int64), 0


def _zone_probs(L: float, mu: float) -> np.ndarray:
    c = L / 3.0
    edges = np.array([-np.inf, -3 * c, -2 * c, -c, 0.0, c, 2 * c, 3 * c, np.inf])
    return np.diff(_phi(edges - mu))


def _shewhart_arl(chart: Shewhart, mu: float) -> float:
    p = _zone_probs(chart.L, mu)
    if chart.rules == (1,):
        return float(1.0 / (p[0] + p[-1]))
    nxt, start = _we_automaton(chart.rules)
    from scipy.sparse import coo_matrix, identity
    from scipy.sparse.linalg import spsolve

    n = nxt.shape[0]
    rows, cols = np.nonzero(nxt >= 0)
    Q = coo_matrix((p[cols], (rows, nxt[rows, cols])), shape=(n, n)).tocsc()
    a = spsolve(identity(n, format="csc") - Q, np.ones(n))
    return float(a[start])


def markov_arl(chart: Chart, shift: float = 0.0, *, states: int = 301) -> float:
    """ARL of ``chart`` at a mean shift of ``shift`` sigma, evaluated as a Markov chain.

    Exact for Shewhart charts (with or without runs rules); ``states`` intervals discretise the
    EWMA / CUSUM statistic (301 keeps the error well below 1 % for the usual designs).
    """
    shift = float(check_number("shift", shift, low=-20.0, high=20.0))
    states = check_number("states", states, low=11, high=5001, integer=True)
    if isinstance(chart, Shewhart):
        return _shewhart_arl(chart, shift)
    if isinstance(chart, EWMA):
        return _ewma_arl(chart, shift, states)
    if isinstance(chart, CUSUM):
        return _cusum_arl(chart, shift, states)
    raise TypeError(f"not a chart: {chart!r}")


def arl_curve(chart: Chart, shifts: Iterable[float] = tuple(np.round(np.arange(0, 3.01, 0.25), 2)),
              *, states: int = 151) -> np.ndarray:
    """Markov-chain ARL at each shift (a fast preview: 151 states keep EWMA/CUSUM within ~1 %)."""
    return np.array([markov_arl(chart, s, states=states) for s in shifts])


# -- calibration ----------------------------------------------------------------------------------
def _with(chart: Chart, value: float) -> Chart:
    if isinstance(chart, Shewhart):
        return Shewhart(value, chart.rules)
    if isinstance(chart, EWMA):
        return EWMA(chart.lam, value)
    return CUSUM(chart.k, value)


def calibration_parameter(chart: Chart) -> str:
    """The limit a calibration moves: ``L`` (Shewhart, EWMA) or ``h`` (CUSUM)."""
    return "h" if isinstance(chart, CUSUM) else "L"


def calibrate(chart: Chart, arl0: float, *, states: int = 301) -> Chart:
    """A copy of ``chart`` whose limit gives in-control ARL ``arl0`` (Markov chain, root-finding).

    Moves ``L`` for Shewhart and EWMA (lambda kept), ``h`` for CUSUM (k kept). A target the chart
    cannot reach is refused: with rule 4 (8 points on one side) no limit gives ARL0 above ~255.
    Results are memoised per (chart, arl0, states): charts are immutable.
    """
    arl0 = float(check_number("arl0", arl0, low=2.0, high=1e7))
    return _calibrate(chart, arl0, states)


@functools.lru_cache(maxsize=256)
def _calibrate(chart: Chart, arl0: float, states: int) -> Chart:
    from scipy.optimize import brentq

    if isinstance(chart, Shewhart) and chart.rules == (1,):
        from scipy.special import ndtri

        return _with(chart, float(-ndtri(0.5 / arl0)))
    lo, top = (0.05, 30.0) if isinstance(chart, CUSUM) else (0.3, 8.0)

    def gap(x: float) -> float:
        value = markov_arl(_with(chart, x), 0.0, states=states)
        if not (math.isfinite(value) and value > 0):  # beyond double precision: far above any target
            return math.inf
        return math.log(value) - math.log(arl0)

    g_lo = gap(lo)
    hi = lo
    g_hi = g_lo
    while g_hi < 0 and hi < top:  # widen geometrically: very wide limits overflow the linear solve
        lo, g_lo = hi, g_hi
        hi = min(top, hi * 1.5)
        g_hi = gap(hi)
    if g_lo > 0 or g_hi < 0:
        first = math.exp(g_lo) * arl0 if math.isfinite(g_lo) else math.inf
        last = math.exp(g_hi) * arl0 if math.isfinite(g_hi) else math.inf
        raise ParameterError("arl0", f"arl0={arl0:g} is out of reach for {chart.name}: its in-control ARL "
                                     f"spans {first:.3g} to {last:.3g} as {calibration_parameter(chart)} "
                                     f"goes from {lo:.3g} to {hi:.3g}")
    return _with(chart, float(brentq(gap, lo, hi, xtol=1e-6)))


# -- the table the chapter prints -----------------------------------------------------------------
def arl_table(entries: list[dict] | None = None, *, runs: int = 10_000, seed: int = 0) -> list[dict]:
    """Every published (or reference) ARL next to our Markov-chain value and our simulation.

    ``entries`` default to :data:`dsopt.monitor.published.PUBLISHED_ARL`. Each row adds ``markov``,
    ``simulated`` (+- ``se``) and ``rel_error`` = simulated / reference - 1; seeds are
    ``seed, seed + 1, ...`` per row, so the table is reproducible.
    """
    from dsopt.monitor.charts import make_chart
    from dsopt.monitor.published import PUBLISHED_ARL, is_published

    rows = []
    for i, e in enumerate(entries if entries is not None else PUBLISHED_ARL):
        chart = make_chart(e["kind"], **e["params"])
        sim = simulate_arl(chart, e["shift"], runs=runs, seed=seed + i)
        rows.append({
            "chart": chart.name, "params": dict(e["params"]), "shift": e["shift"], "reference": e["arl"],
            "source": e["source"], "published": is_published(e), "markov": markov_arl(chart, e["shift"], states=1001),
            "simulated": sim["arl"], "se": sim["se"], "runs": runs, "rel_error": sim["arl"] / e["arl"] - 1.0,
        })
    return rows


def format_arl_table(rows: list[dict]) -> str:
    """Markdown: chart, design, shift, reference (published or computed), Markov chain, simulation."""
    out = ["| chart | design | shift (sigma) | reference ARL | Markov chain | simulated (+- se) | sim / ref - 1 | source |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        design = ", ".join(f"{k}={v}" if k != "rules" else "rules " + "".join(map(str, v)) for k, v in r["params"].items())
        ref = f"{r['reference']:g}" + ("" if r["published"] else " (computed)")
        out.append(f"| {r['chart']} | {design} | {r['shift']:g} | {ref} | {r['markov']:.2f} | "
                   f"{r['simulated']:.2f} +- {r['se']:.2f} | {100 * r['rel_error']:+.1f} % | {r['source']} |")
    return "\n".join(out)
