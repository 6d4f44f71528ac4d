"""Run a real, local Prometheus (Debian's ``prometheus`` package) that scrapes dsopt exporters.

:class:`PrometheusServer` writes a scrape config into a temporary folder, starts
``prometheus --config.file=... --storage.tsdb.path=... --web.listen-address=127.0.0.1:PORT`` in its
own process group, waits until ``/-/ready`` answers, and on :meth:`stop` (or leaving the ``with``
block, or garbage collection / interpreter exit) terminates it and removes the folder. The HTTP API
helpers (:meth:`query`, :meth:`query_range`, :meth:`targets`) read what it scraped. Nothing is
downloaded; the binary comes from ``apt-get install prometheus`` (or ``DSOPT_PROMETHEUS``).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Sequence
from pathlib import Path

from dsopt.util.atomic import atomic_write_text
from dsopt.util.validation import ParameterError, check_number


class PrometheusNotFound(FileNotFoundError):
    """No prometheus binary. Picklable (all constructor arguments reach ``super().__init__``)."""

    def __init__(self, message: str = "prometheus not found"):
        super().__init__(message)


class PrometheusError(RuntimeError):
    """Prometheus did not start or its API answered with an error."""

    def __init__(self, message: str):
        super().__init__(message)


def find_prometheus(binary: str | None = None) -> str:
    """Path of the prometheus binary: ``binary``, else ``$DSOPT_PROMETHEUS``, else ``prometheus`` on PATH."""
    candidate = binary or os.environ.get("DSOPT_PROMETHEUS") or shutil.which("prometheus")
    if not candidate or not (Path(candidate).is_file() and os.access(candidate, os.X_OK)):
        raise PrometheusNotFound(
            "the prometheus server binary was not found" + (f" at {candidate}" if candidate else " on PATH")
            + ": install Debian's package (`sudo apt-get install prometheus`; nothing has to run as a service) "
            "or point DSOPT_PROMETHEUS at a prometheus binary")
    return str(candidate)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago on ``host``."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _check_duration(name: str, value: str) -> str:
    import re

    if not isinstance(value, str) or not re.fullmatch(r"\d+(ms|s|m|h)", value):
        raise ParameterError(name, f"{name} must be a Prometheus duration such as '1s', '500ms' or '1m'; got {value!r}")
    return value


def scrape_config(targets: Sequence[str], *, scrape_interval: str = "1s", job: str = "dsopt") -> dict:
    """Prometheus configuration scraping ``targets`` (``host:port``) every ``scrape_interval``."""
    for t in targets:
        host, _, port = str(t).rpartition(":")
        if not host or not port.isdigit():
            raise ParameterError("targets", f"each target must be 'host:port'; got {t!r}")
    _check_duration("scrape_interval", scrape_interval)
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [{"job_name": job, "scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                            "static_configs": [{"targets": [str(t) for t in targets]}]}],
    }


def _terminate(proc: subprocess.Popen, folder: str | None, owned: bool) -> None:
    """Stop the process group, then remove the temporary folder (also used as a GC/exit finaliser)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
    if owned and folder:
        shutil.rmtree(folder, ignore_errors=True)


class PrometheusServer:
    """A local Prometheus on 127.0.0.1 scraping ``targets``; use as a context manager or call stop().

    Parameters
    ----------
    targets: exporters to scrape, ``"127.0.0.1:PORT"``.
    scrape_interval: e.g. ``"1s"`` (short, so that a notebook sees its series within seconds).
    port: where Prometheus listens (default: a free port).
    storage_dir: TSDB folder (default: inside a temporary folder removed on stop).
    retention: how long samples are kept (``--storage.tsdb.retention.time``).
    """

    def __init__(self, targets: Sequence[str], *, scrape_interval: str = "1s", port: int | None = None,
                 binary: str | None = None, storage_dir: str | os.PathLike | None = None, retention: str = "2h",
                 host: str = "127.0.0.1", job: str = "dsopt", startup_timeout: float = 60.0):
        self.config = scrape_config(targets, scrape_interval=scrape_interval, job=job)
        self.targets = [str(t) for t in targets]
        self.retention = _check_duration("retention", retention)
        self.port = None if port is None else check_number("port", port, low=1, high=65535, integer=True)
        self.binary = binary
        self.host = host
        self.storage_dir = storage_dir
        self.startup_timeout = check_number("startup_timeout", startup_timeout, low=1, high=600)
        self.proc: subprocess.Popen | None = None
        self.folder: str | None = None
        self._finalizer = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> PrometheusServer:
        if self.running:
            return self
        binary = find_prometheus(self.binary)
        self.folder = tempfile.mkdtemp(prefix="dsopt-prometheus-")
        config_path = Path(self.folder) / "prometheus.yml"
        atomic_write_text(config_path, json.dumps(self.config, indent=2))  # JSON is valid YAML
        storage = Path(self.storage_dir) if self.storage_dir else Path(self.folder) / "data"
        storage.mkdir(parents=True, exist_ok=True)
        self.log_path = Path(self.folder) / "prometheus.log"
        attempts = 1 if self.port else 5  # a probed free port can be taken before prometheus binds it
        for _ in range(attempts):
            port = self.port or free_port(self.host)
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [binary, f"--config.file={config_path}", f"--storage.tsdb.path={storage}",
                     f"--storage.tsdb.retention.time={self.retention}", f"--web.listen-address={self.host}:{port}",
                     "--web.enable-lifecycle"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            finally:
                log.close()
            self._finalizer = weakref.finalize(self, _terminate, self.proc, self.folder, True)
            self.url = f"http://{self.host}:{port}"
            if self._wait_ready():
                self.port = port
                return self
            self._finalizer.detach()
            _terminate(self.proc, None, False)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None
        raise PrometheusError(f"prometheus did not become ready within {self.startup_timeout:g} s; its log ends:\n{tail}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        return False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Terminate Prometheus (SIGTERM, then SIGKILL after 15 s) and remove its temporary folder."""
        if self._finalizer is not None:
            self._finalizer()  # runs _terminate once
            self._finalizer = None
        self.folder = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- HTTP API ------------------------------------------------------------------------------------
    def _get(self, path: str, **params) -> dict:
        if not self.running:
            raise PrometheusError("prometheus is not running: call start() first")
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"prometheus API {path} answered {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """Instant query: ``[{"metric": {...labels}, "value": [time, "text value"]}, ...]``."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._get("/api/v1/query", **params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        """Range query: ``[{"metric": {...}, "values": [[time, "value"], ...]}, ...]``."""
        return self._get("/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}",
                         step=f"{step:g}")["result"]

    def targets_health(self) -> list[dict]:
        """Active scrape targets with their health ("up"/"down") and last error."""
        return self._get("/api/v1/targets")["activeTargets"]

    def wait_for(self, expr: str, timeout: float = 30.0, predicate=None) -> list[dict]:
        """Poll ``expr`` until it returns a non-empty result (accepted by ``predicate``); return it."""
        deadline = time.monotonic() + timeout
        result: list = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result and (predicate is None or predicate(result)):
                return result
            time.sleep(0.25)
        raise PrometheusError(f"no result for {expr!r} within {timeout:g} s (last: {result!r})")


def values_by_label(result: list[dict], label: str | None = None) -> dict:
    """Instant-query result -> ``{label value (or "") : float}``."""
    return {(r["metric"].get(label, "") if label else ""): float(r["value"][1]) for r in result}
