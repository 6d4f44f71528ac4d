"""Chapter 07's live run: the stream replayed window by window, steerable, and served to a real Prometheus.

:class:`StreamReplay` runs the ``monitor`` arm of the study (service + charts + retraining loop) one
window at a time on a background thread. It is a :class:`~dsopt.core.handle.RunHandle` (``start /
pause / resume / stop(wait) / wait``, ``running``, ``status``, ``state``: a
:class:`~dsopt.core.handle.Progress` where a window is a step and an "epoch") plus ``fit``, a :class:`~dsopt.core.controls.Controls` with knobs
(``lambda``, ``L``, ``k``, ``h``: the EWMA and CUSUM charts, the EWMA or CUSUM also triggering the
loop; ``label_budget``), applied at the next window boundary and recorded with their window, and a
:class:`~dsopt.core.recorder.Recorder` of every window (step = window index). ``control_schedule``
replays a panel session headless. With the default knobs the replay serves exactly the study's
``monitor`` run of the same seed.

:func:`serve_to_prometheus` replays a stream with the Prometheus exporter on while a local
Prometheus scrapes it, then reads every dashboard panel's PromQL back from Prometheus' HTTP API.
"""
from __future__ import annotations

import threading
import time
from typing import Sequence

from dsopt.core.controls import STOP, Controls, Knob
from dsopt.core.handle import Progress
from dsopt.core.recorder import Recorder
from dsopt.monitor import CUSUM, EWMA
from dsopt.monitor.prom_metrics import PANELS
from dsopt.studies.monitoring.measure import StreamSession, StudyConfig, detection_charts
from dsopt.util.validation import check_number

EVENT_NAMES = ("labels_requested", "promoted", "rejected")


def default_knobs(cfg: StudyConfig) -> dict:
    """The knobs the study's monitor arm uses: the trigger calibration (arl0 x trigger signals) of both charts."""
    charts = detection_charts(cfg.arl0 * len(cfg.loop_signals), cfg.lam, cfg.k)
    return {"lambda": charts["ewma"].lam, "L": round(charts["ewma"].L, 4), "k": charts["cusum"].k,
            "h": round(charts["cusum"].h, 4), "label_budget": cfg.label_budget}


