"""Chapter 07's controlled measurement: what monitoring buys on a real shift, per stream seed.

Three arms serve the same seeded stream with the same launch model. In every arm the four charts
(plain Shewhart, Shewhart + the four Western Electric rules, EWMA, CUSUM, all calibrated to the
same in-control ARL) watch every signal (embedding drift, mean confidence, error rate on a delayed
audit sample of labels), so every run carries the same dashboards; only the loop acts on alarms.

* ``none``: the launch model serves to the end (nothing acts on the charts, so its accuracy is that
  of an unmonitored model): it measures detection delay and false alarms, and decay without upkeep.
* ``monitor``: the retraining loop, triggered by one chart on the label-free signals (drift and
  confidence; its limits are calibrated for ``arl0`` times the number of signals, so the combined
  false-alarm rate stays near 1 / arl0), on a label budget.
* ``periodic``: the same loop without monitoring: a request every (stream / (budget / k)) windows
  after the reference period, i.e. the same label budget spent on a timetable.

Every run is a job of :func:`dsopt.studies.jobs.run_jobs` (cached, stored, spot-checked); tables
and verdicts are derived from the runs by :func:`summarize`.
"""
from __future__ import annotations

import copy
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from dsopt.monitor import CUSUM, EWMA, EmbeddingDrift, Shewhart, WE_RULES, calibrate
from dsopt.monitor.arl import calibration_parameter, markov_arl
from dsopt.monitor.charts import describe_chart
from dsopt.monitor.loop import ModelStore, RetrainingLoop, finetune_classifier
from dsopt.monitor.service import ModelService
from dsopt.monitor.signals import SignalMonitor
from dsopt.stats import mean_sd
from dsopt.studies.jobs import cache_key, run_jobs
from dsopt.studies.monitoring.data import CLASS_NAMES, accuracy, launch_model, load_features
from dsopt.studies.monitoring.stream import SCALE_STREAMS, StreamConfig, build_stream
from dsopt.util.threads import torch_threads
from dsopt.util.validation import check_choice, check_number

ARMS = ("none", "monitor", "periodic")
DETECTION_SIGNALS = ("drift", "confidence", "error")
CHART_NAMES = ("shewhart", "shewhart_we", "ewma", "cusum")
CHART_LABELS = {"shewhart": "Shewhart 3-sigma", "shewhart_we": "Shewhart + WE rules", "ewma": "EWMA", "cusum": "CUSUM"}
#: chart series a run keeps point by point (for the figures); every alarm of every chart is kept
DRAWN_SERIES = {f"{sig}/{chart}" for sig in ("drift", "confidence") for chart in ("ewma", "cusum")}
#: labels per request and label budget per scale
LOOP_SIZES = {"tiny": (20, 60), "workshop": (60, 180), "full": (100, 400)}


