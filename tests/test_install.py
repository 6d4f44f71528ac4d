"""dsopt from a plain (non-editable) install, away from the checkout: the README's quick start (issue #8 item 4).

A wheel is built from the checkout and installed with ``--no-deps`` into a fresh virtualenv whose dependencies
come from this test environment (a ``.pth`` line; downloading them again would add minutes and test pip, not
dsopt). Then, from an empty folder: the quick start's commands as written (its two ``pip install`` lines are
what this setup replaces), ``dsopt lab`` copying once without overwriting an edit, and JupyterLab started by
``dsopt lab`` answering on its port.
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from test_readme import blocks

pytestmark = [pytest.mark.install, pytest.mark.data("financial_phrasebank")]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, REPO],
                   check=True, capture_output=True)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    Path(site, "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("dsopt-*.whl"))
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", wheel], check=True,
                   capture_output=True)
    work = tmp / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("DSOPT_NOTEBOOKS", None)
    return py, work, env


def test_the_package_runs_from_its_own_files(fresh_env):
    py, work, env = fresh_env
    code = ("import dsopt, dsopt_widgets; from dsopt.chapters.registry import notebooks_dir; "
            "print(dsopt.__file__); print(notebooks_dir())")
    out = subprocess.run([py, "-c", code], cwd=work, env=env, check=True, capture_output=True, text=True).stdout
    where, notebooks = out.split()
    assert str(REPO) not in where and str(REPO) not in notebooks
    assert notebooks.endswith("dsopt/chapters/notebooks") and Path(notebooks, "01_lr_restarts.ipynb").is_file()
    assert Path(notebooks, "CLAIMS.md").is_file()  # the table every notebook's first cell links


def test_quick_start_as_written(fresh_env):
    """The README's install block, minus its pip lines: the headline run and `dsopt lab --no-start`."""
    py, work, env = fresh_env
    (code,) = [c for _, _, c in blocks("install")]
    lines = [ln.split("#")[0].strip() for ln in code.splitlines()]
    commands = [ln for ln in lines if ln and not ln.startswith(("pip ", "python -m venv"))]
    assert commands == ["dsopt run 01 -p tasks digits", "dsopt lab --no-start"]
    for line in commands:
        proc = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=1200,
                              check=False)
        assert proc.returncode == 0, f"{line}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        if line.startswith("dsopt run"):
            assert proc.stdout.startswith("verdict:\n  ") and "metrics:  runs/01_lr_restarts-" in proc.stdout
            # the runs shipped beside the notebook are read (the installed package's copy, not the checkout's)
            assert "runs:     12 runs read from stored runs" in proc.stdout and "stored_runs False" in proc.stdout
            assert "without encryption" not in proc.stderr
    assert (work / "dsopt-notebooks" / "01_lr_restarts.ipynb").is_file()


def test_lab_copies_once_and_keeps_an_edited_copy(fresh_env, tmp_path):
    py, _, env = fresh_env
    lab = tmp_path / "lab"
    run = lambda *a: subprocess.run(["dsopt", "lab", str(lab), "--no-start", *a], env=env, capture_output=True,  # noqa: E731
                                    text=True, check=True, stdin=subprocess.DEVNULL).stdout
    assert "copied   01_lr_restarts.ipynb" in run()
    nb = lab / "04_dynamic_weighting.ipynb"
    nb.write_text(nb.read_text().replace("Dynamic loss weighting", "My notes on loss weighting"))
    untouched = lab / "01_lr_restarts.ipynb"
    untouched.write_text(untouched.read_text())  # same bytes: still "untouched"
    out = run()
    assert "My notes" in nb.read_text() and "kept     04_dynamic_weighting.ipynb (edited by you" in out
    assert "01_lr_restarts" not in out  # untouched and current: nothing to do
    shipped = subprocess.run([py, "-c", "from dsopt.chapters.registry import notebooks_dir; print(notebooks_dir())"],
                             env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert nb.read_text() != Path(shipped, nb.name).read_text()
    out = run("--replace")
    assert "replaced 04_dynamic_weighting.ipynb" in out and "My notes" in (lab / (nb.name + ".bak")).read_text()
    assert nb.read_text() == Path(shipped, nb.name).read_text()


def test_dsopt_lab_starts_jupyterlab_in_the_folder(fresh_env, tmp_path):
    import socket

    _, _, env = fresh_env
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(8)
    proc = subprocess.Popen(["dsopt", "lab", str(tmp_path / "lab"), "--", "--no-browser", "--allow-root",
                             "--ip", "127.0.0.1", "--port", str(port), f"--IdentityProvider.token={token}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 90
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "JupyterLab did not start"
                time.sleep(0.5)
        assert re.search(rb'"name": ?"01_lr_restarts.ipynb"', body)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
