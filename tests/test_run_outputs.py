"""What ``dsopt run`` writes survives a write that fails half-way (issue 23, item 5): the executed notebook and the
metrics JSON are replaced whole (temp file + ``os.replace`` in the same folder) or not at all.

A half-way failure is made real, not mocked: ``RLIMIT_FSIZE`` makes the kernel refuse a file's bytes past a size
(``EFBIG``, as a full disk gives ``ENOSPC``) in the middle of the write, whatever code does the writing.
"""
from __future__ import annotations

import contextlib
import json
import resource
import stat

import nbformat
import papermill
import pytest

from dsopt.chapters.results import save_metrics
from dsopt.cli import main

LIMIT = 64 * 1024


@contextlib.contextmanager
def file_size_limit(limit: int = LIMIT):
    """Files written meanwhile cannot grow past ``limit`` bytes (Python ignores SIGXFSZ: the write raises EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _notebook(n_chars: int) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('x' * n)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * n_chars)]
    nb.cells = [cell]
    return nb


def test_a_notebook_write_failing_half_way_keeps_the_previous_complete_notebook(monkeypatch, tmp_path, capsys):
    """papermill saves the notebook at each cell's start and end; the save after a big output fails half-way."""
    small = _notebook(10)

    def papermill_like(src, dst, **kw):  # saves through papermill's own I/O layer, as its executor does
        papermill.iorw.write_ipynb(small, dst)
        with file_size_limit():
            papermill.iorw.write_ipynb(_notebook(4 * LIMIT), dst)

    monkeypatch.setattr(papermill, "execute_notebook", papermill_like)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "01", "-p", "tasks", "digits", "--out", "o", "-q"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("dsopt: chapter 01: could not write ")
    assert "File too large (the previous complete copy is kept)" in err[0] and "--out" in err[0]
    assert nbformat.read(tmp_path / "o" / "01_lr_restarts.ipynb", as_version=4) == small  # whole, the earlier one
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["01_lr_restarts.ipynb"]  # no temp file left


def test_the_cleaned_notebook_is_written_whole_or_not_at_all(monkeypatch, tmp_path):
    """clean_executed rewrites the notebook without widget state; a failure half-way keeps papermill's copy."""
    from dsopt.chapters.runner import clean_executed

    nb = _notebook(4 * LIMIT)
    nb.metadata["widgets"] = {"state": {}}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    with file_size_limit(), pytest.raises(OSError):
        clean_executed(path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_metrics_written_half_way_keep_the_previous_file(tmp_path):
    path = tmp_path / "metrics.json"
    save_metrics(path, {"accuracy": 0.9})
    mode = stat.S_IMODE(path.stat().st_mode)
    with file_size_limit(), pytest.raises(OSError):
        save_metrics(path, {"accuracy": 0.95, "curve": list(range(LIMIT))})
    assert json.loads(path.read_text()) == {"accuracy": 0.9} and list(tmp_path.iterdir()) == [path]
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_each_run_gets_a_private_kernel_folder_removed_afterwards(tmp_path):
    """Connection file (HMAC key) and IPC sockets in a fresh 0700 folder, not the working folder or bare /tmp."""
    from dsopt.chapters.kernel import kernel_config, private_folder

    with private_folder() as a, private_folder() as b:
        assert a != b and stat.S_IMODE(a.stat().st_mode) == 0o700
        config = kernel_config(a).KernelManager
        assert config.transport == "ipc"
        assert config.connection_file == str(a / "kernel.json") and config.ip == str(a / "kernel-ipc")
        (a / "kernel-ipc-1").touch()
    assert not a.exists() and not b.exists()
    with pytest.raises(KeyboardInterrupt), private_folder() as c:
        raise KeyboardInterrupt
    assert not c.exists()


def test_a_killed_runs_kernel_folder_is_removed_by_the_next_run(tmp_path, monkeypatch):
    """``kill -9`` of ``dsopt run`` leaves its private folder (no ``finally`` runs); the next run removes it, and
    never the folder of a run that is still alive."""
    import os
    import subprocess
    import sys

    from dsopt.chapters.kernel import private_folder

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr("dsopt.chapters.kernel._MAX_BASE", 1000)  # tmp_path is too long for sockets: fine here
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = tmp_path / f"dsopt-kernel-{gone.stdout.strip()}-abc", tmp_path / f"dsopt-kernel-{os.getpid()}-xyz"
    for folder in (dead, alive):
        folder.mkdir(mode=0o700)
        (folder / "kernel.json").write_text("{}")
    with private_folder() as mine:
        assert mine.parent == tmp_path and mine.name.startswith(f"dsopt-kernel-{os.getpid()}-")
    assert not dead.exists() and alive.exists() and not mine.exists()