@dataclass(frozen=True)
class StudyConfig:
    """Everything a run depends on besides the seed (JSON-able: it is part of every run's key)."""

    scale: str = "workshop"
    stream: StreamConfig = field(default_factory=StreamConfig)
    arl0: float = 100.0
    lam: float = 0.1
    k: float = 0.5
    label_budget: int = 180
    labels_per_request: int = 60
    val_fraction: float = 0.3
    rebaseline_windows: int = 5
    loop_chart: str = "ewma"
    loop_signals: tuple = ("drift", "confidence")
    finetune_steps: int = 200
    finetune_lr: float = 1e-2
    drift_components: int = 10

    def __post_init__(self):
        check_choice("scale", self.scale, tuple(SCALE_STREAMS))
        check_number("arl0", self.arl0, low=10.0, high=250.0)  # WE rules cannot exceed ~255
        check_number("lambda", self.lam, low=0.01, high=1.0)
        check_number("k", self.k, low=0.0, high=3.0)
        check_number("labels_per_request", self.labels_per_request, low=4, high=10_000, integer=True)
        check_number("label_budget", self.label_budget, low=0, high=100_000, integer=True)
        check_choice("loop_chart", self.loop_chart, CHART_NAMES)
        for s in self.loop_signals:
            check_choice("loop_signals", s, ("drift", "confidence", "error"))

    @classmethod
    def at_scale(cls, scale: str = "workshop", **overrides) -> StudyConfig:
        """Defaults of ``scale`` (stream geometry, labels per request, budget), then ``overrides``."""
        k, budget = LOOP_SIZES[check_choice("scale", scale, tuple(LOOP_SIZES))]
        stream = overrides.pop("stream", SCALE_STREAMS[scale])
        stream_keys = set(StreamConfig.__dataclass_fields__)
        stream = replace(stream, **{key: overrides.pop(key) for key in list(overrides) if key in stream_keys})
        return cls(scale=scale, stream=stream, **{"labels_per_request": k, "label_budget": budget, **overrides})

    @classmethod
    def from_parameters(cls, scale: str, *, arl0: float = 100.0, window_size: int = 0, label_delay: int = -1,
                        labels_per_request: int = 0, label_budget: int = -1) -> StudyConfig:
        """The notebook's parameters: 0 / -1 mean "the scale's default" (see the chapter registry)."""
        given = {"window_size": window_size, "labels_per_request": labels_per_request}
        overrides = {k: v for k, v in given.items() if v}
        if label_delay >= 0:
            overrides["label_delay"] = label_delay
        if label_budget >= 0:
            overrides["label_budget"] = label_budget
        return cls.at_scale(scale, arl0=arl0, **overrides)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["loop_signals"] = list(self.loop_signals)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StudyConfig:
        d = dict(d)
        d["stream"] = StreamConfig(**d["stream"])
        d["loop_signals"] = tuple(d["loop_signals"])
        return cls(**d)


def detection_charts(arl0: float, lam: float = 0.1, k: float = 0.5) -> dict:
    """The four charts, each with its limit calibrated for in-control ARL ``arl0`` (Markov chain)."""
    return {"shewhart": calibrate(Shewhart(3.0), arl0), "shewhart_we": calibrate(Shewhart(3.0, WE_RULES), arl0),
            "ewma": calibrate(EWMA(lam, 2.7), arl0), "cusum": calibrate(CUSUM(k, 5.0), arl0)}


def chart_designs(arl0: float, lam: float = 0.1, k: float = 0.5) -> list[dict]:
    """One row per chart: the calibrated design, its in-control ARL and its ARL at a 1-sigma shift."""
    rows = []
    for name, chart in detection_charts(arl0, lam, k).items():
        param = calibration_parameter(chart)
        rows.append({"chart": name, "label": CHART_LABELS[name], "design": describe_chart(chart),
                     param: getattr(chart, param),
                     "arl0": markov_arl(chart, 0.0), "arl1": markov_arl(chart, 1.0)})
    return rows


def format_designs(rows: list[dict]) -> str:
    """Markdown: each calibrated chart with its in-control ARL and its ARL at a 1-sigma shift (Markov chains)."""
    out = ["| chart | calibrated design | in-control ARL (windows) | ARL at a 1-sigma shift (windows) |",
           "|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['label']} | {r['design']} | {r['arl0']:.1f} | {r['arl1']:.1f} |")
    return "\n".join(out)


