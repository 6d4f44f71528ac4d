"""The committed notebooks' stored runs: intact, complete and made by the current code (seconds, no kernel).

`dsopt run NN --update-notebook` executes a chapter from nothing and stores the runs its comparison made
in notebooks/stored_runs/NN_slug/ (with index.json); nbval then re-executes the committed notebook reading
those runs instead of recomputing them (docs/CONTRACTS.md, "Runs, caches and stored runs"). This test
fails fast, with the command that fixes it, when that pairing no longer holds: a code change in a module
the chapter's Study declares (docstrings and comments do not count), a missing or edited run file. The
machine the runs were made on (torch, device, CPU) is recorded and printed, not checked here: on another
machine the spot check inside nbval decides whether they still hold.
"""
from __future__ import annotations

import json

import nbformat
import pytest

from dsopt.chapters.registry import CHAPTERS, notebooks_dir
from dsopt.chapters.runner import INDEX
from dsopt.studies.catalog import get_study
from dsopt.studies.fingerprint import code_hash
from dsopt.util.runfile import RunFileError, read_run

CHAPTER_IDS = [c for c in sorted(CHAPTERS) if (notebooks_dir() / CHAPTERS[c].notebook).is_file()]


def _executed(ch) -> bool:
    nb = nbformat.read(notebooks_dir() / ch.notebook, as_version=4)
    return any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("chapter_id", CHAPTER_IDS)
def test_stored_runs_match_the_code(chapter_id):
    ch = CHAPTERS[chapter_id]
    folder = notebooks_dir() / "stored_runs" / f"{ch.id}_{ch.slug}"
    fix = f"regenerate with `dsopt run {ch.id} --update-notebook` (from a clone, with the data)"
    if not _executed(ch):
        assert not folder.exists(), f"{folder} belongs to no executed notebook: delete it or {fix}"
        return  # an unexecuted notebook is compared with nothing; papermill's run covers it
    assert (folder / INDEX).is_file(), f"notebooks/{ch.notebook} is executed but has no stored runs: {fix}"
    index = json.loads((folder / INDEX).read_text())
    files = {p.stem for p in folder.glob("*.json") if p.name != INDEX}
    assert set(index["keys"]) == files, (f"stored runs of chapter {ch.id} and their index differ "
                                         f"(missing {sorted(set(index['keys']) - files)}, extra {sorted(files - set(index['keys']))}): {fix}")
    study = get_study(ch.id)
    now = code_hash(study.depends_on)
    stale, machines = [], set()
    for key in sorted(files):
        try:
            record = read_run(folder / f"{key}.json", key)
        except RunFileError as exc:
            pytest.fail(f"{exc}: {fix}")
        fp = record["fingerprint"]
        assert fp.get("study") == ch.id, f"stored run {key} of chapter {ch.id} was made by {fp.get('study')!r}'s code: {fix}"
        if fp["code"] != now:
            stale.append(key)
        m = record.get("machine") or {}
        machines.add(f"torch {m.get('torch', '?')}, {m.get('device', '?')}, {m.get('cpu', '?')}")
    assert not stale, (f"{len(stale)} of {len(files)} stored runs of chapter {ch.id} were made by other code than the "
                       f"modules its Study declares now ({', '.join(study.depends_on)}): the committed verdict may no "
                       f"longer follow; {fix}")
    print(f"chapter {ch.id}: {len(files)} stored runs made on {'; '.join(sorted(machines))}")
