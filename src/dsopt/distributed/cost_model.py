"""Ring all-reduce cost model, its calibration on measured timings, and scaling-efficiency arithmetic.

In a ring all-reduce of ``B`` bytes over ``N`` workers every worker sends (and receives) ``2(N-1)/N * B``
bytes in ``2(N-1)`` steps (reduce-scatter, then all-gather), so

    t(N, B) = 2(N-1) * alpha + 2(N-1)/N * B / beta

with ``alpha`` the per-message latency and ``beta`` the bandwidth (bytes/s) of the slowest link in the
ring. The bandwidth term tends to ``2B/beta`` as N grows: it does not grow with N, the latency term does.

Scaling efficiency is ``speedup / N`` with ``speedup = T(1) / T(N)`` for the same work. The article's
12 h -> 3.2 h on 8 GPUs is a 3.75x speedup, i.e. 47 % efficiency, not 92 %.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from dsopt.util.validation import ParameterError, check_choice, check_number

#: Stated link bandwidths in bytes/s (nominal, one direction). Predictions at these are model outputs.
BANDWIDTHS = {
    "NVLink 2 (V100, 6 links)": 150e9,
    "100 GbE": 100e9 / 8,
    "25 GbE": 25e9 / 8,
    "10 GbE": 10e9 / 8,
}

#: Gradient sizes (fp32 bytes = 4 x parameters) of the reference models.
MODEL_GRADIENT_BYTES = {
    "ResNet-50 (25.6M parameters)": 4 * 25.6e6,
    "BERT-base (110M parameters)": 4 * 110e6,
    "BERT-large (340M parameters)": 4 * 340e6,
}

#: ASSUMED compute seconds per step per GPU (forward + backward + update), used only for predictions:
#: ResNet-50 at batch 64 on a V100 in fp32 (~330 images/s), BERT-base at batch 32 x 128 tokens.
ASSUMED_COMPUTE_S = {
    "ResNet-50 (25.6M parameters)": 0.19,
    "BERT-base (110M parameters)": 0.30,
    "BERT-large (340M parameters)": 0.90,
}

HOROVOD_PAPER = {"gpus": 128, "efficiency_low": 0.88, "efficiency_high": 0.90,
                 "source": "Sergeev & Del Balso 2018: Inception V3 / ResNet-101, 128 GPUs, ~88-90 %"}
ARTICLE = {"gpus": 8, "hours_1": 12.0, "hours_n": 3.2, "claimed_efficiency": 0.92}


def ring_allreduce_bytes(n: int, nbytes: float) -> float:
    """Bytes each worker sends in a ring all-reduce of ``nbytes`` over ``n`` workers: 2(n-1)/n * nbytes."""
    n = check_number("n", n, low=1, integer=True)
    nbytes = float(check_number("nbytes", nbytes, low=0.0))
    return 2.0 * (n - 1) / n * nbytes


def ring_allreduce_time(n: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """Seconds for one ring all-reduce: ``2(n-1) * latency + 2(n-1)/n * nbytes / bandwidth`` (0 for n = 1)."""
    bandwidth = float(check_number("bandwidth", bandwidth, low=0.0, low_inclusive=False))
    latency = float(check_number("latency", latency, low=0.0))
    return 2.0 * (check_number("n", n, low=1, integer=True) - 1) * latency + ring_allreduce_bytes(n, nbytes) / bandwidth


@dataclass(frozen=True)
class Calibration:
    """``latency`` (s per message) and ``bandwidth`` (bytes/s) fitted to measured all-reduce times."""

    latency: float
    bandwidth: float
    r2: float
    n_points: int
    max_rel_error: float

    def predict(self, n: int, nbytes: float) -> float:
        return ring_allreduce_time(n, nbytes, self.bandwidth, self.latency)


def calibrate(measurements: Iterable[tuple[int, float, float]]) -> Calibration:
    """Fit ``alpha`` (latency) and ``beta`` (bandwidth) to ``(n, nbytes, seconds)`` measurements.

    Least squares on ``t = alpha * 2(n-1) + (1/beta) * 2(n-1)/n * nbytes`` with both coefficients kept
    non-negative. Needs at least two distinct message sizes with n >= 2.
    """
    pts = [(int(n), float(b), float(t)) for n, b, t in measurements if int(n) >= 2]
    if len({b for _, b, _ in pts}) < 2:
        raise ParameterError("measurements", "calibrate needs all-reduce timings at >= 2 message sizes with n >= 2")
    A = np.array([[2.0 * (n - 1), 2.0 * (n - 1) / n * b] for n, b, _ in pts])
    y = np.array([t for _, _, t in pts])
    # Relative least squares (divide each row by its time): small messages are as important as big ones.
    w = 1.0 / y
    coef, *_ = np.linalg.lstsq(A * w[:, None], y * w, rcond=None)
    if coef[0] < 0:  # latency clipped at 0: refit the bandwidth alone
        coef = np.array([0.0, float(np.sum(A[:, 1] * y * w * w) / np.sum((A[:, 1] * w) ** 2))])
    if coef[1] <= 0:
        raise ParameterError("measurements", "the timings do not grow with message size; cannot fit a bandwidth")
    pred = A @ coef
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1e-30
    return Calibration(latency=float(coef[0]), bandwidth=float(1.0 / coef[1]), r2=1.0 - ss_res / ss_tot,
                       n_points=len(pts), max_rel_error=float(np.max(np.abs(pred - y) / y)))


def predicted_efficiency(n: int, grad_bytes: float, compute_s: float, bandwidth: float, latency: float, *,
                         overlap: float = 0.0, mode: str = "weak") -> float:
    """Scaling efficiency of data-parallel SGD predicted by the ring model.

    ``mode="weak"`` (fixed batch per worker, as in the Horovod paper): each worker computes ``compute_s``
    per step, then the exposed part of the all-reduce: ``eff = C / (C + exposed)``.
    ``mode="strong"`` (fixed global batch, as in this chapter's study): compute per worker is ``C / n``,
    ``eff = C / (n * (C / n + exposed))``. ``overlap`` in [0, 1]: the fraction of the compute time that
    can hide communication (backward is ~2/3 of it); ``exposed = max(0, t_comm - overlap * compute)``.
    """
    check_choice("mode", mode, ["weak", "strong"])
    overlap = float(check_number("overlap", overlap, low=0.0, high=1.0))
    compute_s = float(check_number("compute_s", compute_s, low=0.0, low_inclusive=False))
    n = check_number("n", n, low=1, integer=True)
    t_comm = ring_allreduce_time(n, grad_bytes, bandwidth, latency)
    per_worker = compute_s if mode == "weak" else compute_s / n
    exposed = max(0.0, t_comm - overlap * per_worker) if n > 1 else 0.0
    return per_worker / (per_worker + exposed) if mode == "weak" else compute_s / (n * (per_worker + exposed))


def prediction_table(latency: float, ns: Sequence[int] = (2, 4, 8, 16, 32, 64, 128), *,
                     bandwidths: dict[str, float] | None = None, models: dict[str, float] | None = None,
                     compute: dict[str, float] | None = None, overlap: float = 0.0) -> list[dict]:
    """Weak-scaling efficiency at every (model, bandwidth, N): rows for tables and figures."""
    bandwidths = bandwidths or BANDWIDTHS
    models = models or MODEL_GRADIENT_BYTES
    compute = compute or ASSUMED_COMPUTE_S
    rows = []
    for model, nbytes in models.items():
        for link, bw in bandwidths.items():
            for n in ns:
                rows.append({"model": model, "link": link, "n": int(n), "grad_MB": nbytes / 1e6,
                             "compute_s": compute[model], "allreduce_s": ring_allreduce_time(n, nbytes, bw, latency),
                             "efficiency": predicted_efficiency(n, nbytes, compute[model], bw, latency, overlap=overlap)})
    return rows


def scaling_efficiency(t1: float, tn: float, n: int) -> dict:
    """Speedup ``t1 / tn`` and efficiency ``speedup / n`` for the same work on 1 and ``n`` workers."""
    t1 = float(check_number("t1", t1, low=0.0, low_inclusive=False))
    tn = float(check_number("tn", tn, low=0.0, low_inclusive=False))
    n = check_number("n", n, low=1, integer=True)
    speedup = t1 / tn
    return {"speedup": speedup, "efficiency": speedup / n, "n": n, "t1": t1, "tn": tn}


def article_arithmetic(hours_1: float = ARTICLE["hours_1"], hours_n: float = ARTICLE["hours_n"],
                       n: int = ARTICLE["gpus"], claimed: float = ARTICLE["claimed_efficiency"]) -> dict:
    """The article's own numbers, redone: 12 h -> 3.2 h on 8 GPUs is 47 %; 92 % would need ~1.6 h."""
    e = scaling_efficiency(hours_1, hours_n, n)
    needed = hours_1 / (claimed * n)
    text = (f"{hours_1:g} h / {hours_n:g} h = {e['speedup']:.2f}x on {n} GPUs -> efficiency "
            f"{e['speedup']:.2f} / {n} = {100 * e['efficiency']:.0f} %. A {100 * claimed:.0f} % linear speed-up "
            f"would be {claimed * n:.2f}x, i.e. {hours_1:g} h / {claimed * n:.2f} = {needed:.2f} h.")
    return {**e, "claimed_efficiency": claimed, "hours_needed_for_claim": needed, "text": text}


def gbps(bandwidth_bytes_per_s: float) -> float:
    """Bytes/s -> Gbit/s (for labels)."""
    return 8 * bandwidth_bytes_per_s / 1e9

