"""``dsopt monitor prometheus``: a local Prometheus on 127.0.0.1 for dsopt exporters (registered in
``dsopt.chapters.cli``, resolved by name when the command runs)."""
from __future__ import annotations

import signal
import sys
import threading

from dsopt.monitor.prometheus import PrometheusServer, find_prometheus, free_port


def cmd_prometheus(args) -> int:
    """Start Prometheus scraping ``--target``s (itself when none), print its URL, run until Ctrl-C/SIGTERM
    (or ``--duration``), then stop it and remove its temporary folder."""
    find_prometheus()  # a missing binary is refused before anything starts, with the fix
    port = args.port or free_port()
    targets = list(args.target) or [f"127.0.0.1:{port}"]  # no exporter given: Prometheus scrapes itself
    done = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        with PrometheusServer(targets, scrape_interval=args.scrape_interval, port=port) as prom:
            print(f"prometheus: {prom.url}  (scraping {', '.join(targets)} every {args.scrape_interval})", flush=True)
            print(f"  query API: {prom.url}/api/v1/query?query=up   stop: Ctrl-C", flush=True)
            try:
                done.wait(args.duration)
            except KeyboardInterrupt:
                pass
        print("prometheus: stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
