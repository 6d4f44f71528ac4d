"""A real JupyterLab server driven by Playwright in Debian's headless Chromium (for browser tests).

``lab_page(root)`` starts ``jupyter lab`` on a free loopback port with a random token, serving
``root``; yields a Playwright page at 1400x900; stops the server by PID afterwards. Never downloads a
browser: it uses /usr/bin/chromium (``apt-get install chromium``). Nothing outlives the test run: the
server gets SIGTERM when the test process dies (even by ``kill -9``: a parent-death signal), its kernels
exit when the server is gone, and Playwright's driver takes Chromium down with it.

In a pytest session the browser tests share ONE server and ONE Chromium (:class:`SharedLab`, installed by
conftest's ``shared_lab`` fixture for every ``browser`` test; stopped after the last browser test and at the
session's end, pass or fail): ``lab_page`` then opens the test's own notebook (under the session's base
folder) in a fresh browser context with a reset workspace, and afterwards shuts down every kernel the test
started, so each test still gets its own kernel and a page that knows nothing of the previous test.

Helpers do what a person does and wait on conditions, never on fixed sleeps (the machine may be shared
and slow): ``run_all``, ``wait_cells_done``, ``slider``, ``log_console_errors`` (JupyterLab's log
console, where kernel errors raised outside a cell -- e.g. in a widget callback -- appear).
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
import urllib.parse
import urllib.request
from pathlib import Path

from dsopt.util.lifetime import set_parent_death_signal

CHROMIUM = os.environ.get("DSOPT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
IDLE = re.compile(r"Python 3 \(ipykernel\)\s*\|\s*Idle")
VIEWPORT = {"width": 1400, "height": 900}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(root: Path, env_extra: dict | None = None, scratch: Path | None = None):
    """Start JupyterLab serving ``root``; yield its base URL with the token. Its settings folder and log go
    beside ``root`` (or into ``scratch``)."""
    port, token = _free_port(), secrets.token_hex(16)
    scratch = Path(scratch) if scratch is not None else root.parent
    settings = scratch / (root.name + "-lab-settings")
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True, exist_ok=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"checkForUpdates": False, "fetchNews": "false"}))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), **(env_extra or {})}
    env.pop("DSOPT_FRONTEND", None)
    log = open(scratch / (root.name + "-lab.log"), "w")
    # The server gets SIGTERM the moment this process dies (even by kill -9): it then shuts its
    # kernels down, and each kernel also exits on its own when its parent (the server) is gone.
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip", "127.0.0.1", "--port", str(port),
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        preexec_fn=lambda: set_parent_death_signal(signal.SIGTERM))
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


def _prepare_page(page) -> None:
    page.set_default_timeout(120_000)  # actions on a busy machine: generous, still bounded
    page.console_errors = []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.console_errors.append(f"page error: {e}"))


class SharedLab:
    """One JupyterLab server (serving ``root``) and one headless Chromium, started on first use and shared by the
    browser tests of a pytest session; :meth:`close` stops both (it can start again after)."""

    def __init__(self, root: Path, scratch: Path):
        self.root, self.scratch = Path(root).resolve(), Path(scratch)
        self._stack: contextlib.ExitStack | None = None
        self.base = self.token = self.browser = None

    def serves(self, root: Path) -> bool:
        return Path(root).resolve().is_relative_to(self.root)

    def _alive(self) -> bool:
        try:
            self._api("GET", "status")
        except OSError:
            return False
        return self.browser is not None and self.browser.is_connected()

    def start(self) -> None:
        """Start the server and Chromium, or start them again if an earlier test left either dead."""
        if self._stack is not None and self._alive():
            return
        with contextlib.suppress(Exception):  # what is left of a dead pair (every part is stopped regardless)
            self.close()
        from playwright.sync_api import sync_playwright

        stack = contextlib.ExitStack()
        try:  # stopped in reverse: Chromium, Playwright's driver, then the server (and its kernels)
            self.base, self.token = stack.enter_context(lab_server(self.root, scratch=self.scratch))
            pw = stack.enter_context(sync_playwright())
            self.browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            stack.callback(self.browser.close)
        except BaseException:
            stack.close()
            raise
        self._stack = stack

    def close(self) -> None:
        stack, self._stack, self.browser = self._stack, None, None
        if stack is not None:
            stack.close()

    def _api(self, method: str, path: str):
        req = urllib.request.Request(f"{self.base}/api/{path}?token={self.token}", method=method)
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
        return json.loads(body) if body else None

    def end_kernels(self) -> None:
        """Shut down every session and kernel (those of the test that just ran); the server waits for each.
        A server that no longer answers is left to :meth:`start` (the next test) or :meth:`close`."""
        with contextlib.suppress(OSError):
            for session in self._api("GET", "sessions"):
                with contextlib.suppress(OSError):
                    self._api("DELETE", f"sessions/{session['id']}")
            for kernel in self._api("GET", "kernels"):
                with contextlib.suppress(OSError):
                    self._api("DELETE", f"kernels/{kernel['id']}")

    @contextlib.contextmanager
    def page(self, root: Path, notebook: str):
        """``root/notebook`` opened in a fresh browser context (reset workspace); its kernels end afterwards."""
        self.start()
        path = (Path(root).resolve() / notebook).relative_to(self.root).as_posix()
        context = self.browser.new_context(viewport=VIEWPORT)
        try:
            page = context.new_page()
            _prepare_page(page)
            page.goto(f"{self.base}/lab/tree/{urllib.parse.quote(path)}?reset&token={self.token}")
            page.get_by_text(IDLE).first.wait_for(timeout=180_000)
            yield page
        finally:
            try:
                context.close()
            finally:
                self.end_kernels()


#: The session's shared lab while conftest's ``shared_lab`` fixture has installed one (browser tests).
SHARED: SharedLab | None = None


@contextlib.contextmanager
def chromium():
    """Headless Chromium: the shared lab's while it runs (one sync Playwright per process: a second one inside
    the first's event loop is refused), else one of its own, closed afterwards. Use a context of your own in it."""
    if SHARED is not None and SHARED.browser is not None:
        yield SHARED.browser
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def lab_page(root: Path, notebook: str, env_extra: dict | None = None):
    """Open ``notebook`` in JupyterLab in headless Chromium at 1400x900; yield the Playwright page.

    ``page.console_errors`` collects the browser console's errors and uncaught page errors. In a session with a
    :data:`SHARED` lab serving ``root`` (and no ``env_extra``), its server and Chromium are used.
    """
    if SHARED is not None and env_extra is None and SHARED.serves(root):
        with SHARED.page(root, notebook) as page:
            yield page
        return
    with lab_server(root, env_extra) as (base, token), chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        try:
            page = context.new_page()
            _prepare_page(page)
            page.goto(f"{base}/lab/tree/{notebook}?token={token}")
            page.get_by_text(IDLE).first.wait_for(timeout=180_000)
            yield page
        finally:
            context.close()


