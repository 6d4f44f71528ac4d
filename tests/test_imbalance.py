"""The imbalance knob: exact counts, determinism, refusal to go below the natural ratio."""
from __future__ import annotations

import numpy as np
import pytest

from dsopt.data.imbalance import subsample_minority
from dsopt.util.validation import ParameterError


def labels():
    y = np.zeros(1050, dtype=np.int64)
    y[np.random.default_rng(0).choice(1050, 50, replace=False)] = 1  # 1000 : 50 = 20 : 1
    return y


def test_exact_counts():
    y = labels()
    # 1000/400 = 2.5 rounds half up to 3; 1000/3000 = 1/3 rounds to 0 and is raised to the minimum of 1
    for ratio, kept in ((100, 10), (20, 50), (400, 3), (250, 4), (3000, 1)):
        idx, counts = subsample_minority(y, ratio, seed=1)
        assert counts["majority"] == 1000 and counts["minority"] == kept
        assert counts["ratio"] == pytest.approx(1000 / kept) and counts["natural_ratio"] == pytest.approx(20.0)
        assert int((y[idx] == 1).sum()) == kept and int((y[idx] == 0).sum()) == 1000
        assert np.all(np.diff(idx) > 0) and idx.dtype == np.int64


def test_deterministic_with_seed():
    y = labels()
    a, _ = subsample_minority(y, 100, seed=7)
    b, _ = subsample_minority(y, 100, seed=7)
    c, _ = subsample_minority(y, 100, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_multiclass_and_other_minority_label():
    y = np.array([0] * 30 + [1] * 30 + [2] * 12)  # majority = the 60 non-2 examples, natural 5 : 1
    idx, counts = subsample_minority(y, 20, minority=2, seed=0)
    assert counts["minority"] == 3 and len(idx) == 63 and (y[idx] == 2).sum() == 3


def test_errors_name_the_parameter():
    y = labels()
    with pytest.raises(ParameterError, match=r"ratio must be >= the natural ratio 20\.00:1") as e:
        subsample_minority(y, 19.5, seed=0)
    assert e.value.name == "ratio"
    with pytest.raises(ParameterError, match=r"ratio must be a number in \[1\.0, inf\)"):
        subsample_minority(y, 0.5, seed=0)
    with pytest.raises(ParameterError, match="minority class 3"):
        subsample_minority(y, 100, minority=3, seed=0)
    with pytest.raises(ParameterError, match="seed must be an integer"):
        subsample_minority(y, 100, seed=1.5)
    with pytest.raises(TypeError):
        subsample_minority(y, 100)  # seed is required
