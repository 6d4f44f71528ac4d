"""The shared comparison runner: cached, resumable, parallel, same results for any worker count."""
from __future__ import annotations

import json

import pytest

from dsopt.studies.jobs import cache_key, run_jobs


def power(x: int, p: int = 2) -> dict:
    """A module-level run function (spawned workers import it by name)."""
    if x < 0:
        raise ValueError("negative")
    return {"x": x, "value": x**p}


def call(job):
    return (job,), {"p": 3}


def key(job):
    return cache_key("test", job)


def test_results_and_cache(tmp_path):
    done = run_jobs([1, 2, 3], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    assert done == {1: {"x": 1, "value": 1}, 2: {"x": 2, "value": 8}, 3: {"x": 3, "value": 27}}
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 3 and not list(tmp_path.glob("*.part"))
    # A cached run is read back, not rerun: tamper with one file and see it returned as stored.
    path = tmp_path / f"{key(2)}.json"
    path.write_text(json.dumps({"x": 2, "value": -1}))
    again = run_jobs([1, 2, 3], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    assert again[2] == {"x": 2, "value": -1}


def test_interrupted_grid_keeps_finished_runs(tmp_path):
    with pytest.raises(ValueError, match="negative"):
        run_jobs([1, 2, -1, 4], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    assert (tmp_path / f"{key(1)}.json").is_file() and (tmp_path / f"{key(2)}.json").is_file()
    assert not (tmp_path / f"{key(4)}.json").exists()


def test_parallel_workers_give_the_same_results():
    serial = run_jobs(list(range(6)), power, call, key=key, workers=1, progress=False)
    parallel = run_jobs(list(range(6)), power, call, key=key, workers=2, progress=False)
    assert serial == parallel


def test_cache_key_changes_with_any_part():
    assert cache_key("a", 1) != cache_key("a", 2) and cache_key("a", 1) == cache_key("a", 1)
