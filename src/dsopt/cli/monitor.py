"""``dsopt monitor prometheus`` (chapter 07): a local Prometheus on 127.0.0.1 for dsopt exporters.

:mod:`dsopt.monitor.prometheus` (which runs Debian's binary) is imported only when the command runs,
so ``dsopt --help`` never loads dsopt.monitor (numpy).
"""
from __future__ import annotations

import signal
import threading


def cmd_prometheus(args) -> int:
    """Start Prometheus scraping ``--target``s (itself when none), print its URL, run until Ctrl-C/SIGTERM
    (or ``--duration``), then stop it and remove its temporary folder."""
    from dsopt.monitor.prometheus import PrometheusServer, find_prometheus, free_port

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


def register(sub) -> None:
    """Add ``monitor`` and its tools (``prometheus``) to the ``dsopt`` subparsers."""
    p = sub.add_parser("monitor", help="chapter 07: monitoring tools").add_subparsers(dest="tool", required=True)
    p = p.add_parser("prometheus", help="start a local Prometheus (Debian's) on 127.0.0.1 and print its URL")
    p.add_argument("--target", action="append", default=[], metavar="HOST:PORT", help="an exporter to scrape (repeatable)")
    p.add_argument("--port", type=int, help="port to listen on (default: a free one)")
    p.add_argument("--scrape-interval", default="1s", help="e.g. 1s, 500ms")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    p.set_defaults(func=cmd_prometheus)
