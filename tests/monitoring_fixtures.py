"""Synthetic study features for fast tests of the chapter 07 mechanics (the real data and MiniLM run in
tests/test_notebook_07.py): two regimes in a 384-d space whose labels live on different directions."""
from __future__ import annotations

import numpy as np

from dsopt.studies.monitoring.data import Features, Pools


def synthetic_features(n_train=300, n_ref=150, n_sst=300, n_fpb=260, seed=0) -> Features:
    rng = np.random.default_rng(seed)

    def part(n, new):
        y = rng.integers(0, 2, n)
        x = rng.standard_normal((n, 384)).astype(np.float32) * 0.5
        x[:, 0] += np.where(y == 1, 1.0, -1.0)
        if new:  # financial news: elsewhere in the space, sentiment on another direction, more positives
            x[:, 2:40] += 0.8
            x[:, 1] += np.where(y == 1, 1.2, -1.2)
            x[:, 0] = rng.standard_normal(n) * 0.5 + 0.6
        return x / np.linalg.norm(x, axis=1, keepdims=True), y.astype(np.int64)

    (xt, yt), (xr, yr), (xs, ys), (xf, yf) = part(n_train, False), part(n_ref, False), part(n_sst, False), part(n_fpb, True)
    pools = Pools([f"t{i}" for i in range(n_train)], yt, [f"r{i}" for i in range(n_ref)], yr,
                  [f"s{i}" for i in range(n_sst)], ys, [f"f{i}" for i in range(n_fpb)], yf,
                  {"negative": int((yf == 0).sum()), "positive": int((yf == 1).sum()), "neutral_left_out": 0})
    return Features(pools, xt, xr, xs, xf)
