"""A real JupyterLab server driven by Playwright in Debian's headless Chromium (for browser tests).

``lab_page(root)`` starts ``jupyter lab`` on a free loopback port with a random token, serving
``root``; yields a Playwright page; stops the server by PID afterwards. Never downloads a browser:
it uses /usr/bin/chromium (``apt-get install chromium``).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("DSOPT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
IDLE = re.compile(r"Python 3 \(ipykernel\)\s*\|\s*Idle")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(root: Path, env_extra: dict | None = None):
    """Start JupyterLab serving ``root``; yield its base URL with the token."""
    port, token = _free_port(), secrets.token_hex(16)
    settings = root.parent / (root.name + "-lab-settings")
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True, exist_ok=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"checkForUpdates": False, "fetchNews": "false"}))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), **(env_extra or {})}
    env.pop("DSOPT_FRONTEND", None)
    log = open(root.parent / (root.name + "-lab.log"), "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip", "127.0.0.1", "--port", str(port),
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; see {log.name}")
                time.sleep(0.3)
        yield base, token
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@contextlib.contextmanager
def lab_page(root: Path, notebook: str, env_extra: dict | None = None):
    """Open ``notebook`` in JupyterLab in headless Chromium; yield the Playwright page."""
    from playwright.sync_api import sync_playwright

    with lab_server(root, env_extra) as (base, token), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{notebook}?token={token}")
            page.get_by_text(IDLE).first.wait_for(timeout=90_000)
            yield page
        finally:
            browser.close()


def run_all(page) -> None:
    """Run > Run All Cells (after the kernel reports Idle in the status bar)."""
    page.get_by_text(IDLE).first.wait_for(timeout=90_000)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


@contextlib.contextmanager
def chapter_in_lab(chapter: str, params: dict, tmp_path: Path, done: str, timeout: float = 240_000):
    """Prepare ``chapter`` with ``params`` (papermill, not executed), open it in JupyterLab, Run All,
    and yield the page once the output matching ``done`` (the verdict) is shown and the kernel is idle
    (``timeout`` ms for it)."""
    from dsopt.chapters.runner import run_chapter

    root = tmp_path / "lab"
    root.mkdir()
    notebook = Path(run_chapter(chapter, params, root, prepare_only=True)["notebook"]).name
    with lab_page(root, notebook) as page:
        run_all(page)
        page.get_by_text(re.compile(done)).first.wait_for(timeout=timeout)
        page.get_by_text(IDLE).first.wait_for(timeout=60_000)
        yield page


def slider(page, label: str):
    """The ipywidgets slider whose label is exactly ``label``."""
    return page.locator(".widget-slider").filter(has=page.locator("label", has_text=re.compile(f"^{re.escape(label)}$")))
