"""Chapter 03 in a real JupyterLab in headless Chromium, as a person uses it: Run All, move the threshold,
type a bad seed, Try it (both runs train in the background and draw), Pause/Resume, Export; the comparison's
verdict follows. Records Run All -> usable panel and key press -> rewritten preview."""
from __future__ import annotations

import re
import time

import pytest
from jupyterlab_harness import (
    chapter_in_lab,
    clipped_controls,
    log_console_errors,
    measure_key_to_text,
    report_redraw,
    report_usable,
    reveal,
    run_all,
    set_budget,
    slider,
    wait_cells_done,
    wait_figure,
)
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

POINTS = "(el) => el.querySelectorAll('.scatterlayer .trace:nth-child(-n+2) .point').length"


def test_augmentation_panel_preview_try_it_and_export(tmp_path):
    params = {"scale": "tiny", "n_seeds": 1, "live_size": 1, "live_epochs": 2}
    with chapter_in_lab("03", params, tmp_path) as page:
        t0 = time.monotonic()
        run_all(page)
        threshold = slider(page, "similarity threshold")
        threshold.wait_for(timeout=600_000)
        reveal(threshold)
        # the panel's own first pair of runs starts by itself: its message says so (or that it is done)
        message = page.get_by_text(re.compile(r"^(preview|preparing|training both runs|done): ")).first
        message.wait_for(timeout=60_000)
        report_usable("03", t0, "augmentation preview shown, first pair of runs started")
        assert "Traceback" not in page.content()
        handle = threshold.locator(".noUi-handle")
        handle.click()
        # one step: Python recomputes the kept flags of the cached augmentations and rewrites the preview
        in_page, seen = measure_key_to_text(page, handle, r"similarity >= \d\.\d\d", key="ArrowLeft")
        report_redraw("03", "preview (text)", in_page, seen)
        # Move the threshold to 1.00 with the keyboard: Python recomputes the kept flags (nothing re-augmented).
        handle.press("End")
        expect(threshold.locator(".widget-readout")).to_have_text("1.00", timeout=30_000)
        page.get_by_text(re.compile(r"similarity >= 1\.00.*-> 0 of \d+ kept")).first.wait_for(timeout=30_000)
        page.get_by_text(re.compile(r"filtered out")).first.wait_for(timeout=30_000)
        # A bad seed is refused with a message naming the parameter and its range.
        seed_label = page.locator("label", has_text=re.compile(r"^seed$"))
        seed = page.locator(".widget-inline-hbox").filter(has=seed_label).locator("input")
        seed.fill("-5")
        seed.press("Enter")
        refused = re.compile(r"not changed: seed must be an integer in \[0, 2147483647\]; got -5")
        page.get_by_text(refused).first.wait_for(timeout=30_000)
        seed.fill("0")
        seed.press("Enter")
        page.get_by_text(re.compile(r"^preview: ")).first.wait_for(timeout=30_000)
        handle.click()
        handle.press("Home")  # threshold 0: every augmentation kept
        expect(threshold.locator(".widget-readout")).to_have_text("0.00", timeout=30_000)
        # A budget long enough to press Pause while it trains (tiny runs of 20 epochs end in a second or two; both
        # runs of 50 take ~9 s here, of 200 they took 35 s of CI's time for nothing the test checks)
        set_budget(page, 50)
        # Try it: prepared and trained in the background; both validation curves draw; the kernel stays free.
        page.get_by_role("button", name="Try it").click()
        page.get_by_text(re.compile(r"training both runs: \d+ originals")).first.wait_for(timeout=180_000)
        page.get_by_role("button", name="Pause").click()
        page.get_by_text(re.compile(r"^(paused|pausing)$")).first.wait_for(timeout=60_000)
        page.get_by_role("button", name="Resume").click()
        done = re.compile(r"done: test macro-F1 [\d.]+ % without, [\d.]+ % with augmentation")
        page.get_by_text(done).first.wait_for(timeout=300_000)
        reveal(page.locator(".js-plotly-plot").filter(has_text="try it: validation macro-F1 per epoch").first)
        wait_figure(page, "try it: validation macro-F1 per epoch", f"(el) => ({POINTS})(el) >= 4")
        # Export: the command that reruns this setting headless.
        page.get_by_role("button", name="Export").click()
        page.wait_for_function("() => Array.from(document.querySelectorAll('textarea')).some(t => "
                               "t.value.startsWith('dsopt run 03 -p live_size 1') && "
                               "t.value.includes('-p live_threshold 0.0 -p seed 0 -p live_epochs 50'))", timeout=30_000)
        # The panel fits a 1400 px window: no horizontal scrollbar in the notebook.
        wide = page.evaluate("() => Array.from(document.querySelectorAll('.jp-WindowedPanel-outer, .jp-Notebook'))"
                             ".some(el => el.scrollWidth > el.clientWidth + 1)")
        assert not wide
        assert clipped_controls(page) == []  # every label readable, every slider usable at 1400x900
        page.screenshot(path=str(tmp_path / "lab03.png"), full_page=False)
        # the comparison, in the background meanwhile, posts the claim's verdict; then every cell has run
        page.get_by_text(re.compile(r"Claim: 'F1 \+12 %'")).first.wait_for(timeout=900_000)
        wait_cells_done(page)
        assert "Traceback" not in page.content()
        errors = log_console_errors(page)
        assert errors == [], "JupyterLab's log console shows kernel errors:\n" + "\n".join(errors)
