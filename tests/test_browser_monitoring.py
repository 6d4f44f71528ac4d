"""Chapter 07 in a real JupyterLab in headless Chromium, as a person uses it: Run All, watch the replay, move
the EWMA lambda slider (the ARL preview redraws in the page and Python answers), type a bad window size
(refused with its range), Restart, Pause and Resume the replay, and read the verdict. Records Run All -> usable
panel and key press -> redrawn ARL preview."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from jupyterlab_harness import (
    lab_page,
    log_console_errors,
    measure_key_to_redraw,
    report_redraw,
    report_usable,
    reveal,
    run_all,
    slider,
)
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LINES = "(el) => Array.from(el.querySelectorAll('.scatterlayer path.js-line')).map(p => p.getAttribute('d')).join('|')"
#: The lines of the ARL preview as the page shows it NOW: the figure is looked up on every call, because the panel
#: may replace the plotly element when it redraws (a handle held across redraws is "not attached to the DOM").
PREVIEW_LINES = ("() => { const figs = Array.from(document.querySelectorAll('.js-plotly-plot'))"
                 ".filter(f => f.textContent.includes(\"the knobs' charts\")); "
                 f"return figs.length ? ({LINES})(figs[figs.length - 1]) : null; }}")


def test_monitoring_panel_in_jupyterlab(tmp_path, shared_data):
    from dsopt.chapters.runner import run_chapter
    from dsopt.studies.monitoring.data import load_features

    root = tmp_path / "lab"
    root.mkdir()
    # the MiniLM embeddings first, outside the page's timeouts (the notebook reads them from its cache folder)
    load_features("tiny", cache_dir=root / ".dsopt-cache" / "07" / "embeddings", progress=False)
    notebook = Path(run_chapter("07", {"scale": "tiny", "n_seeds": 3, "live_windows": 40, "prometheus": False}, root,
                                prepare_only=True)["notebook"]).name
    with lab_page(root, notebook) as page:
        try:
            _session(page, tmp_path)
        except Exception:
            page.screenshot(path=str(tmp_path / "lab07-failed.png"), full_page=False)
            raise


def _session(page, tmp_path):
    t0 = time.monotonic()
    run_all(page)
    lam = slider(page, "EWMA λ")
    lam.wait_for(timeout=300_000)
    reveal(lam)
    preview = page.locator(".js-plotly-plot").filter(has_text="the knobs' charts").last
    preview.wait_for(timeout=300_000)  # drawn once the panel's cell has run on a busy kernel: be patient
    page.get_by_text(re.compile(r"^(running|finished)")).first.wait_for(timeout=300_000)  # the replay's status line
    report_usable("07", t0, "knobs, ARL preview drawn, replay running")
    reveal(preview)
    before = page.evaluate(PREVIEW_LINES)
    reveal(lam)
    handle = lam.locator(".noUi-handle")
    handle.click()
    in_page, seen = measure_key_to_redraw(page, handle, "the knobs' charts")
    report_redraw("07", "ARL preview", in_page, seen)
    for _ in range(4):
        handle.press("ArrowRight")
    page.get_by_text(re.compile(r"EWMA\(λ=0\.15, L=\d\.\d\d\): ARL0 \d+")).first.wait_for(timeout=120_000)
    reveal(preview)  # the locator finds the figure shown now (JupyterLab draws cells near the view)
    page.wait_for_function(f"(d) => {{ const now = ({PREVIEW_LINES})(); return now !== null && now !== d; }}",
                           arg=before, timeout=120_000, polling=250)

    # a bad window size is refused with its range, nothing restarts
    box = page.locator(".widget-text").filter(has=page.locator("label", has_text=re.compile("^window size$")))
    field = box.locator("input")
    field.fill("1")
    field.press("Enter")
    page.get_by_role("button", name="Restart", exact=True).click()
    page.get_by_text(re.compile(r"not restarted: window_size must be an integer in \[2, 10000\]")).first.wait_for(
        timeout=60_000)

    # a valid restart, then Pause / Resume while it runs
    field.fill("10")
    field.press("Enter")
    page.get_by_role("button", name="Restart", exact=True).click()
    page.get_by_text(re.compile(r"restarted: a fresh run")).first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Pause", exact=True).click()
    status = page.locator(".widget-html", has_text=re.compile(r"window \d+ of \d+"))  # a step is a window
    expect(status.first).to_contain_text(re.compile(r"paus|finished"), timeout=60_000)
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(status.first).to_contain_text(re.compile(r"running|finished"), timeout=60_000)

    # the comparison, in the background meanwhile, posts its verdict
    # (the verdict table's status cell: one of the five statuses, alone in its cell)
    page.get_by_text(re.compile(r"^(supported|contradicted|inconclusive( at this budget)?|not testable here|"
                                r"not decidable by this design)$")).first.wait_for(timeout=900_000)
    page.screenshot(path=str(tmp_path / "lab07.png"), full_page=False)
    errors = log_console_errors(page)
    assert errors == [], "JupyterLab's log console shows kernel errors:\n" + "\n".join(errors)