def run_all(page) -> None:
    """Run > Run All Cells (after the kernel reports Idle in the status bar)."""
    page.get_by_text(IDLE).first.wait_for(timeout=180_000)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


#: True when every code cell has run (a number in its prompt, none pending) and the kernel is idle.
CELLS_DONE_JS = """() => {
    const prompts = Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt'));
    const status = Array.from(document.querySelectorAll('.jp-StatusBar-Widget')).map(e => e.textContent).join(' ');
    return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()))
        && /\\|\\s*Idle/.test(status);
}"""


def wait_cells_done(page, timeout: float = 600) -> float:
    """Wait until every code cell ran and the kernel is idle; return the seconds waited."""
    t0 = time.monotonic()
    page.wait_for_function(CELLS_DONE_JS, timeout=timeout * 1000, polling=250)
    return time.monotonic() - t0


def run_code_cell(page, code: str) -> None:
    """Add a code cell at the end of the notebook, type ``code`` and run it (Shift+Enter)."""
    page.locator(".jp-Notebook .jp-Cell").last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")


def log_console_errors(page) -> list[str]:
    """Open JupyterLab's log console and return the text of its error-level entries.

    The log console shows kernel output that belongs to no cell, e.g. a traceback raised in a widget
    callback (a slider's observer, a button's handler, a panel's redraw); each
    entry's prompt carries its level (``data-log-level``).
    """
    panel = page.locator(".jp-LogConsolePanel").first
    if not panel.is_visible():  # the command toggles the console
        page.evaluate("() => window.jupyterapp.commands.execute('logconsole:open', {insertMode: 'split-bottom'})")
    panel.wait_for(timeout=30_000)
    bad = page.locator("[data-log-level='error'], [data-log-level='critical']")
    return panel.locator(".jp-OutputArea-child").filter(has=bad).all_inner_texts()