class StreamReplay:
    """The monitor arm of stream ``seed``, one window per step, steerable (see the module docstring).

    ``windows``: how many windows to serve (the run's budget; at most the stream's length).
    ``pace``: seconds to wait between windows (so a person can watch; 0 headless).
    ``features``: study features (loaded on the run thread when None: the first run computes the
    MiniLM embeddings, later ones read them from ``cache_dir``).
    """

    def __init__(self, cfg: StudyConfig, seed: int = 0, *, windows: int | None = None, pace: float = 0.0,
                 control_schedule: Sequence = (), features=None, cache_dir: str | None = None, exporter=None):
        self.cfg, self.seed = cfg, int(seed)
        n = cfg.stream.n_windows
        self.max_epochs = check_number("windows", windows if windows is not None else n, low=1, high=n, integer=True)
        self.pace = float(check_number("pace", pace, low=0.0, high=60.0))
        self.features, self.cache_dir, self.exporter = features, cache_dir, exporter
        self.schedule = sorted((int(s), str(name), v) for s, name, v in control_schedule)
        self.controls = Controls()
        for name, default in default_knobs(cfg).items():
            self.controls.define(Knob(name, default, _VALIDATORS[name]))
        self.recorder = Recorder()
        self.state = Progress(self.max_epochs)
        self.session: StreamSession | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.stopped_early = False
        #: What the replay does before its first window (shown on the panel's status line), else None.
        self.phase: str | None = None

    #: A step of this run is one window of the stream (the panel says "window 3 of 90", not "epoch").
    progress_unit = "window"

    # -- the run handle (dsopt.core.handle.RunHandle) ------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def status(self) -> str:
        """idle, running, paused (held at a window boundary), stopped, finished or failed."""
        if self.running:
            return "paused" if self.controls.paused and self.controls.holding else "running"
        if self._error is not None:
            return "failed"
        if self._thread is None and self.state.step == 0:
            return "idle"
        done = self.state.step >= self.max_epochs or (self.session is not None and self.session.done)
        return "finished" if done and not self.stopped_early else "stopped"

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def error(self) -> BaseException | None:
        return self._error

    def start(self) -> StreamReplay:
        if self.running:
            raise RuntimeError("this replay is already running")
        self._error = None
        self.controls.clear_stop()  # here, not on the thread: a stop() right after start() must count

        def target():
            try:
                self._run()
            except BaseException as exc:  # surfaced by wait() and the panel's status line
                self._error = exc

        self._thread = threading.Thread(target=target, name="dsopt-stream-replay", daemon=True)
        self._thread.start()
        return self

    def fit(self) -> Recorder:
        """Serve every window on this thread (headless); return the Recorder."""
        self.controls.clear_stop()
        self._run()
        return self.recorder

    def wait(self, timeout: float | None = None) -> Recorder:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the replay is still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self.recorder

    def pause(self) -> None:
        self.controls.pause()

    def resume(self) -> None:
        self.controls.resume()

    def stop(self, wait: float | None = None) -> None:
        """Stop at the next window boundary; with ``wait``, join the run for up to ``wait`` s (no raise)."""
        self.controls.stop()
        if wait and self._thread is not None:
            self._thread.join(wait)

    # -- the loop over windows -----------------------------------------------------------------------
    def _session(self) -> StreamSession:
        if self.session is None:
            knobs = self.controls.values()
            charts = {**detection_charts(self.cfg.arl0, self.cfg.lam, self.cfg.k), **_knob_charts(knobs)}
            trigger = _knob_charts(knobs)[self.cfg.loop_chart] if self.cfg.loop_chart in ("ewma", "cusum") else None
            self.session = StreamSession(self.cfg, "monitor", self.seed, features=self.features,
                                         cache_dir=self.cache_dir, charts=charts, trigger_chart=trigger,
                                         exporter=self.exporter)
            self.session.loop.budget = int(knobs["label_budget"])
        return self.session

    def _boundary(self, t: int) -> bool:
        for s, name, value in self.schedule:
            if s == t:
                if name == STOP:
                    self.controls.stop()
                else:
                    self.controls.set(name, value)
        changed = self.controls.apply_pending(t)
        for name, value in changed.items():
            self.recorder.log(f"knob/{name}", value, step=t, epoch=t)
        if changed:
            knobs = self.controls.values()
            charts = _knob_charts(knobs)
            if self.cfg.loop_chart in charts:
                charts["trigger"] = charts[self.cfg.loop_chart]
            self.session.set_charts(charts)
            self.session.loop.budget = int(knobs["label_budget"])
        self.controls.wait_while_paused()
        return not self.controls.stop_requested

    def _run(self) -> None:
        self.stopped_early = False
        if self.session is None:
            self.phase = ("preparing the stream: MiniLM embeddings of its text pools (about a minute on 2 cores the "
                          "first time, then read from the cache) and the launch model")
        try:
            session = self._session()
        finally:
            self.phase = None
        rec = self.recorder
        while self.state.step < self.max_epochs and not session.done:
            t = self.state.step
            if not self._boundary(t):
                self.stopped_early = True
                return
            out = session.step()
            for name in ("accuracy", "new_fraction", "drift", "confidence"):
                if out[name] is not None:
                    rec.log(name, out[name], step=t, epoch=t)
            rec.log("version", out["version"], step=t, epoch=t)
            rec.log("labels_spent", session.loop.spent, step=t, epoch=t)
            for r in out["records"]:
                key = f"{r.signal}/{r.chart}"
                if r.signal == "error":
                    rec.log("error", r.value, step=r.window, epoch=r.window)
                rec.log(f"stat/{key}", r.statistic, step=r.window, epoch=r.window)
                rec.log(f"ucl/{key}", r.upper, step=r.window, epoch=r.window)
                rec.log(f"lcl/{key}", r.lower, step=r.window, epoch=r.window)
                if r.alarm:
                    rec.log(f"alarm/{key}", r.statistic, step=r.window, epoch=r.window)
            for e in out["events"]:
                if e.event in EVENT_NAMES:
                    rec.log(f"event/{e.event}", out["accuracy"], step=t, epoch=t)
            self.state.step = t + 1
            if self.pace:
                time.sleep(self.pace)

    def result(self) -> dict:
        """The session's run output (the same dict as :func:`~dsopt.studies.monitoring.measure.run_arm`)."""
        return self._session().result()