# -- one run ---------------------------------------------------------------------------------------
class StreamSession:
    """One seeded stream served window by window by one arm: what a study run and the live replay share.

    ``charts``: the display charts (default: the four calibrated :func:`detection_charts`), applied to
    every signal; in the ``monitor`` arm, ``cfg.loop_chart`` on ``cfg.loop_signals`` also triggers the
    loop, with its own calibration (``arl0`` times the number of trigger signals). ``exporter``: an
    :class:`~dsopt.monitor.exporter.Exporter` the service and the loop update. ``features``:
    :func:`~dsopt.studies.monitoring.data.load_features` output (loaded when None).
    """

    def __init__(self, cfg: StudyConfig, arm: str, seed: int, *, features=None, cache_dir: str | None = None,
                 charts: dict | None = None, trigger_chart=None, exporter=None):
        self.cfg, self.arm, self.seed = cfg, check_choice("arm", arm, ARMS), int(seed)
        sc = cfg.stream
        self.features = feats = features if features is not None else load_features(cfg.scale, cache_dir=cache_dir,
                                                                                      progress=False)
        pools = feats.pools
        self.launch = launch_model(feats)
        drift = EmbeddingDrift(cfg.drift_components).fit(feats.reference)
        self.stream = stream = build_stream(sc, seed, pools.sst_y, pools.fpb_y)
        self.X = np.empty((stream.new.size, feats.sst.shape[1]), dtype=np.float32)
        self.X[~stream.new] = feats.sst[stream.index[~stream.new]]
        self.X[stream.new] = feats.fpb[stream.index[stream.new]]
        self.charts = dict(charts) if charts is not None else detection_charts(cfg.arl0, cfg.lam, cfg.k)
        self.triggers = None
        if arm == "monitor":
            trig = trigger_chart or detection_charts(cfg.arl0 * len(cfg.loop_signals), cfg.lam, cfg.k)[cfg.loop_chart]
            self.charts["trigger"] = trig
            self.triggers = {(s, "trigger") for s in cfg.loop_signals}
        monitor = SignalMonitor(self.charts, signals=DETECTION_SIGNALS, reference_windows=sc.reference_windows,
                                rebaseline_windows=cfg.rebaseline_windows)
        self.service = ModelService(copy.deepcopy(self.launch), CLASS_NAMES, window_size=sc.window_size,
                                    monitor=monitor, drift=drift, exporter=exporter,
                                    keep_features=4 * max(cfg.labels_per_request, sc.window_size))
        self.example_steps = 0
        n_requests = cfg.label_budget // cfg.labels_per_request
        self.schedule: set[int] = set()
        if arm == "periodic" and n_requests:
            span = sc.n_windows - sc.reference_windows
            self.schedule = {sc.reference_windows + round((j + 1) * span / (n_requests + 1)) for j in range(n_requests)}
        self._tmp = tempfile.TemporaryDirectory(prefix="dsopt-07-store-")
        self.loop = None
        if arm != "none":
            self.loop = RetrainingLoop(self.service, ModelStore(Path(self._tmp.name)), self._finetune,
                                       lambda ids: stream.label[np.asarray(ids)], budget=cfg.label_budget,
                                       k=cfg.labels_per_request, label_delay=sc.label_delay,
                                       val_fraction=cfg.val_fraction, triggers=self.triggers or set(), seed=seed)
        self._pending: dict[int, np.ndarray] = {}
        self.t = 0
        self.out = {"arm": arm, "seed": self.seed, "n_windows": sc.n_windows, "change_window": sc.change_window,
                    "reference_windows": sc.reference_windows,
                    "ramp_end_window": -(-(sc.change_item + sc.ramp_items) // sc.window_size),
                    "launch_accuracy": accuracy(self.launch, feats.reference, pools.reference_y),
                    "launch_accuracy_news": accuracy(self.launch, feats.fpb, pools.fpb_y),
                    "accuracy": [], "new_fraction": [], "version": [], "drift": [], "confidence": [],
                    "alarms": {}, "charts": {}}

    def _finetune(self, model, x, y):
        cfg = self.cfg
        self.example_steps += cfg.finetune_steps * (2 * len(y))  # new labels + as many replayed ones
        return finetune_classifier(model, x, y, steps=cfg.finetune_steps, lr=cfg.finetune_lr,
                                   replay=(self.features.train, self.features.pools.train_y), seed=self.seed)

    @property
    def done(self) -> bool:
        return self.t >= self.cfg.stream.n_windows

    def set_charts(self, charts: dict) -> list[str]:
        """Replace display charts (and the trigger, under the name ``"trigger"``) from the next window on."""
        changed = self.service.monitor.set_charts(charts)
        self.charts.update(charts)
        return changed

    def step(self) -> dict:
        """Serve the next window: predict, deliver due labels, run the loop. Returns what happened."""
        if self.done:
            raise RuntimeError("the stream has ended")
        t, sc, stream, out = self.t, self.cfg.stream, self.stream, self.out
        sl = stream.window_items(t)
        ids = np.arange(sl.start, sl.stop)
        batch = self.service.predict(self.X[sl], ids=ids)
        records = list(batch.records)
        self._pending[t + sc.label_delay] = ids[stream.audited[sl]]
        arrived = self._pending.pop(t, None)
        if arrived is not None and arrived.size:
            records += self.service.add_labels(arrived.tolist(), stream.label[arrived].tolist())
        n_events = len(self.loop.events) if self.loop is not None else 0
        if self.loop is not None:
            self.loop.on_records(t, records)
            if t in self.schedule:
                self.loop.request(t, reason="schedule")
            self.loop.tick(t)
        w = self.service.windows[t]
        acc = float((batch.pred == stream.label[sl]).mean())
        out["accuracy"].append(acc)
        out["new_fraction"].append(float(stream.new[sl].mean()))
        out["version"].append(int(self.service.version))
        out["drift"].append(w["drift"])
        out["confidence"].append(w["mean_confidence"])
        for r in records:
            key = f"{r.signal}/{r.chart}"
            if r.alarm:
                out["alarms"].setdefault(key, []).append(t)
            if key in DRAWN_SERIES:  # the series the figures draw (the rest: alarms only, to keep runs small)
                series = out["charts"].setdefault(key, {"window": [], "statistic": [], "upper": [], "alarm": []})
                series["window"].append(r.window)
                series["statistic"].append(round(r.statistic, 5))
                series["upper"].append(round(r.upper, 5))
                series["alarm"].append(bool(r.alarm))
        self.t += 1
        events = self.loop.events[n_events:] if self.loop is not None else []
        return {"window": t, "accuracy": acc, "new_fraction": out["new_fraction"][-1], "version": self.service.version,
                "drift": w["drift"], "confidence": w["mean_confidence"], "records": records, "events": events}

    def result(self) -> dict:
        """The run's JSON-able output (series per window, alarms, chart series, loop events, costs)."""
        out = dict(self.out)
        out["error"] = [w["error"] for w in self.service.windows]
        out["error_n"] = [w["labelled"] for w in self.service.windows]
        loop = self.loop
        out["events"] = [[e.window, e.event, e.info] for e in loop.events] if loop is not None else []
        out["labels_spent"] = loop.spent if loop is not None else 0
        out["compute_seconds"] = loop.compute_seconds if loop is not None else 0.0
        out["audit_labels"] = int(self.stream.audited[: self.t * self.cfg.stream.window_size].sum())
        out["finetune_example_steps"] = self.example_steps
        out["retrains"] = sum(1 for e in out["events"] if e[1] == "candidate_trained")
        out["promotions"] = sum(1 for e in out["events"] if e[1] == "promoted")
        return out

    def close(self) -> None:
        self._tmp.cleanup()


def run_arm(config: dict, arm: str, seed: int, *, cache_dir: str | None = None, threads: int | None = 1) -> dict:
    """Serve stream ``seed`` with arm ``arm``; return the per-window series and what the loop did."""
    from threadpoolctl import threadpool_limits

    check_choice("arm", arm, ARMS)
    with torch_threads(threads), threadpool_limits(limits=threads or None):  # BLAS too: one thread per run
        session = StreamSession(StudyConfig.from_dict(config), arm, seed, cache_dir=cache_dir)
        try:
            while not session.done:
                session.step()
            return session.result()
        finally:
            session.close()


# -- the grid ------------------------------------------------------------------------------------
def compare_arms(config: StudyConfig, seeds: list[int], *, cache_dir: str | Path | None = None,
                 workers: int | None = 1, progress: bool = True) -> dict:
    """Run every (arm, seed); return ``{"config", "runs"}``. Embeddings are computed first, once."""
    emb_dir = str(Path(cache_dir) / "embeddings") if cache_dir else None
    jobs = [(arm, int(s)) for arm in ARMS for s in seeds]
    conf = config.as_dict()
    done = run_jobs(jobs, run_arm, lambda job: ((conf, job[0], job[1]), {"cache_dir": emb_dir}),
                    key=lambda job: cache_key("monitoring", conf, job), cache_dir=cache_dir, workers=workers,
                    progress=progress, desc="arms x seeds")
    return {"config": conf, "runs": [done[j] for j in jobs]}


# -- derived tables --------------------------------------------------------------------------------
def decay_period(accuracy: list[float], start: int, launch: float, margin: float, smooth: int) -> tuple[int, bool]:
    """Windows from ``start`` (the shift's first window) until the served accuracy, as a trailing mean
    over ``smooth`` windows (those before ``start`` count too: the same model served them), falls more
    than ``margin`` below ``launch``; returns (value, censored). A run that never falls that far is
    censored: the value is the number of windows observed, a lower bound."""
    acc = np.asarray(accuracy, dtype=float)
    smooth = check_number("smooth", smooth, low=1, integer=True)
    for t in range(start, acc.size):
        if acc[max(0, t - smooth + 1):t + 1].mean() < launch - margin:
            return t - start + 1, False
    return acc.size - start, True


def detection(run: dict, signal: str, chart: str) -> dict:
    """Detection delay (windows after the change) and false alarms before it, for one run."""
    ticks = run["alarms"].get(f"{signal}/{chart}", [])
    change, ref = run["change_window"], run["reference_windows"]
    false = [t for t in ticks if ref <= t < change]
    after = [t for t in ticks if t >= change]
    return {"delay": (after[0] - change) if after else None, "false_alarms": len(false),
            "monitored_windows": change - ref}


def summarize(runs: list[dict], *, margin: float = 0.10, smooth: int = 10) -> dict:
    """Detection table, arm table and per-seed series (for the verdict) from the runs."""
    by = {(r["arm"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    det_rows = []
    for signal in DETECTION_SIGNALS:
        for chart in CHART_NAMES:
            per = [detection(by[("none", s)], signal, chart) for s in seeds if ("none", s) in by]
            delays = [p["delay"] for p in per if p["delay"] is not None]
            d_mean, d_sd = mean_sd(delays) if delays else (float("nan"), float("nan"))
            fa_mean, _ = mean_sd([p["false_alarms"] for p in per]) if per else (float("nan"), float("nan"))
            det_rows.append({"signal": signal, "chart": chart, "label": CHART_LABELS[chart], "n_seeds": len(per),
                             "detected": len(delays), "delay_mean": d_mean, "delay_sd": d_sd,
                             "delays": [p["delay"] for p in per], "false_alarms_mean": fa_mean,
                             "false_alarms": [p["false_alarms"] for p in per],
                             "monitored_windows": per[0]["monitored_windows"] if per else 0})
    arm_rows, per_seed = [], {}
    for arm in ARMS:
        sel = [by[(arm, s)] for s in seeds if (arm, s) in by]
        if not sel:
            continue
        vals = {"decay": [], "censored": [], "acc_before": [], "acc_shift": [], "acc_after": [], "labels": [],
                "example_steps": [], "compute_seconds": [], "retrains": [], "promotions": []}
        for r in sel:
            change, ref, n, ramp_end = r["change_window"], r["reference_windows"], r["n_windows"], r["ramp_end_window"]
            d, c = decay_period(r["accuracy"], change, r["launch_accuracy"], margin, smooth)
            acc = np.asarray(r["accuracy"])
            vals["decay"].append(d)
            vals["censored"].append(c)
            vals["acc_before"].append(float(acc[ref:change].mean()))
            vals["acc_shift"].append(float(acc[change:].mean()))
            vals["acc_after"].append(float(acc[ramp_end:].mean()) if ramp_end < n else float("nan"))
            vals["labels"].append(r["labels_spent"])
            vals["example_steps"].append(r["finetune_example_steps"])
            vals["compute_seconds"].append(r["compute_seconds"])
            vals["retrains"].append(r["retrains"])
            vals["promotions"].append(r["promotions"])
        per_seed[arm] = {"seeds": [r["seed"] for r in sel], **vals}
        row = {"arm": arm, "n_seeds": len(sel), "censored": int(sum(vals["censored"])),
               "launch_accuracy": sel[0]["launch_accuracy"], "launch_accuracy_news": sel[0]["launch_accuracy_news"]}
        for key in ("decay", "acc_before", "acc_shift", "acc_after", "labels", "example_steps", "compute_seconds",
                    "retrains", "promotions"):
            row[key], row[key + "_sd"] = mean_sd(vals[key])
        arm_rows.append(row)
    first = runs[0]
    return {"detection": det_rows, "arms": arm_rows, "per_seed": per_seed, "seeds": seeds, "margin": margin,
            "smooth": smooth, "n_windows": first["n_windows"], "change_window": first["change_window"],
            "reference_windows": first["reference_windows"],
            "accuracy_curves": {arm: np.mean([by[(arm, s)]["accuracy"] for s in seeds if (arm, s) in by], 0).tolist()
                                for arm in ARMS if any((arm, s) in by for s in seeds)}}


def _fmt(mean: float, sd: float, digits: int = 1, scale: float = 1.0) -> str:
    if mean != mean:
        return "-"
    return f"{scale * mean:.{digits}f}" + ("" if sd != sd else f" +- {scale * sd:.{digits}f}")


def format_detection_table(summary: dict) -> str:
    """Markdown: per signal and chart, detection delay and false alarms before the change."""
    out = ["| signal | chart | detected | delay after the change (windows) | false alarms before it (per stream) |",
           "|---|---|---|---|---|"]
    for r in summary["detection"]:
        out.append(f"| {r['signal']} | {r['label']} | {r['detected']}/{r['n_seeds']} | "
                   f"{_fmt(r['delay_mean'], r['delay_sd'])} | {_fmt(r['false_alarms_mean'], float('nan'), 2)} "
                   f"in {r['monitored_windows']} windows |")
    return "\n".join(out)


ARM_LABELS = {"none": "no monitoring", "monitor": "monitoring + retraining loop", "periodic": "periodic retraining"}


def format_arm_table(summary: dict) -> str:
    """Markdown: accuracy before and during the shift, decay period, labels and compute per arm."""
    out = ["| arm | accuracy before the shift (%) | accuracy from the shift on (%) | after the ramp (%) | "
           "decay period (windows) | labels spent | retrains (promoted) | fine-tune example-steps |",
           "|---|---|---|---|---|---|---|---|"]
    for r in summary["arms"]:
        cens = f" ({r['censored']} censored)" if r["censored"] else ""
        out.append(f"| {ARM_LABELS[r['arm']]} | {_fmt(r['acc_before'], r['acc_before_sd'], 1, 100)} | "
                   f"{_fmt(r['acc_shift'], r['acc_shift_sd'], 1, 100)} | {_fmt(r['acc_after'], r['acc_after_sd'], 1, 100)} | "
                   f"{_fmt(r['decay'], r['decay_sd'])}{cens} | {_fmt(r['labels'], r['labels_sd'], 0)} | "
                   f"{r['retrains']:.1f} ({r['promotions']:.1f}) | {_fmt(r['example_steps'], r['example_steps_sd'], 0)} |")
    return "\n".join(out)
