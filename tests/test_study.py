"""The shared comparison runner: cached, resumable, parallel, same results for any worker count."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dsopt.studies.jobs import StoredRunError, cache_key, compare_results, run_jobs


def power(x: int, p: int = 2) -> dict:
    """A module-level run function (spawned workers import it by name)."""
    if x < 0:
        raise ValueError("negative")
    return {"x": x, "value": x**p}


def call(job):
    return (job,), {"p": 3}


def key(job):
    return cache_key("test", job)


def _file_of(folder, job):
    """The run file holding ``job`` (file names are keys; each file records its job)."""
    found = [p for p in folder.glob("*.json") if json.loads(p.read_text())["job"] == job]
    assert len(found) == 1
    return found[0]


def test_results_and_cache(tmp_path):
    done = run_jobs([1, 2, 3], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    assert done == {1: {"x": 1, "value": 1}, 2: {"x": 2, "value": 8}, 3: {"x": 3, "value": 27}}
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 3 and not list(tmp_path.glob("*.part"))
    record = json.loads(_file_of(tmp_path, 2).read_text())
    assert record["result"] == {"x": 2, "value": 8} and record["machine"]["torch"] and record["sha256"]
    assert "torch" not in record["fingerprint"] and record["fingerprint"]["code"]  # recorded, not keyed
    assert record["run"] == "test_study:power"


def test_a_tampered_cache_file_is_detected_and_recomputed(tmp_path, capsys):
    run_jobs([1, 2, 3], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    path = _file_of(tmp_path, 2)
    record = json.loads(path.read_text())
    record["result"]["value"] = -1  # an edited result with the old checksum
    path.write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="checksum mismatch"):
        again = run_jobs([1, 2, 3], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    assert again[2] == {"x": 2, "value": 8}  # recomputed, not returned
    assert "computing the run again" in capsys.readouterr().err
    assert json.loads(path.read_text())["result"]["value"] == 8  # and the file is healed
    path.write_text(path.read_text()[:40])  # truncated
    with pytest.warns(UserWarning, match="unreadable"):
        assert run_jobs([2], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)[2]["value"] == 8


def test_an_oversized_or_deeply_nested_run_file_is_refused_by_name_and_recomputed(tmp_path, monkeypatch, capsys):
    """Issue 23 item 8: a run file above the size limit is not read (a padded 419 MB one took a kernel's memory);
    JSON nested 50,000 deep is an unreadable file, not a RecursionError."""
    import dsopt.util.runfile as runfile

    run_jobs([1, 2], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    big, deep = _file_of(tmp_path, 1), _file_of(tmp_path, 2)
    monkeypatch.setattr(runfile, "MAX_BYTES", 100_000)  # the real limit is 64 MB: the same rule on a smaller file
    big.write_text(big.read_text()[:-1] + " " * 200_000 + "}")
    deep.write_text("[" * 50_000)
    with pytest.warns(UserWarning):
        again = run_jobs([1, 2], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    assert again == {1: {"x": 1, "value": 1}, 2: {"x": 2, "value": 8}}
    err = capsys.readouterr().err
    assert f"{big.name}" in err and "bytes, above the 100,000 a run file may hold" in err and "RecursionError" in err


def test_a_cached_run_is_not_rerun(tmp_path):
    run_jobs([1, 2], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    calls = []

    def counting(x, p=2):
        calls.append(x)
        return power(x, p)

    counting.__module__, counting.__qualname__ = power.__module__, "power"  # same fingerprint as power
    run_jobs([1, 2, 3], counting, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    assert calls == [3]


def test_interrupted_grid_keeps_finished_runs(tmp_path):
    with pytest.raises(ValueError, match="negative"):
        run_jobs([1, 2, -1, 4], power, call, key=key, cache_dir=tmp_path, workers=1, progress=False)
    jobs = sorted(json.loads(p.read_text())["job"] for p in tmp_path.glob("*.json"))
    assert jobs == [1, 2]  # the finished runs are kept, nothing after the failure


def test_parallel_workers_give_the_same_results():
    serial = run_jobs(list(range(6)), power, call, key=key, workers=1, progress=False)
    parallel = run_jobs(list(range(6)), power, call, key=key, workers=2, progress=False)
    assert serial == parallel


def test_cache_key_changes_with_any_part():
    assert cache_key("a", 1) != cache_key("a", 2) and cache_key("a", 1) == cache_key("a", 1)


def test_stored_runs_are_read_and_only_mode_refuses_missing_ones(tmp_path, monkeypatch):
    cache, store = tmp_path / "cache", tmp_path / "stored_runs" / "99_probe"
    run_jobs([1, 2], power, call, key=key, cache_dir=store, workers=1, progress=False)
    monkeypatch.chdir(tmp_path)  # ./stored_runs is found from the working folder (a notebook's folder)
    monkeypatch.setenv("DSOPT_STORED_RUNS_ONLY", "1")
    monkeypatch.setenv("DSOPT_CHAPTER", "99")
    assert run_jobs([1, 2], power, call, key=key, cache_dir=cache, workers=1, progress=False)[2]["value"] == 8
    assert not cache.exists()  # read from the store, nothing computed
    with pytest.raises(StoredRunError, match=r"1 of 3 runs .* `dsopt run 99 --update-notebook`"):
        run_jobs([1, 2, 3], power, call, key=key, cache_dir=cache, workers=1, progress=False)
    monkeypatch.setenv("DSOPT_STORED_RUNS", "0")  # switched off: computed (only-mode then refuses)
    with pytest.raises(StoredRunError, match="2 of 2 runs"):
        run_jobs([1, 2], power, call, key=key, cache_dir=cache, workers=1, progress=False)


def test_provenance_says_which_runs_were_computed_cached_or_stored_and_where_they_were_made(tmp_path, monkeypatch):
    from dsopt.studies.jobs import provenance

    cache, store = tmp_path / "cache", tmp_path / "stored_runs" / "99_probe"
    run_jobs([1, 2], power, call, key=key, cache_dir=store, workers=1, progress=False)
    for path in store.glob("*.json"):  # as if made on another CPU on another day (re-sealed, still valid)
        from dsopt.util.runfile import read_run, seal, write_run

        r = read_run(path)
        m = {**r["machine"], "cpu": "Probe CPU 9000", "finished": "2026-01-02T03:04:05Z", "load": 3.5}
        write_run(path, seal(r["key"], r["result"], fingerprint=r["fingerprint"], job=r["job"], run=r["run"],
                             seconds=r["seconds"], machine=m))
    monkeypatch.chdir(tmp_path)
    ledger = tmp_path / "ledger.txt"
    monkeypatch.setenv("DSOPT_RUN_LEDGER", str(ledger))
    run_jobs([3], power, call, key=key, cache_dir=cache, workers=1, progress=False)  # before the block: not counted
    with provenance() as prov:
        run_jobs([1, 2, 3, 4], power, call, key=key, cache_dir=cache, workers=1, progress=False)
    assert (prov.stored, prov.cached, prov.computed) == (2, 1, 1) and prov.runs == 4
    text = prov.describe()
    assert "2 runs read from stored runs" in text and "1 from this machine's cache" in text and "1 measured here" in text
    assert "Probe CPU 9000" in text and "2026-01-02" in text and "load 3.5-3.5" in text
    assert prov.as_dict()["text"] == text
    keys = ledger.read_text().split()
    assert len(keys) == 1 + 4 and len(set(keys)) == 4  # every run each call returned, for --reuse-stored
    with provenance() as empty:
        pass
    assert empty.describe() == "no runs"
    from dsopt.studies.jobs import execution

    with provenance() as here, execution(stored_runs=False):  # "measure on this machine": stored runs not read
        run_jobs([1, 2], power, call, key=key, cache_dir=tmp_path / "fresh", workers=1, progress=False)
    assert (here.stored, here.computed) == (0, 2) and "measured here" in here.describe()


def test_spot_check_reexecutes_stored_runs_and_catches_a_wrong_one(tmp_path, monkeypatch):
    store = tmp_path / "stored_runs" / "99_probe"
    run_jobs([1, 2, 3], power, call, key=key, cache_dir=store, workers=1, progress=False)
    monkeypatch.setenv("DSOPT_STORED_RUNS", str(tmp_path / "stored_runs"))
    monkeypatch.setenv("DSOPT_STORED_RUNS_VERIFY", "3")
    assert run_jobs([1, 2, 3], power, call, key=key, workers=1, progress=False)[3]["value"] == 27
    # A stored result that is sealed correctly but is not what the code computes (e.g. hand-made):
    from dsopt.util.runfile import read_run, seal, write_run

    path = _file_of(store, 3)
    rec = read_run(path)
    write_run(path, seal(rec["key"], {"x": 3, "value": 30}, fingerprint=rec["fingerprint"], job=3, run=rec["run"]))
    with pytest.raises(StoredRunError, match=r"does not reproduce .* /value: stored 30, fresh 27"):
        run_jobs([1, 2, 3], power, call, key=key, workers=1, progress=False)
    # Within the tolerance (a different CPU's rounding) it passes; verify=False skips runs that time the machine.
    write_run(path, seal(rec["key"], {"x": 3, "value": 28}, fingerprint=rec["fingerprint"], job=3, run=rec["run"]))
    assert run_jobs([1, 2, 3], power, call, key=key, workers=1, progress=False)[3]["value"] == 28
    write_run(path, seal(rec["key"], {"x": 3, "value": 30}, fingerprint=rec["fingerprint"], job=3, run=rec["run"]))
    assert run_jobs([1, 2, 3], power, call, key=key, workers=1, progress=False, verify=False)[3]["value"] == 30


def test_stored_runs_made_on_another_machine_are_spot_checked_before_reuse(tmp_path, monkeypatch, capsys):
    """The machine is recorded, not keyed: runs stored with another torch build or device keep their keys; without
    DSOPT_STORED_RUNS_VERIFY one of them is re-executed here first, and a failure recomputes them (or, in tests'
    stored-only mode, is an error naming both machines)."""
    from dsopt.util.runfile import read_run, seal, write_run

    store = tmp_path / "stored_runs" / "99_probe"
    run_jobs([1, 2, 3], power, call, key=key, cache_dir=store, workers=1, progress=False)
    monkeypatch.setenv("DSOPT_STORED_RUNS", str(tmp_path / "stored_runs"))
    monkeypatch.delenv("DSOPT_STORED_RUNS_VERIFY", raising=False)

    def restamp(value_of_3: int) -> None:  # the same runs, as if made with another torch on a GPU
        for job in (1, 2, 3):
            path = _file_of(store, job)
            rec = read_run(path)
            result = {"x": 3, "value": value_of_3} if job == 3 else rec["result"]
            write_run(path, seal(rec["key"], result, fingerprint=rec["fingerprint"], job=job, run=rec["run"],
                                 machine={**rec["machine"], "torch": "9.9.9+other", "device": "cuda:Some GPU"}))

    restamp(27)
    checked = []
    monkeypatch.setattr("dsopt.studies.jobs.spot_check_pick", lambda jobs, keys, secs, k, **kw: checked.append(k) or [3])
    assert run_jobs([1, 2, 3], power, call, key=key, workers=1, progress=False)[3]["value"] == 27
    assert checked == [1]  # one re-executed, although no spot check was asked for
    restamp(30)  # the other machine's number is not what this one computes
    assert run_jobs([1, 2, 3], power, call, key=key, workers=1, progress=False)[3]["value"] == 27
    err = capsys.readouterr().err
    assert "torch 9.9.9+other (here:" in err and "computing the 3 stored runs again here" in err
    monkeypatch.setenv("DSOPT_STORED_RUNS_ONLY", "1")
    with pytest.raises(StoredRunError, match=r"made with device cuda:Some GPU .*torch 9.9.9\+other .* stored 30, fresh 27"):
        run_jobs([1, 2, 3], power, call, key=key, workers=1, progress=False)


@pytest.mark.parametrize("stored, fresh, n", [
    ({"a": [0.5, 0.6], "seconds": 3.0}, {"a": [0.52, 0.61], "seconds": 9.0}, 0),
    ({"a": [0.5, 0.6]}, {"a": [0.5, 0.8]}, 1),
    ({"a": 1, "b": "x"}, {"a": 1, "b": "y"}, 1),
    ({"a": [1, 2]}, {"a": [1]}, 1),
    ({"a": float("nan")}, {"a": float("nan")}, 0),
    ({"lat_ms": 3.0, "a": None}, {"lat_ms": 30.0, "a": None}, 0),
])
def test_compare_results_tolerance(stored, fresh, n):
    assert len(compare_results(stored, fresh, atol=0.05, rtol=0.05)) == n


PROBE = """
import sys
from dsopt.studies.jobs import cache_key, run_jobs

calls = []


def run(x):
    from dsopt.core.seeding import seed_everything
    return {"x": x}


def call(job):
    calls.append(job)
    return (job,), {}


def key(job):
    return cache_key("probe", job)  # keyed on this module's import closure


def main(cache):
    run_jobs([1, 2], run, call, key=key, cache_dir=cache, workers=1, progress=False)
    print("computed", len(calls))
"""


def test_changing_a_library_source_file_is_a_cache_miss(tmp_path):
    """A copy of the package: a comment in a file the run imports -> cached; code there -> computed again; code in
    an unrelated file -> cached. (The probe belongs to no Study: its static import closure is its code.)"""
    import shutil
    import subprocess
    import sys

    import dsopt

    pkg = tmp_path / "pkg"
    shutil.copytree(Path(dsopt.__file__).parent, pkg / "dsopt", ignore=shutil.ignore_patterns("__pycache__"))
    probe = pkg / "dsopt" / "studies" / "probe_study.py"
    probe.write_text(PROBE)

    def computed() -> int:
        env = {**os.environ, "PYTHONPATH": str(pkg), "DSOPT_STORED_RUNS": "0"}
        code = f"from dsopt.studies import probe_study; probe_study.main({str(tmp_path / 'cache')!r})"
        out = subprocess.run([sys.executable, "-c", code],
                             cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip().startswith("computed"), out.stderr
        return int(out.stdout.split()[-1])

    assert computed() == 2 and computed() == 0
    seeding = pkg / "dsopt" / "core" / "seeding.py"  # imported by the run function
    seeding.write_text(seeding.read_text() + "\n# a comment: no code changed\n")
    assert computed() == 0
    seeding.write_text(seeding.read_text() + "\n_LIBRARY_FIX = 1\n")
    assert computed() == 2
    unrelated = pkg / "dsopt" / "pruning" / "heads.py"  # not in the run's import closure
    unrelated.write_text(unrelated.read_text() + "\n_ELSEWHERE = 1\n")
    assert computed() == 0


def test_a_seeded_spot_check_is_random_reproducible_reaches_every_run_and_keeps_a_seed_across_rounds():
    """Issue 23 item 6: CI seeds the pick with the commit id. The same seed picks the same runs; over many seeds
    every cheap run is picked (a forged stored run is found eventually) and slow runs never; with a Study's group
    (chapter 02: the seed) every round draws the same group, so one MiniLM is fine-tuned whatever the draw."""
    from dsopt.studies.jobs import spot_check_group_pick, spot_check_pick

    jobs = [(s, m) for s in range(3) for m in "abcd"]
    keys = {j: f"{j[0]}{j[1]}{hash(j) % 7}" for j in jobs}
    seconds = {j: 10.0 for j in jobs} | {(2, "d"): 99.0}
    assert spot_check_pick(jobs, keys, seconds, 2, seed="c0ffee") == spot_check_pick(jobs, keys, seconds, 2,
                                                                                       seed="c0ffee")
    picked = {spot_check_pick(jobs, keys, seconds, 1, seed=f"commit{i}")[0] for i in range(200)}
    assert picked == set(jobs) - {(2, "d")}
    # the cheaper a run, the more often it is drawn (a check costs about a cheap run), yet every one is drawn
    timed = {j: (20.0 if j[1] == "a" else 10.0) for j in jobs}  # "a" runs: 2x the others, still "cheap"
    counts = {}
    for i in range(600):
        j = spot_check_pick(jobs, keys, timed, 1, seed=f"c{i}")[0]
        counts[j[1]] = counts.get(j[1], 0) + 1
    assert 0 < counts["a"] < 0.75 * counts["b"]  # per run (3 of each): about half as often, yet drawn
    assert len(spot_check_pick(jobs, keys, timed, 4, seed="x")) == 4  # k distinct runs
    assert len(set(spot_check_pick(jobs, keys, timed, 4, seed="x"))) == 4
    rounds = {"train": [0, 1, 2], "sweep": jobs, "test": [0, 1, 2]}
    group = (lambda j: j if isinstance(j, int) else j[0])
    drawn = set()
    for i in range(60):
        seed = f"commit{i}"
        firsts = {name: group(spot_check_pick(r, {j: str(j) for j in r}, {}, 1, seed=seed, group=group)[0])
                  for name, r in rounds.items()}
        assert len(set(firsts.values())) == 1 and firsts["train"] == spot_check_group_pick(seed, [0, 1, 2])
        drawn.add(firsts["train"])
    assert drawn == {0, 1, 2}


def test_spot_check_pick_is_cheap_deterministic_and_starts_with_the_grid_order():
    """The first pick is the first cheap run in the caller's order (rounds of one comparison list the same seed
    first, so their checks share its model); further picks follow the key order; slow runs are never picked."""
    from dsopt.studies.jobs import spot_check_pick

    jobs = [(0, "a"), (0, "b"), (1, "a"), (1, "b"), (2, "a")]
    keys = {(0, "a"): "e", (0, "b"): "d", (1, "a"): "a", (1, "b"): "c", (2, "a"): "b"}
    seconds = {(0, "a"): 30.0, (0, "b"): 10.0, (1, "a"): 12.0, (1, "b"): 90.0, (2, "a"): 20.0}  # median 20
    assert spot_check_pick(jobs, keys, seconds, 1) == [(0, "a")]  # 30 s <= 2 x median: the grid's first
    assert spot_check_pick(jobs, keys, seconds, 3) == [(0, "a"), (1, "a"), (2, "a")]
    assert (1, "b") not in spot_check_pick(jobs, keys, seconds, 5)  # 90 s > 2 x median: never
    # chapter 02's test round as stored (seed 0 a little slower than the median): still seed 0, whose model the
    # train and sweep rounds' checks already fine-tuned
    assert spot_check_pick([0, 1, 2], {0: "z", 1: "y", 2: "x"}, {0: 34.5, 1: 32.8, 2: 19.2}, 1) == [0]
    assert spot_check_pick(list(jobs), dict(keys), dict(seconds), 3) == spot_check_pick(jobs, keys, seconds, 3)
    assert spot_check_pick([], {}, {}, 1) == []