@contextlib.contextmanager
def chapter_in_lab(chapter: str, params: dict, tmp_path: Path, done: str | None = None, timeout: float = 600_000):
    """Prepare ``chapter`` with ``params`` (papermill, not executed), open it in JupyterLab and yield
    the page (with ``page.lab_root``). With ``done``: Run All first, and yield once the output matching
    ``done`` is shown (``timeout`` ms for it) and every cell ran."""
    from dsopt.chapters.runner import run_chapter

    root = tmp_path / "lab"
    root.mkdir()
    notebook = Path(run_chapter(chapter, params, root, prepare_only=True)["notebook"]).name
    with lab_page(root, notebook) as page:
        page.lab_root = root
        try:
            if done is not None:
                run_all(page)
                page.get_by_text(re.compile(done)).first.wait_for(timeout=timeout)
                wait_cells_done(page)
            yield page
        except BaseException:
            screenshot(page, tmp_path, f"{chapter}-failure")  # what the page showed when the test failed
            raise


def slider(page, label: str):
    """The ipywidgets slider whose label is exactly ``label``."""
    return page.locator(".widget-slider").filter(has=page.locator("label", has_text=re.compile(f"^{re.escape(label)}$")))


def plot(page, title: str):
    """The plotly figure (static or a panel's LiveFigure) showing ``title`` (a subplot or figure title)."""
    return page.locator(".js-plotly-plot").filter(has_text=title).last


def trace_points(page, figure, index: int) -> list[list[float]]:
    """[x, y] of trace ``index`` as plotted in the page (plotly's own data on the element)."""
    return figure.evaluate(f"""el => {{ const t = (el.data || [])[{index}] || {{}};
        return Array.from(t.x || []).map((x, i) => [x, (t.y || [])[i]]); }}""")


# ----------------------------------------------------------------------------- a live panel, as a person sees it
STATUS = re.compile(r"^(not started|running|pausing|paused|stopped|finished|failed) · epoch [0-9.]+ of \d+ · step (\d+) of \d+")


def steps_per_epoch(page) -> float:
    """Optimizer steps per epoch of the panel's run, from its status line ("epoch e of E · step n of N")."""
    line = page.locator(".widget-html").filter(has_text=re.compile(r"· step \d+ of \d+")).last.inner_text()
    m = re.search(r"epoch [0-9.]+ of (\d+) · step \d+ of (\d+)", line)
    return int(m.group(2)) / int(m.group(1))


def reveal(locator, attempts: int = 5) -> None:
    """Scroll ``locator`` to the middle of the view (JupyterLab draws only the cells near the view).

    The locator is resolved afresh on each try: a figure the panel redraws between finding the element and
    scrolling it ("Element is not attached to the DOM") is found again, never held (issue 24 item 6)."""
    from playwright.sync_api import Error as PlaywrightError

    for attempt in range(attempts):
        try:
            locator.evaluate("el => el.scrollIntoView({block: 'center'})")
            return
        except PlaywrightError as exc:
            if attempt == attempts - 1 or not re.search(r"not attached|detached|destroyed", str(exc)):
                raise
            time.sleep(0.2)


def wait_figure(page, title: str, condition: str, timeout: float = 60) -> None:
    """Wait until the plotly figure whose text holds ``title`` satisfies ``condition`` (JS, given the element),
    looking the figure up again at every poll: a redraw that replaces the element cannot leave the test
    watching a detached one."""
    page.wait_for_function(
        "([title, cond]) => { const el = Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".find(e => e.textContent.includes(title)); return !!el && (eval(cond))(el); }",
        arg=[title, condition], timeout=timeout * 1000, polling=250)


def run_status(page, timeout: float = 120) -> tuple[str, int]:
    """(state, step) read from the panel's status line."""
    line = page.locator(".widget-html").filter(has_text=re.compile(r"· step \d+ of \d+")).last
    line.wait_for(timeout=timeout * 1000)
    m = STATUS.match(line.inner_text().strip())
    assert m, f"unexpected status line: {line.inner_text()!r}"
    return m.group(1), int(m.group(2))