def _check_lambda(v):
    return EWMA(v, 3.0).lam


def _check_L(v):
    return EWMA(0.5, v).L


def _check_k(v):
    return CUSUM(v, 5.0).k


def _check_h(v):
    return CUSUM(0.5, v).h


def _check_budget(v):
    return check_number("label_budget", v, low=0, high=100_000, integer=True)


_VALIDATORS = {"lambda": _check_lambda, "L": _check_L, "k": _check_k, "h": _check_h, "label_budget": _check_budget}


def _knob_charts(knobs: dict) -> dict:
    return {"ewma": EWMA(knobs["lambda"], knobs["L"]), "cusum": CUSUM(knobs["k"], knobs["h"])}


def live_replay(cfg: StudyConfig, seed: int = 0, *, cache_dir: str | None = None, pace: float = 0.0, features=None):
    """A factory for the panel: ``factory(*, epochs, control_schedule, window_size=None) -> StreamReplay``."""
    from dataclasses import replace

    def factory(*, epochs: int, control_schedule=(), window_size: int | None = None) -> StreamReplay:
        c = cfg
        if window_size is not None and window_size != cfg.stream.window_size:
            c = replace(cfg, stream=replace(cfg.stream, window_size=int(window_size)))
        windows = min(int(epochs), c.stream.n_windows)
        return StreamReplay(c, seed, windows=windows, pace=pace, control_schedule=control_schedule,
                            features=features, cache_dir=cache_dir)

    return factory


# -- a real Prometheus over the replayed stream --------------------------------------------------------
def serve_to_prometheus(cfg: StudyConfig, seed: int = 0, *, features=None, cache_dir: str | None = None,
                        pace: float = 0.05, scrape_interval: str = "500ms", settle: float = 2.0,
                        keep_running: bool = False) -> dict:
    """Replay stream ``seed`` (monitor arm) with the exporter on while a local Prometheus scrapes it;
    return ``{"url", "panels": [{title, unit, series: [{legend, t, y}]}], "start", "end", "samples"}``.

    Both servers are stopped before returning (``keep_running=True`` returns them in ``"servers"``
    instead; the caller must stop them). Raises PrometheusNotFound when Prometheus is not installed.
    """
    from dsopt.monitor.exporter import Exporter
    from dsopt.monitor.prometheus import PrometheusServer

    exporter = Exporter().start()
    prom = None
    ok = False
    try:
        prom = PrometheusServer([exporter.address], scrape_interval=scrape_interval).start()
        replay = StreamReplay(cfg, seed, pace=pace, features=features, cache_dir=cache_dir, exporter=exporter)
        replay._session()  # embeddings and launch model first, so the scraped period is the stream itself
        prom.wait_for("up", timeout=30, predicate=lambda r: float(r[0]["value"][1]) == 1)
        start = time.time()
        replay.fit()
        time.sleep(settle)  # the last windows reach Prometheus
        end = time.time()
        step = max(0.25, _seconds(scrape_interval))
        panels = []
        for p in PANELS:
            series = []
            for expr, legend in p.exprs:
                for r in prom.query_range(expr, start, end, step):
                    label = legend
                    for key, value in r["metric"].items():
                        label = label.replace("{{" + key + "}}", value)
                    series.append({"legend": label, "expr": expr, "t": [float(v[0]) - start for v in r["values"]],
                                   "y": [float(v[1]) for v in r["values"]]})
            panels.append({"title": p.title, "unit": p.unit, "series": series})
        samples = sum(len(s["t"]) for p in panels for s in p["series"])
        out = {"url": prom.url, "exporter": exporter.url, "panels": panels, "start": start, "end": end,
               "samples": samples, "windows": replay.state.step, "run": replay.result()}
        if keep_running:
            out["servers"] = (prom, exporter)
        ok = True
        return out
    finally:
        if not (keep_running and ok):
            if prom is not None:
                prom.stop()
            exporter.stop()


def _seconds(duration: str) -> float:
    """'500ms' -> 0.5, '2s' -> 2.0, '1m' -> 60.0 (the durations scrape_config accepts)."""
    for unit, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * factor
    raise ValueError(f"not a duration: {duration!r}")
