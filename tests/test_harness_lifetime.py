"""The browser-test harness leaves nothing behind when pytest itself is killed (kill -9): JupyterLab,
its kernels, Playwright's driver and Chromium all end. (A test run killed by CI's timeout or a person's
Ctrl-\\ must not leave ~1 GB of servers and browsers running.)"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from jobs_helpers import alive, wait_gone

pytestmark = pytest.mark.browser
HERE = Path(__file__).resolve().parent

INNER = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import nbformat
    from jupyterlab_harness import lab_page

    def test_hold(tmp_path):
        root = tmp_path / "lab"
        root.mkdir()
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {{"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
        nbformat.write(nb, root / "hold.ipynb")
        with lab_page(root, "hold.ipynb"):  # the server, a kernel for the notebook, Chromium
            Path({marker!r}).write_text("ready")
            time.sleep(900)
''')


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def test_lab_kernels_and_browser_end_when_pytest_is_killed(tmp_path):
    marker = tmp_path / "ready"
    inner = tmp_path / "test_inner_hold.py"
    inner.write_text(INNER.format(tests=str(HERE), marker=str(marker)))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(inner)],
                            cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    tree: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, "the inner pytest ended before JupyterLab was up"
            assert time.monotonic() < deadline, "JupyterLab and Chromium did not come up within 300 s"
            time.sleep(0.5)
        tree = descendants(proc.pid)
        commands = [Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    for p in tree if alive(p)]
        assert any("jupyterlab" in c for c in commands) and any("ipykernel" in c for c in commands)
        assert any("chromium" in c for c in commands)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        left = wait_gone(tree, 30)
        assert left == [], "still running after pytest was killed: " + "; ".join(
            Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120] for p in left)
    finally:
        for p in [proc.pid, *tree]:
            if alive(p):
                os.kill(p, signal.SIGKILL)
