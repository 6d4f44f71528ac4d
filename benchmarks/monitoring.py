"""Chapter 07 benchmarks, each a ratio against a baseline measured in the same run.

1. Exporter cost per prediction batch: the instrumented service (prometheus_client metrics updated, the
   HTTP exporter serving and a scraper polling it) against the same service without an exporter, on the
   same batches; target <= 1.05. Two cases: the real model (MiniLM encoder + head on texts: what a batch
   costs in service) and the head alone on cached embeddings (the worst case for the exporter's share).
2. ARL simulation throughput: chart-steps per second of the vectorised simulation (charts x runs x points),
   and the speed-up over stepping one run at a time through the same ``chart.step``.

usage: python benchmarks/monitoring.py [--batches 40] [--batch-size 32] [--repeats 5] [--no-encoder]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import threading
import time
import urllib.request

import numpy as np
import torch

import report

if __name__ == "__main__" and importlib.util.find_spec("prometheus_client") is None:  # the exporter needs it
    report.skip("monitoring", "prometheus_client is not installed (pip install prometheus_client)")

from dsopt.monitor import CUSUM, EWMA, WE_RULES, EmbeddingDrift, Shewhart, simulate_arl
from dsopt.monitor.exporter import Exporter
from dsopt.monitor.service import ModelService
from dsopt.monitor.signals import SignalMonitor


def _service(model, featurize, exporter, drift):
    charts = {"ewma": EWMA(0.1, 2.7), "cusum": CUSUM(0.5, 5.0), "shewhart_we": Shewhart(3.0, WE_RULES)}
    monitor = SignalMonitor(charts, signals=("drift", "confidence"), reference_windows=5)
    return ModelService(model, ["negative", "positive"], featurize=featurize, window_size=32, monitor=monitor,
                        drift=drift, exporter=exporter)


def _time_batches(service, batches) -> float:
    t0 = time.perf_counter()
    for b in batches:
        service.predict(b)
    return (time.perf_counter() - t0) / len(batches)


def exporter_cost(model, featurize, batches, drift, repeats: int) -> dict:
    """Median seconds per batch with and without the exporter (alternating, same batches, warm), and the
    per-repeat paired ratios instrumented / plain."""
    plain_t, inst_t = [], []
    ex = Exporter().start()
    stop = threading.Event()

    def scraper():  # a Prometheus-like client polling every 0.2 s
        while not stop.is_set():
            try:
                urllib.request.urlopen(ex.url, timeout=2).read()
            except OSError:
                pass
            stop.wait(0.2)

    thread = threading.Thread(target=scraper, daemon=True)
    thread.start()
    try:
        _time_batches(_service(model, featurize, None, drift), batches[:3])  # warm-up
        for _ in range(repeats):
            plain_t.append(_time_batches(_service(model, featurize, None, drift), batches))
            inst_t.append(_time_batches(_service(model, featurize, ex, drift), batches))
    finally:
        stop.set()
        thread.join(5)
        ex.stop()
    plain, inst = statistics.median(plain_t), statistics.median(inst_t)
    return {"plain_ms": 1000 * plain, "instrumented_ms": 1000 * inst, "ratio": inst / plain,
            "repeat_ratios": [b / a for a, b in zip(plain_t, inst_t)]}


def arl_throughput(runs: int = 20_000) -> dict:
    charts = {"shewhart_we": Shewhart(3.0, WE_RULES), "ewma": EWMA(0.1, 2.7), "cusum": CUSUM(0.5, 5.0)}
    steps, t0 = 0, time.perf_counter()
    for chart in charts.values():
        r = simulate_arl(chart, 1.0, runs=runs, seed=0)
        steps += int(r["run_lengths"].sum())
    vec = time.perf_counter() - t0
    # the same chart.step one run at a time (the loop a non-vectorised simulation would run)
    rng = np.random.default_rng(0)
    one_steps, t0 = 0, time.perf_counter()
    for chart in charts.values():
        for _ in range(200):
            state = chart.init(1)
            while True:
                state, p = chart.step(state, rng.standard_normal(1) + 1.0)
                one_steps += 1
                if p.alarm[0]:
                    break
    one = time.perf_counter() - t0
    return {"charts": len(charts), "runs": runs, "chart_steps": steps, "seconds": vec,
            "chart_steps_per_s": steps / vec, "chart_runs_per_s": len(charts) * runs / vec,
            "one_at_a_time_steps_per_s": one_steps / one, "speedup": (steps / vec) / (one_steps / one)}


def _record(r: dict, name: str, repeats: int) -> None:
    report.record("monitoring", f"{name}: instrumented / plain",
                  baseline=(r["plain_ms"], "ms/batch", f"service without exporter, median of {repeats}"),
                  measured=(r["instrumented_ms"], "ms/batch", f"with exporter + scraper, median of {repeats}"),
                  ratio=r["ratio"], target="<= 1.05", repeats=r["repeat_ratios"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-encoder", action="store_true", help="skip the MiniLM case")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; torch threads {args.threads}")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    head = torch.nn.Linear(384, 2).eval()
    drift = EmbeddingDrift(10).fit(rng.standard_normal((500, 384)).astype(np.float32))
    emb = [rng.standard_normal((args.batch_size, 384)).astype(np.float32) for _ in range(args.batches)]
    r = exporter_cost(head, None, emb, drift, args.repeats)
    print(f"exporter cost, head on cached embeddings ({args.batches} batches of {args.batch_size}): "
          f"{r['plain_ms']:.3f} ms -> {r['instrumented_ms']:.3f} ms per batch, ratio {r['ratio']:.3f} (target <= 1.05)")
    _record(r, "exporter cost, head on cached embeddings", args.repeats)
    if not args.no_encoder:
        from dsopt.data import load
        from dsopt.models.minilm import load_minilm, minilm_embed
        from dsopt.models.tokenize import load_minilm_tokenizer

        enc, tok = load_minilm(), load_minilm_tokenizer()
        texts = load("sst2", "dev", progress=False).texts
        batches = [texts[i * args.batch_size:(i + 1) * args.batch_size] for i in range(min(args.batches, 12))]

        def featurize(b):
            return minilm_embed(b, args.batch_size, encoder=enc, tokenizer=tok, max_length=64).numpy()

        r = exporter_cost(head, featurize, batches, drift, max(2, args.repeats // 2))
        print(f"exporter cost, MiniLM + head on SST-2 texts ({len(batches)} batches of {args.batch_size}): "
              f"{r['plain_ms']:.1f} ms -> {r['instrumented_ms']:.1f} ms per batch, ratio {r['ratio']:.3f} "
              f"(target <= 1.05)")
        _record(r, "exporter cost, MiniLM + head on SST-2", max(2, args.repeats // 2))
    t = arl_throughput()
    print(f"ARL simulation: {t['charts']} charts x {t['runs']} runs at a 1-sigma shift: {t['chart_steps']:,} chart-steps "
          f"in {t['seconds']:.2f} s = {t['chart_steps_per_s']:,.0f} chart-steps/s ({t['chart_runs_per_s']:,.0f} "
          f"chart-runs/s); one run at a time: {t['one_at_a_time_steps_per_s']:,.0f} steps/s -> vectorised x{t['speedup']:.0f}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
