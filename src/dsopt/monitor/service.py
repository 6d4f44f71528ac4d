"""An in-process model service: batch prediction over a stream, monitored in windows, exported to Prometheus.

The served model is ``features -> logits`` (a torch module); ``featurize`` turns raw inputs into
features (e.g. a frozen sentence encoder) and is not retrained, so the retraining loop swaps only
the model. Every ``window_size`` predictions close a window: its mean confidence, predicted-class
mix and embedding drift score go to the :class:`~dsopt.monitor.signals.SignalMonitor`; delayed
labels (:meth:`ModelService.add_labels`) give the window's error rate when they arrive.

Thread safety: ``predict`` may run on one thread while the retraining loop swaps the model on
another (:meth:`swap_model` replaces a reference under a lock; a batch always uses one model from
start to end). Metric updates never wait on the HTTP exporter.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from dsopt.monitor.drift import EmbeddingDrift
from dsopt.monitor.exporter import Exporter
from dsopt.monitor.signals import ChartRecord, SignalMonitor
from dsopt.util.validation import ParameterError, check_number


@dataclass
class Batch:
    """One prediction batch: ids, predicted class, top-class probability, all probabilities."""

    ids: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    probs: np.ndarray
    latency: float
    version: int
    records: list[ChartRecord] = field(default_factory=list)


@dataclass
class _Window:
    index: int
    ids: list = field(default_factory=list)
    pred: list = field(default_factory=list)
    conf: list = field(default_factory=list)
    feats: list = field(default_factory=list)


class ModelService:
    """Serve ``model`` over a stream of batches, in windows of ``window_size`` predictions.

    Parameters
    ----------
    model: torch module ``features -> logits`` (eval mode is set here).
    class_names: names of the logits' classes (label values of the ``dsopt_predictions_total`` counter).
    featurize: raw inputs -> features (numpy or tensor); default: inputs are features already.
    window_size: predictions per monitoring window.
    monitor: charts over the window signals (None: windows are recorded, nothing is charted).
    drift: a fitted :class:`EmbeddingDrift` on the features of the launch data (None: no drift score).
    exporter: an :class:`Exporter` to update (None: no Prometheus metrics).
    version: the model's version number.
    keep_features: features of the last ``keep_features`` predictions are kept, for the retraining
        loop to train candidates on the items it asks labels for.
    """

    def __init__(self, model: torch.nn.Module, class_names: Sequence[str], *, featurize: Callable | None = None,
                 window_size: int = 50, monitor: SignalMonitor | None = None, drift: EmbeddingDrift | None = None,
                 exporter: Exporter | None = None, version: int = 0, keep_features: int = 5000):
        self.class_names = [str(c) for c in class_names]
        if len(self.class_names) < 2:
            raise ParameterError("class_names", "need at least two classes")
        self.window_size = check_number("window_size", window_size, low=1, high=1_000_000, integer=True)
        self.featurize = featurize
        self.monitor = monitor
        self.drift = drift
        self.exporter = exporter
        self._lock = threading.Lock()
        self._model = model.eval()
        self.version = int(version)
        self._window = _Window(0)
        self._seen: dict = {}  # id -> (window, predicted class)
        self._features: OrderedDict = OrderedDict()
        self.keep_features = check_number("keep_features", keep_features, low=0, integer=True)
        self._store = None
        self._make_model = None
        self._next_sync = 0.0
        self.sync_interval = 1.0
        self._next_id = 0
        self.windows: list[dict] = []
        self.labelled: dict[int, dict] = {}
        self.records: list[ChartRecord] = []
        self._children: dict = {}  # labelled metric children, looked up once (labels() costs a lock and a dict)
        if exporter is not None:
            exporter.metric("dsopt_model_version").set(self.version)
            exporter.metric("dsopt_monitor_phase").set(0)
            for c in self.class_names:  # every class exists from the first scrape on
                self._child("dsopt_predictions_total", class_name=c)

    # -- the model ---------------------------------------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        with self._lock:
            return self._model

    def swap_model(self, model: torch.nn.Module, version: int) -> None:
        """Serve ``model`` from the next batch on (atomic for readers: a batch uses one model)."""
        model.eval()
        with self._lock:
            self._model, self.version = model, int(version)
        if self.exporter is not None:
            self.exporter.metric("dsopt_model_version").set(self.version)

    def follow(self, store, make_model: Callable[[], torch.nn.Module], sync_interval: float = 1.0) -> None:
        """Serve whatever ``store`` (a :class:`~dsopt.monitor.loop.ModelStore`) names current, checking
        at most every ``sync_interval`` seconds between batches: a loop in another process can promote."""
        self._store, self._make_model = store, make_model
        self.sync_interval = float(check_number("sync_interval", sync_interval, low=0.0))
        self.sync()

    def sync(self) -> bool:
        """Load the store's current version if it differs from the one in service; True if it changed."""
        if self._store is None:
            return False
        self._next_sync = time.monotonic() + self.sync_interval
        current = self._store.current_version()
        if current is None or current == self.version:
            return False
        from dsopt.monitor.loop import StoreError

        try:
            model, version = self._store.load_model(self._make_model, current)
        except (StoreError, FileNotFoundError) as exc:  # CURRENT names no model file: keep serving, say why
            import warnings

            warnings.warn(f"dsopt: not serving version {current}: {exc}; still serving version {self.version}",
                          RuntimeWarning, stacklevel=2)
            return False
        self.swap_model(model, version)
        return True

    # -- prediction -------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, inputs, ids: Sequence | None = None) -> Batch:
        """Predict a batch; close every window it fills; return predictions and the windows' chart points."""
        if self._store is not None and time.monotonic() >= self._next_sync:
            self.sync()
        t0 = time.perf_counter()
        feats = self.featurize(inputs) if self.featurize is not None else inputs
        x = torch.as_tensor(np.asarray(feats, dtype=np.float32)) if not isinstance(feats, torch.Tensor) else feats
        with self._lock:
            model, version = self._model, self.version
        probs = torch.softmax(model(x).float(), dim=-1).numpy()
        latency = time.perf_counter() - t0
        pred = probs.argmax(1)
        conf = probs[np.arange(len(pred)), pred]
        n = len(pred)
        if ids is None:
            ids = np.arange(self._next_id, self._next_id + n)
        ids = np.asarray(ids)
        self._next_id += n
        if self.exporter is not None:
            self._export_batch(pred, conf, latency)
        batch = Batch(ids, pred, conf, probs, latency, version)
        feats_np = x.numpy() if (self.drift is not None or self.keep_features) else None
        for i in range(n):
            w = self._window
            w.ids.append(ids[i].item())
            w.pred.append(int(pred[i]))
            w.conf.append(float(conf[i]))
            if self.drift is not None:
                w.feats.append(feats_np[i])
            self._seen[ids[i].item()] = (w.index, int(pred[i]))
            if self.keep_features:
                self._features[ids[i].item()] = feats_np[i]
                if len(self._features) > self.keep_features:
                    self._features.popitem(last=False)
            if len(w.ids) >= self.window_size:
                batch.records += self._close_window()
        return batch

    def _child(self, name: str, **labels):
        key = (name, *labels.values())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.exporter.metric(name).labels(**labels)
        return child

    def _export_batch(self, pred, conf, latency) -> None:
        m = self.exporter.metric
        m("dsopt_prediction_batches_total").inc()
        m("dsopt_predict_latency_seconds").observe(latency)
        counts = np.bincount(pred, minlength=len(self.class_names))
        for c, k in zip(self.class_names, counts):
            if k:
                self._child("dsopt_predictions_total", class_name=c).inc(float(k))
        m("dsopt_prediction_confidence").observe_many(conf)

    def _close_window(self) -> list[ChartRecord]:
        w = self._window
        self._window = _Window(w.index + 1)
        conf = np.asarray(w.conf)
        pred = np.asarray(w.pred)
        row = {"window": w.index, "n": len(w.ids), "version": self.version, "mean_confidence": float(conf.mean()),
               "positive_rate": float((pred == len(self.class_names) - 1).mean()), "drift": None, "error": None,
               "labelled": 0}
        if self.drift is not None and w.feats:
            row["drift"] = self.drift.score(np.stack(w.feats))
        self.windows.append(row)
        records = []
        if self.monitor is not None:
            if row["drift"] is not None:
                records += self.monitor.observe("drift", w.index, value=row["drift"])
            records += self.monitor.observe("confidence", w.index, items=conf)
            records += self.monitor.observe("positive_rate", w.index, items=(pred == len(self.class_names) - 1))
        self.records += records
        if self.exporter is not None:
            m = self.exporter.metric
            m("dsopt_window_index").set(w.index)
            m("dsopt_window_mean_confidence").set(row["mean_confidence"])
            if row["drift"] is not None:
                m("dsopt_window_drift_score").set(row["drift"])
            self._export_records(records)
        return records

    def _export_records(self, records: list[ChartRecord]) -> None:
        m, child = self.exporter.metric, self._child
        for r in records:
            child("dsopt_chart_statistic", signal=r.signal, chart=r.chart).set(r.statistic)
            child("dsopt_chart_upper_limit", signal=r.signal, chart=r.chart).set(r.upper)
            child("dsopt_chart_lower_limit", signal=r.signal, chart=r.chart).set(r.lower)
            child("dsopt_chart_alarm", signal=r.signal, chart=r.chart).set(1 if r.alarm else 0)
            if r.alarm:
                child("dsopt_chart_alarms_total", signal=r.signal, chart=r.chart).inc()
        if self.monitor is not None:
            m("dsopt_monitor_phase").set(1 if all(self.monitor.monitoring(s) for s in self.monitor.signals
                                                  if s != "error" or self.labelled) else 0)

    # -- delayed labels ---------------------------------------------------------------------------
    def add_labels(self, ids: Sequence, labels: Sequence[int]) -> list[ChartRecord]:
        """Labels arrive for earlier predictions: record errors per window and chart each window's error rate.

        One call is one delivery; each window in it is charted once with the labelled items it brings.
        Unknown ids are refused (nothing recorded).
        """
        ids, labels = list(ids), [int(v) for v in labels]
        if len(ids) != len(labels):
            raise ParameterError("labels", f"got {len(labels)} labels for {len(ids)} ids")
        unknown = [i for i in ids if i not in self._seen]
        if unknown:
            raise ParameterError("ids", f"no prediction was served for ids {unknown[:5]}")
        by_window: dict[int, list[int]] = {}
        for i, y in zip(ids, labels):
            window, pred = self._seen[i]
            by_window.setdefault(window, []).append(int(pred != y))
        records = []
        for window in sorted(by_window):
            errors = np.asarray(by_window[window], dtype=float)
            info = self.labelled.setdefault(window, {"n": 0, "errors": 0})
            info["n"] += errors.size
            info["errors"] += int(errors.sum())
            if window < len(self.windows):
                self.windows[window]["error"] = info["errors"] / info["n"]
                self.windows[window]["labelled"] = info["n"]
            if self.monitor is not None:
                records += self.monitor.observe("error", window, items=errors)
            if self.exporter is not None:
                self.exporter.metric("dsopt_window_error_rate").set(float(errors.mean()))
                self.exporter.metric("dsopt_window_labelled_items").set(errors.size)
        if self.exporter is not None:
            self.exporter.metric("dsopt_labels_received_total").inc(len(ids))
            self._export_records(records)
        self.records += records
        return records

    def recent_ids(self) -> list:
        """Ids of the most recent predictions whose features are kept, oldest first."""
        return list(self._features)

    def features_of(self, ids: Sequence) -> np.ndarray:
        """Features served for ``ids`` (only the last ``keep_features`` predictions are kept)."""
        missing = [i for i in ids if i not in self._features]
        if missing:
            raise ParameterError("ids", f"features of ids {missing[:5]} are no longer kept (keep_features="
                                        f"{self.keep_features})")
        return np.stack([self._features[i] for i in ids])

    def prediction_of(self, item_id) -> tuple[int, int]:
        """(window, predicted class) served for ``item_id``."""
        return self._seen[item_id]
