"""``dsopt lab`` without starting JupyterLab (issue 20 item 16): every earlier copy of an edited notebook is
kept, one line per chapter is printed, and as root ``--allow-root`` is passed and said."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dsopt.chapters import lab
from dsopt.chapters.registry import CHAPTERS, notebooks_dir

NB = "04_dynamic_weighting.ipynb"


def test_replace_twice_keeps_both_edits_and_says_where(tmp_path, capsys):
    folder = tmp_path / "lab"
    lab.copy_notebooks(folder)
    nb = folder / NB
    shipped = (notebooks_dir() / NB).read_text()
    for n, backup in ((1, NB + ".bak"), (2, NB + ".bak2"), (3, NB + ".bak3")):
        nb.write_text(shipped.replace("Dynamic loss weighting", f"My edit {n}"))
        capsys.readouterr()
        lab.copy_notebooks(folder, replace=True)
        out = capsys.readouterr().out
        assert f"replaced {NB} (yours kept as {backup})" in out
        assert nb.read_text() == shipped
    for n, backup in ((1, NB + ".bak"), (2, NB + ".bak2"), (3, NB + ".bak3")):
        assert f"My edit {n}" in (folder / backup).read_text()  # no edit was lost


def test_one_line_per_chapter_not_one_per_stored_run(tmp_path, capsys):
    folder = tmp_path / "lab"
    lab.copy_notebooks(folder)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"dsopt: notebooks in {folder.resolve()}"
    assert not any("stored_runs/" in line for line in lines)
    assert len(lines) == len(CHAPTERS) + 2 and "dsopt: copied   CLAIMS.md" in lines  # the table the notebooks cite
    assert (folder / "CLAIMS.md").read_text() == (notebooks_dir() / "CLAIMS.md").read_text()
    for ch in CHAPTERS.values():
        runs = len(list((notebooks_dir() / "stored_runs" / Path(ch.notebook).stem).rglob("*.json")))
        line = next(line for line in lines if f" {ch.notebook}" in line)
        assert line.startswith(f"dsopt: copied   {ch.notebook}")
        assert (f"; stored runs: {runs} copied" in line) if runs else ("stored runs" not in line)
    # a run updated by a newer dsopt is counted in its chapter's line
    run = next((folder / "stored_runs").rglob("*.json"))
    run.write_text(run.read_text() + " ")
    manifest = folder / lab.MANIFEST
    m = json.loads(manifest.read_text())
    m[str(run.relative_to(folder))] = lab._sha(run)  # as if dsopt had copied this version
    manifest.write_text(json.dumps(m))
    lab.copy_notebooks(folder)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"dsopt: {run.parent.name}: stored runs 1 updated", f"dsopt: notebooks in {folder.resolve()}"]


def test_allow_root_is_passed_and_said_as_root(tmp_path, monkeypatch, capsys):
    argv, note = lab.lab_command(tmp_path, ["--no-browser"], as_root=True)
    assert argv[-2:] == ["--no-browser", "--allow-root"] and "running as root" in note
    argv, note = lab.lab_command(tmp_path, ["--allow-root"], as_root=True)
    assert argv.count("--allow-root") == 1
    argv, note = lab.lab_command(tmp_path, ["--", "--port", "1"], as_root=False)
    assert "--allow-root" not in argv and note == "" and argv[-2:] == ["--port", "1"]
    # start_lab prints the command it runs (execv replaced: nothing is started here)
    ran = []
    monkeypatch.setattr(lab.os, "geteuid", lambda: 0, raising=False)
    monkeypatch.setattr(lab.os, "execv", lambda exe, args: ran.append(args))
    monkeypatch.chdir(os.getcwd())  # start_lab changes directory: restored afterwards
    lab.start_lab(tmp_path, ["--no-browser"])
    out = capsys.readouterr().out
    assert ran and ran[0][-1] == "--allow-root"
    assert out.startswith("dsopt: starting JupyterLab: python -m jupyterlab ") and "--allow-root" in out
    assert "running as root" in out


def test_the_quick_start_leaves_nothing_untracked_in_a_clone():
    """`dsopt lab` (dsopt-notebooks/) and the notebooks' run cache (.dsopt-cache/) are ignored by git."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["dsopt-notebooks/01_lr_restarts.ipynb", ".dsopt-cache/01/x.json", "dsopt-notebooks/.dsopt-cache/01/x"]
    proc = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=repo, capture_output=True, text=True,
                          check=False)
    assert proc.stdout.split() == paths, proc.stdout + proc.stderr


def test_lab_never_writes_through_a_link_nor_into_a_file_and_survives_a_corrupt_manifest(tmp_path, capsys):
    """Issue 23 items 7-8: a ``stored_runs`` link to elsewhere, DIR being a file, a read-only DIR and a corrupt
    manifest each end in one ``dsopt:`` line (exit 2, nothing written outside DIR), not a traceback."""
    from dsopt.cli import main

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "stored_runs").symlink_to(elsewhere, target_is_directory=True)
    assert main(["lab", str(folder), "--no-start"]) == 2
    assert "stored_runs is a symbolic link" in capsys.readouterr().err and list(elsewhere.iterdir()) == []
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert main(["lab", str(a_file), "--no-start"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and a_file.read_text() == "mine"
    if os.geteuid() != 0:  # root writes anywhere: the permission check cannot be seen as root
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["lab", str(locked), "--no-start"]) == 2
        assert "permission denied" in capsys.readouterr().err
    ok = tmp_path / "ok"
    lab.copy_notebooks(ok, quiet=True)
    nb = ok / NB
    nb.write_text(nb.read_text().replace("Dynamic loss weighting", "My notes"))
    (ok / lab.MANIFEST).write_text("[" * 50_000)  # nested 50,000 deep: RecursionError inside json
    capsys.readouterr()
    assert main(["lab", str(ok), "--no-start"]) == 0
    captured = capsys.readouterr()
    assert "is unreadable (RecursionError)" in captured.err and "My notes" in nb.read_text()  # the edit is kept
    assert json.loads((ok / lab.MANIFEST).read_text())  # and the manifest is whole again
