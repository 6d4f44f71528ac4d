"""``dsopt run`` with real kernels on tiny notebooks (issue 23): runs at once in one folder, SIGTERM, a dead kernel,
a cell time limit, a write that fails half-way. Each test puts a few-cell notebook where chapter 01's would be
(``DSOPT_NOTEBOOKS``) and runs the real command line, so kernel start-up, connection files and signals are real.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import psutil
import pytest

NOTEBOOK = "01_lr_restarts.ipynb"  # where chapter 01's notebook would be: the runner's own code path, no chapter code
ARGS = ["-p", "tasks", "digits", "-q"]  # digits is bundled: no dataset check can refuse the run


def _notebook(folder: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    params = nbformat.v4.new_code_cell('tasks = "digits"\nepochs = 2\nmetrics_path = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / NOTEBOOK)


def _env(tmp_path: Path) -> dict:
    """The test's environment, plus: notebooks from tmp_path/nb, a temp folder of their own (checked empty after;
    a short path, as kernel sockets need: tmp_path is too long and the runner would fall back to /tmp)."""
    return {**os.environ, "DSOPT_NOTEBOOKS": str(tmp_path / "nb"), "TMPDIR": str(_TMP[tmp_path]),
            "PYTHONPATH": os.pathsep.join(sys.path)}


def _as_from_a_terminal() -> None:
    """Ctrl-C reaches the run as from a terminal, even when pytest itself was started in the background by a
    non-interactive shell (which starts it with SIGINT ignored, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _dsopt(tmp_path: Path, *argv: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dsopt.cli", "run", "01", *ARGS, *argv], cwd=tmp_path / "work",
                            env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_terminal, **kw)


def _no_leftovers(tmp_path: Path) -> None:
    """No socket in the working folder, nothing (connection file, private folder) in the runs' temp folder."""
    assert not list((tmp_path / "work").glob("kernel-ipc*")), "IPC sockets left in the working folder"
    left = list(_TMP[tmp_path].iterdir())
    assert not left, f"left in the temp folder: {left}"


_TMP: dict[Path, Path] = {}


@pytest.fixture
def work(tmp_path):
    (tmp_path / "work").mkdir()
    _TMP[tmp_path] = Path(tempfile.mkdtemp(prefix="dsopt-runs-", dir="/tmp" if os.path.isdir("/tmp") else None))
    yield tmp_path
    shutil.rmtree(_TMP.pop(tmp_path), ignore_errors=True)


def test_three_runs_at_once_in_one_folder_all_succeed_and_leave_nothing(work):
    _notebook(work / "nb", "from dsopt.chapters.results import save_metrics\n"
                           "import os\nsave_metrics(metrics_path, {'pid': os.getpid()})")
    procs = [_dsopt(work, "--out", f"o{i}") for i in range(3)]  # started within milliseconds of each other
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert rc == 0, err
    pids = {json.loads((work / "work" / f"o{i}" / "metrics.json").read_text())["pid"] for i in range(3)}
    assert len(pids) == 3  # three kernels, each wrote its own run's metrics
    _no_leftovers(work)


def _read_line_from_fifo(path: Path, proc: subprocess.Popen, timeout: float = 60) -> str:
    """Block until the kernel writes a line into the FIFO (or the run ends: then fail with its stderr)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready, _, _ = select.select([fd, proc.stderr], [], [], timeout)
        assert fd in ready, f"the cell never started (exit {proc.poll()}): {proc.stderr.read() if proc.poll() else ''}"
        return os.read(fd, 100).decode()
    finally:
        os.close(fd)


@pytest.mark.parametrize("sig, rc, said", [(signal.SIGTERM, 143, "dsopt: terminated"),
                                           (signal.SIGINT, 130, "dsopt: interrupted")])
def test_a_signal_mid_cell_kills_the_kernel_says_so_and_keeps_the_partial_notebook(work, sig, rc, said):
    fifo = work / "ready"
    os.mkfifo(fifo)
    _notebook(work / "nb", "x = 41 + 1",
              f"import os, time\nwith open({str(fifo)!r}, 'w') as f:\n    f.write(str(os.getpid()))\ntime.sleep(600)")
    proc = _dsopt(work, "--out", "o")
    kernel = psutil.Process(int(_read_line_from_fifo(fifo, proc)))
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == rc
    assert proc.stderr.read().splitlines() == [said, f"partial notebook: o/{NOTEBOOK}"]
    assert not kernel.is_running() or kernel.status() == psutil.STATUS_ZOMBIE, "the kernel outlived dsopt run"
    nb = nbformat.read(work / "work" / "o" / NOTEBOOK, as_version=4)  # complete JSON: the last save before the kill
    assert [c.source for c in nb.cells if c.cell_type == "code"][2] == "x = 41 + 1"
    _no_leftovers(work)


def test_a_dead_kernel_is_one_dsopt_line_naming_cause_and_fix(work):
    _notebook(work / "nb", "x = 1", "import os\nos._exit(1)")
    proc = _dsopt(work, "--out", "o")
    rc, (out, err) = proc.wait(timeout=60), proc.communicate()
    assert rc == 1
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("dsopt: chapter 01: the kernel died in code cell 4 ")  # params, injected, x = 1, exit
    assert f"partial notebook: o/{NOTEBOOK}" in lines[0] and "free memory" in lines[0]
    _no_leftovers(work)


def test_a_cell_past_the_time_limit_is_one_dsopt_line_naming_the_limit(work):
    _notebook(work / "nb", "import time\ntime.sleep(120)")
    proc = _dsopt(work, "--out", "o", "--timeout", "2")
    rc, (out, err) = proc.wait(timeout=60), proc.communicate()
    assert rc == 1
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("dsopt: chapter 01: a cell ran past the 2 s cell time limit in code cell 3")
    assert "--timeout" in lines[0].split("; ")[-1]
    _no_leftovers(work)


_KILLED_MID_WRITE = """
import resource, signal, sys
import nbformat, papermill
from dsopt.cli import main

LIMIT = 64 * 1024

def cell_by_cell(src, dst, **kw):  # papermill saves the notebook after each cell through its I/O layer; so does this
    nb = nbformat.v4.new_notebook()
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    for i in range(100):
        cell = nbformat.v4.new_code_cell(f"cell {i}")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (LIMIT // 5))]
        nb.cells.append(cell)
        papermill.iorw.write_ipynb(nb, dst)  # the save that crosses LIMIT is killed by SIGXFSZ half-way

signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; by default it ends the process at once
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
papermill.execute_notebook = cell_by_cell
sys.exit(main(["run", "01", "-p", "tasks", "digits", "--out", "o", "-q"]))
"""


def test_a_run_killed_in_the_middle_of_a_notebook_save_leaves_the_previous_complete_notebook(work):
    """A signal that ends the process during the write, deterministically: the save that crosses the file-size limit
    gets SIGXFSZ (default action: terminate) half-way through. The notebook on disk is the save before, whole."""
    _notebook(work / "nb", "x = 1")  # not executed: the stand-in for papermill only saves notebooks
    proc = subprocess.run([sys.executable, "-c", _KILLED_MID_WRITE], cwd=work / "work", env=_env(work),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGXFSZ, proc.stderr
    nb = nbformat.read(work / "work" / "o" / NOTEBOOK, as_version=4)  # valid JSON, not cut off
    assert [c.source for c in nb.cells] == [f"cell {i}" for i in range(len(nb.cells))] and len(nb.cells) >= 3
    assert (work / "work" / "o" / NOTEBOOK).stat().st_size < 64 * 1024


def test_a_kernel_that_cannot_start_is_one_dsopt_line(work):
    """The python3 kernel spec points at a program that exits at once (a broken environment)."""
    spec = work / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", "raise SystemExit(3)", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "broken", "language": "python"}))
    _notebook(work / "nb", "x = 1")
    proc = subprocess.run([sys.executable, "-m", "dsopt.cli", "run", "01", *ARGS, "--out", "o"], cwd=work / "work",
                          env={**_env(work), "JUPYTER_PATH": str(work / "jupyter")}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dsopt: chapter 01: the Python kernel did not start"), proc.stderr
    _no_leftovers(work)
