"""Prometheus exporter for a model service: the metrics of :mod:`dsopt.monitor.prom_metrics` on their
own ``CollectorRegistry``, served over HTTP on 127.0.0.1.

Updating a metric is a few lock-protected float operations on the caller's thread; the HTTP server
answers scrapes on its own daemon threads (one per connection), so a slow or stuck scraper never
delays a prediction. ``stop()`` shuts the server down and joins its thread. The registry is private:
two services (or tests) in one process never mix their series.
"""
from __future__ import annotations

import math
import threading

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server
from prometheus_client.core import HistogramMetricFamily

from dsopt.monitor.prom_metrics import COUNTER, GAUGE, METRICS, MetricSpec
from dsopt.util.validation import check_number

_TYPES = {COUNTER: Counter, GAUGE: Gauge}


class BatchHistogram:
    """A Prometheus histogram that takes a whole batch of observations in one vectorised update.

    prometheus_client's Histogram observes one value per call (a Python loop over the buckets); a
    prediction batch has one confidence per item, so this collector bins them with numpy instead.
    Same exposition as a Histogram: cumulative ``_bucket{le=...}``, ``_count`` and ``_sum``.
    """

    def __init__(self, name: str, documentation: str, buckets, registry: CollectorRegistry):
        self.name, self.documentation = name, documentation
        self.upper = np.array(sorted(float(b) for b in buckets if math.isfinite(b)) + [math.inf])
        self._counts = np.zeros(self.upper.size, dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe(self, value: float) -> None:
        self.observe_many([value])

    def observe_many(self, values) -> None:
        v = np.asarray(values, dtype=float).reshape(-1)
        if v.size == 0:
            return
        counts = np.bincount(np.searchsorted(self.upper, v, side="left"), minlength=self.upper.size)
        total = float(v.sum())
        with self._lock:
            self._counts += counts
            self._sum += total

    def snapshot(self) -> tuple[np.ndarray, float]:
        """(cumulative bucket counts, sum)."""
        with self._lock:
            return np.cumsum(self._counts), self._sum

    def describe(self):
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self):
        cum, total = self.snapshot()
        bounds = ["+Inf" if math.isinf(b) else repr(float(b)) for b in self.upper]
        yield HistogramMetricFamily(self.name, self.documentation, buckets=list(zip(bounds, cum.tolist())),
                                    sum_value=total)


def _make(spec: MetricSpec, registry: CollectorRegistry):
    # prometheus_client appends "_total" to counter names itself
    name = spec.name.removesuffix("_total") if spec.kind == COUNTER else spec.name
    if spec.kind in _TYPES:
        return _TYPES[spec.kind](name, spec.help, spec.labels, registry=registry)
    if spec.labels:
        raise ValueError(f"histogram {spec.name}: labelled histograms are not supported")
    return BatchHistogram(name, spec.help, spec.buckets, registry)


class Exporter:
    """The service's metrics (``exporter.metric(name)``) and, once :meth:`start` ed, their HTTP endpoint."""

    def __init__(self, specs: tuple[MetricSpec, ...] = METRICS):
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics = {spec.name: _make(spec, self.registry) for spec in specs}
        self._server = None
        self._thread: threading.Thread | None = None
        self.host: str | None = None
        self.port: int | None = None

    def metric(self, name: str):
        """The prometheus_client object of metric ``name`` (as named in METRICS)."""
        return self._metrics[name]

    # -- HTTP --------------------------------------------------------------------------------------
    def start(self, port: int = 0, host: str = "127.0.0.1") -> Exporter:
        """Serve ``/metrics`` on ``host:port`` (port 0 = a free port, read back in ``self.port``)."""
        if self._server is not None:
            raise RuntimeError(f"the exporter already serves on {self.address}")
        port = check_number("port", port, low=0, high=65535, integer=True)
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.host, self.port = host, int(self._server.server_port)
        return self

    @property
    def address(self) -> str:
        """``host:port`` for a Prometheus scrape config."""
        if self.port is None:
            raise RuntimeError("the exporter is not serving: call start() first")
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    @property
    def serving(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        """Stop serving (idempotent): shut the server down, close its socket, join its thread."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def text(self) -> str:
        """The exposition text a scrape would get now."""
        return generate_latest(self.registry).decode()

    def sample_names(self) -> set[str]:
        """Every sample name the registry exposes (with _bucket/_sum/_count/_created suffixes)."""
        return {s.name for family in self.registry.collect() for s in family.samples}

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self):  # a forgotten exporter must not keep its port
        try:
            self.stop()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


__all__ = ["GAUGE", "Exporter"]