def wait_status(page, predicate, timeout: float = 180, what: str = "status") -> tuple[str, int]:
    """Poll the status line until ``predicate(state, step)``; return (state, step)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = run_status(page, timeout=30)
        except AssertionError:
            last = None
        if last is not None and predicate(*last):
            return last
        page.wait_for_timeout(200)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last status {last}")


def button(page, name: str):
    """The ipywidgets button labelled exactly ``name`` (the last one: the panel shown last)."""
    return page.locator(".widget-button").filter(has_text=re.compile(f"^{re.escape(name)}$")).last


def set_budget(page, epochs: int) -> None:
    """Type ``epochs`` into the panel's budget box (labelled "epochs") and press Enter: the next Start/Restart
    trains that long. A test that presses Pause on a fresh run gives it a budget long enough that the run
    cannot end before the click lands (a tiny 2-epoch run can, under load: the Pause button is disabled while
    the old run is over, so the click waits for Restart's answer and the fresh run may end meanwhile)."""
    box = page.locator(".widget-inline-hbox").filter(has=page.locator("label", has_text=re.compile(r"^epochs$")))
    box.locator("input").last.fill(str(epochs))
    box.locator("input").last.press("Enter")


def restart_and_pause(page, epochs: int = 200) -> int:
    """Restart the panel's run with a budget of ``epochs``, wait until it trains, press Pause; return the step
    it holds at (the "pausing at step N" message shown, then "paused")."""
    set_budget(page, epochs)
    button(page, "Restart").click()
    page.get_by_text(re.compile(rf"restarted: a fresh run of {epochs} epochs")).first.wait_for(timeout=120_000)
    wait_status(page, lambda s, n: s == "running", what="the restarted run to train")
    button(page, "Pause").click()
    page.get_by_text(re.compile(r"^pausing at step \d+: changes applied now take effect")).first.wait_for(
        timeout=120_000)
    return wait_status(page, lambda s, n: s == "paused", what="the run to pause")[1]


def wait_points(page, figure, index: int, more_than: int, timeout: float = 180) -> list:
    """Wait until trace ``index`` of ``figure`` holds more than ``more_than`` points; return them."""
    deadline = time.monotonic() + timeout
    pts: list = []
    while time.monotonic() < deadline:
        pts = trace_points(page, figure, index)
        if len(pts) > more_than:
            return pts
        page.wait_for_timeout(250)
    raise AssertionError(f"trace {index} still has {len(pts)} points after {timeout} s (wanted > {more_than})")


def measure_key_to_redraw(page, handle, title: str, key: str = "ArrowRight",
                          marks: str = ".scatterlayer path.js-line", title_after: str = "") -> tuple[float, float]:
    """Press ``key`` on a slider handle; return (ms in the page from key down until the ``marks`` (CSS, inside
    the figure titled ``title``: its lines by default, e.g. ``.scatterlayer .point`` for markers) are drawn
    anew, ms seen by the test). The kernel round trip is included: the figure is recomputed in Python and
    re-sent. ``title_after``: count only a drawing whose title contains it (a figure that a live run
    also redraws by itself would otherwise end the measurement early)."""
    box = page.locator(".widget-output").filter(has=plot(page, title)).last
    box.evaluate("""(el, [marks, titleAfter]) => {
        const lines = () => Array.from(el.querySelectorAll('.js-plotly-plot ' + marks))
            .map(p => p.getAttribute('d') || p.getAttribute('transform') || '').join('|')
            + '#' + el.querySelectorAll('.js-plotly-plot ' + marks).length;
        const titled = () => !titleAfter || Array.from(el.querySelectorAll('.js-plotly-plot .gtitle'))
            .some(t => t.textContent.includes(titleAfter));
        const before = lines();
        window.__dsopt = {};
        document.addEventListener('keydown', () => { window.__dsopt.down = performance.now(); },
                                  {capture: true, once: true});
        new MutationObserver((m, obs) => {
            if (lines() !== before && titled()) { window.__dsopt.drawn = performance.now(); obs.disconnect(); }
        }).observe(el, {attributes: true, childList: true, subtree: true});
    }""", [marks, title_after])
    t0 = time.perf_counter()
    handle.press(key)
    page.wait_for_function("() => window.__dsopt && window.__dsopt.drawn !== undefined", timeout=60_000, polling="raf")
    seen = 1000 * (time.perf_counter() - t0)
    return page.evaluate("window.__dsopt.drawn - window.__dsopt.down"), seen


def measure_key_to_text(page, handle, pattern: str, key: str = "ArrowRight") -> tuple[float, float]:
    """Press ``key`` on a slider handle; return (ms in the page from key down until a widget shows a text
    matching the JavaScript regex ``pattern`` that no widget showed before, ms seen by the test): for knobs
    whose answer is a line of text computed in Python (a kernel round trip)."""
    page.evaluate("""(pattern) => {
        const re = new RegExp(pattern);
        const texts = () => Array.from(document.querySelectorAll('.widget-html, .widget-label, .widget-output'))
            .map(e => e.textContent).filter(t => re.test(t));
        const before = new Set(texts());
        window.__dsopt = {};
        document.addEventListener('keydown', () => { window.__dsopt.down = performance.now(); },
                                  {capture: true, once: true});
        new MutationObserver((m, obs) => {
            if (texts().some(t => !before.has(t))) { window.__dsopt.drawn = performance.now(); obs.disconnect(); }
        }).observe(document.body, {attributes: true, childList: true, subtree: true, characterData: true});
    }""", pattern)
    t0 = time.perf_counter()
    handle.press(key)
    page.wait_for_function("() => window.__dsopt && window.__dsopt.drawn !== undefined", timeout=60_000, polling="raf")
    seen = 1000 * (time.perf_counter() - t0)
    return page.evaluate("window.__dsopt.drawn - window.__dsopt.down"), seen


def wait_file(path: Path, timeout: float = 120) -> Path:
    """Wait until ``path`` exists (written by a cell the test ran)."""
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.25)
    return path


