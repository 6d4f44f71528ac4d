"""Window signals -> standardised z -> SPC charts -> alarms, with a reference period per signal.

A :class:`SignalMonitor` watches a few window statistics ("signals") with a few charts each. Every
signal first collects ``reference_windows`` windows to fit its :class:`Reference` (individuals or
X-bar), then standardises each new window and steps every chart. An alarm restarts that chart from
its zero state (so one shift is not reported again on the same evidence). :meth:`rebaseline`
starts a fresh reference period, e.g. after the model in service changed and its confidence and
error rate moved on purpose.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dsopt.monitor.charts import Chart
from dsopt.monitor.standardize import Reference
from dsopt.util.validation import ParameterError, check_choice, check_number

#: signal -> how its windows are standardised
SIGNAL_KINDS = {"drift": "individuals", "confidence": "xbar", "error": "xbar", "positive_rate": "xbar"}
SIGNAL_TEXT = {
    "drift": "embedding drift score (one value per window)",
    "confidence": "mean top-class probability (X-bar of the window's predictions)",
    "error": "error rate on the delayed labels (X-bar of the labelled items)",
    "positive_rate": "share of predictions of the last class (X-bar)",
}


@dataclass(frozen=True)
class ChartRecord:
    """One plotted point (or an alarm) of one chart on one signal."""

    window: int
    signal: str
    chart: str
    value: float
    z: float
    statistic: float
    lower: float
    upper: float
    alarm: bool
    rule: int


class SignalMonitor:
    """Charts over window signals.

    Parameters
    ----------
    charts: name -> chart, applied to every signal (e.g. ``{"ewma": EWMA(0.1, 2.7)}``); calibrate them
        first for a common in-control ARL.
    signals: which signals to watch (keys of :data:`SIGNAL_KINDS`).
    reference_windows: windows of the first reference period.
    rebaseline_windows: windows of the reference periods after :meth:`rebaseline` (default: the same).
        Shorter gets the charts watching again sooner after a handled alarm, with noisier limits.
    """

    def __init__(self, charts: Mapping[str, Chart], signals: Sequence[str] = ("drift", "confidence", "error"),
                 reference_windows: int = 20, rebaseline_windows: int | None = None):
        if not charts:
            raise ParameterError("charts", "give at least one chart")
        self.charts = dict(charts)
        self.signals = tuple(check_choice("signals", s, tuple(SIGNAL_KINDS)) for s in signals)
        self.reference_windows = check_number("reference_windows", reference_windows, low=3, high=100_000,
                                              integer=True)
        self.rebaseline_windows = check_number("rebaseline_windows", rebaseline_windows or reference_windows, low=3,
                                               high=100_000, integer=True)
        self._needed: dict[str, int] = {s: self.reference_windows for s in self.signals}
        self.records: list[ChartRecord] = []
        self.references: dict[str, Reference | None] = {}
        self._collected: dict[str, list] = {}
        self._states: dict[tuple[str, str], dict] = {}
        self._reset(self.signals)

    def rebaseline(self, signals: Sequence[str] | None = None) -> None:
        """Forget the references (and chart states) of ``signals`` (default all); collect
        ``rebaseline_windows`` windows anew."""
        signals = list(signals or self.signals)
        for s in signals:
            self._needed[s] = self.rebaseline_windows
        self._reset(signals)

    def _reset(self, signals) -> None:
        for s in signals:
            self.references[s] = None
            self._collected[s] = []
            for name, chart in self.charts.items():
                self._states[(s, name)] = chart.init(1)

    def set_charts(self, charts: Mapping[str, Chart]) -> list[str]:
        """Replace charts by name (new names are added); a changed chart restarts from its zero state
        (its reference is kept: the data did not change, only how it is watched). Returns the changed names."""
        changed = [name for name, chart in charts.items() if self.charts.get(name) != chart]
        for name in changed:
            self.charts[name] = charts[name]
            for s in self.signals:
                self._states[(s, name)] = charts[name].init(1)
        return changed

    def monitoring(self, signal: str) -> bool:
        """True once ``signal`` has its reference and its charts run."""
        return self.references.get(signal) is not None

    def observe(self, signal: str, window: int, *, value: float | None = None, items=None) -> list[ChartRecord]:
        """Add window ``window``'s ``signal``: ``value`` for individuals, ``items`` (per-item values) for X-bar.

        Returns the chart points of this window (empty while the reference is being collected).
        """
        if signal not in self.signals:
            return []
        kind = SIGNAL_KINDS[signal]
        if kind == "xbar":
            if items is None:
                raise ParameterError("items", f"signal {signal!r} is an X-bar signal: pass the window's item values")
            items = np.asarray(items, dtype=float)
            if items.size == 0:
                return []
            value, n = float(items.mean()), int(items.size)
        else:
            if value is None:
                raise ParameterError("value", f"signal {signal!r} takes one value per window")
            n = None
        ref = self.references[signal]
        if ref is None:
            self._collected[signal].append(items if kind == "xbar" else float(value))
            if len(self._collected[signal]) >= self._needed[signal]:
                data = self._collected[signal][-self._needed[signal]:]
                try:
                    self.references[signal] = Reference.xbar(data) if kind == "xbar" else Reference.individuals(data)
                except ParameterError:  # no variation yet (e.g. no errors at all): keep collecting
                    pass
            return []
        z = ref.z(value, n)
        out = []
        for name, chart in self.charts.items():
            state, p = chart.step(self._states[(signal, name)], [z])
            alarm = bool(p.alarm[0])
            self._states[(signal, name)] = chart.init(1) if alarm else state
            rec = ChartRecord(int(window), signal, name, float(value), float(z), float(p.statistic[0]),
                              float(p.lower), float(p.upper), alarm, int(p.rule[0]))
            out.append(rec)
        self.records.extend(out)
        return out

    def alarms(self) -> list[ChartRecord]:
        return [r for r in self.records if r.alarm]
