"""The monitoring loop's model store trusts nothing it reads (issue 23 items 2 and 4): a crafted pickle is refused
on every path that loads a version (promote, load, rollback, a service following the store) with no side effect;
a damaged previous version stops a rollback before CURRENT moves; a garbage CURRENT falls back to the newest
version that loads; temporary files of killed writers are removed; at most ``keep`` versions are kept."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch

from dsopt.monitor.loop import ModelStore, StoreError
from dsopt.monitor.service import ModelService


def linear(seed: int) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(8, 2)


class _Payload:
    """Unpickling this creates ``marker``: what a crafted checkpoint could do with any code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted(store: ModelStore, version: int, marker) -> None:
    torch.save({"format_version": 1, "state_dict": {}, "version": version, "meta": _Payload(str(marker))},
               store.path(version))


@pytest.fixture
def store(tmp_path):
    s = ModelStore(tmp_path / "store")
    s.promote(s.save(linear(1), {"reason": "launch", "accuracy": np.float64(0.9)}))
    return s


def test_a_crafted_pickle_is_refused_on_every_path_and_runs_nothing(store, tmp_path):
    marker = tmp_path / "pwned"
    crafted(store, 2, marker)
    for attempt in (lambda: store.promote(2), lambda: store.load(2), lambda: store.load_model(lambda: linear(0), 2)):
        with pytest.raises(StoreError, match="version 2 .* is not a model checkpoint this store serves"):
            attempt()
    assert store.current_version() == 1 and store.history() == [1] and not marker.exists()
    # a service following the store: another process points CURRENT at the crafted file
    service = ModelService(linear(0), ["neg", "pos"], window_size=10)
    service.follow(store, lambda: linear(0), sync_interval=0.0)
    (store.root / "CURRENT").write_text(json.dumps({"version": 2, "history": [1, 2]}))
    with pytest.warns(RuntimeWarning, match="not serving version 2"):
        batch = service.predict(np.zeros((10, 8)))
    assert batch.version == 1 and not marker.exists()
    # and a rollback onto it
    store.promote(store.save(linear(3)))  # version 3 (history 1, 2, 3 as written above)
    (store.root / "CURRENT").write_text(json.dumps({"version": 3, "history": [1, 2, 3]}))
    with pytest.raises(StoreError):
        store.rollback()
    assert store.current_version() == 3 and store.history() == [1, 2, 3] and not marker.exists()


def test_a_damaged_previous_version_stops_a_rollback_before_current_moves(store):
    store.promote(store.save(linear(2)))
    store.path(1).write_bytes(store.path(1).read_bytes()[:100])  # cut off
    with pytest.raises(StoreError, match="version 1"):
        store.rollback()
    assert store.current_version() == 2 and store.history() == [1, 2]
    assert store.load()["meta"] == {}


def test_a_garbage_current_falls_back_to_the_newest_version_that_loads(store):
    store.promote(store.save(linear(2)))
    store.promote(store.save(linear(3)))
    store.path(3).write_bytes(b"not a checkpoint")
    store.pointer.write_text("{garbage")
    with pytest.warns(RuntimeWarning, match=r"CURRENT is unreadable .*; serving version 2, the newest that loads"):
        assert store.current_version() == 2
        model, version = store.load_model(lambda: linear(0))
    assert version == 2 and torch.equal(model.weight, linear(2).weight)
    for p in store.root.joinpath("versions").glob("*.pt"):
        p.write_bytes(b"x")
    with pytest.raises(StoreError, match="no version .* loads"):
        store.current_version()


def test_dead_writers_parts_are_removed_and_only_keep_versions_stay(tmp_path):
    root = tmp_path / "store"
    first = ModelStore(root, keep=3)
    old = root / "versions" / ".v000009.pt.abc.part"
    old.write_bytes(b"half")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert ModelStore(root).removed_parts == 1 and not old.exists()  # no writer holds the lock: a dead one's
    lock = first._writer_lock()  # a live writer: its fresh temporary file stays
    try:
        fresh = root / "versions" / ".v000010.pt.def.part"
        fresh.write_bytes(b"being written")
        assert ModelStore(root).removed_parts == 0 and fresh.exists()
    finally:
        lock.close()
    fresh.unlink()
    for seed in range(6):
        first.promote(first.save(linear(seed)))
    assert first.versions() == [4, 5, 6] and first.current_version() == 6
    assert first.rollback() == 5 and first.history()[-1] == 5
    with pytest.raises(Exception):
        ModelStore(root, keep=1)  # CURRENT and the version a rollback serves are always kept