def load() -> str:
    """The machine's load averages, to print beside every timing."""
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


def record_timing(line: str) -> None:
    """Print a timing line and keep it for the end-of-run summary (conftest's ``TIMINGS``), where CI shows it."""
    print(line)
    import conftest

    conftest.TIMINGS.append(line.strip())


def report_usable(chapter: str, t0: float, what: str, idle: float | None = None) -> float:
    """Record "Run All -> usable panel" for ``chapter`` (seconds since ``t0``, the Run All click)."""
    usable = time.monotonic() - t0
    ran = f"every cell ran, kernel idle: {idle:.0f} s; " if idle is not None else ""
    record_timing(f"chapter {chapter}: Run All -> {ran}usable panel ({what}): {usable:.0f} s ({load()})")
    return usable


def report_redraw(chapter: str, what: str, in_page: float, seen: float) -> None:
    """Record a "slider key down -> redrawn" latency (target < 100 ms on a quiet machine)."""
    record_timing(f"chapter {chapter}: slider key down -> {what} redrawn: {in_page:.0f} ms in the page ({seen:.0f} ms "
                  f"seen by the test; {load()}; target < 100 ms on a quiet machine)")


def clipped_controls(page) -> list[str]:
    """What a person at 1400x900 cannot read or use in the widgets on the page: labels cut off ("share of words
    chan..."), dropdowns whose chosen option is cut off, sliders whose track is under 120 px (06's N workers, 1 to
    1024, was 54 px wide). Empty when everything fits (issue 20 item 8)."""
    return page.evaluate("""() => {
        const out = [];
        for (const el of document.querySelectorAll('.widget-label, .widget-dropdown select')) {
            if (el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1)
                out.push(`clipped: ${el.textContent || el.value}`);
        }
        for (const el of document.querySelectorAll('.widget-slider .slider-container')) {
            const label = el.closest('.widget-slider').querySelector('.widget-label');
            if (el.offsetParent !== null && el.getBoundingClientRect().width < 120)
                out.push(`narrow slider (${Math.round(el.getBoundingClientRect().width)} px): ${label && label.textContent}`);
        }
        return out;
    }""")


def screenshot(page, tmp_path: Path, name: str) -> Path:
    """A 1400x900 screenshot in ``tmp_path`` (and in $DSOPT_SCREENSHOTS when set, to look at)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    folder = os.environ.get("DSOPT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / path.name).write_bytes(path.read_bytes())
    return path
