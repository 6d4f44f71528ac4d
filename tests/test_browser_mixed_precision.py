"""Chapter 05 in a real JupyterLab in headless Chromium, as a person uses it: Run All (the comparison runs in
the background), move the scale slider (the histogram is redrawn in the page, the Python side answers),
Restart the live run with a longer budget, Pause, Apply a new scale, Resume (the change lands at a step),
Stop, Export; the comparison's verdict appears; no cell shows a traceback. Records Run All -> usable panel
and key press -> redrawn histogram."""
from __future__ import annotations

import re
import time

import pytest
from jupyterlab_harness import (
    chapter_in_lab,
    log_console_errors,
    measure_key_to_redraw,
    report_redraw,
    report_usable,
    reveal,
    run_all,
    set_budget,
    slider,
    wait_cells_done,
)
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

def test_mixed_precision_panel_in_lab(tmp_path):
    params = {"scale": "tiny", "modes": "fp32,fp16", "n_seeds": 1, "speed_repeats": 2, "speed_steps": 2,
              "memory_batches": 2}
    with chapter_in_lab("05", params, tmp_path) as page:
        t0 = time.monotonic()
        run_all(page)
        scale = slider(page, "init scale 2^k")
        scale.wait_for(timeout=300_000)
        reveal(scale)  # JupyterLab renders cells far from the viewport lazily
        readout = scale.locator(".widget-readout")
        expect(readout).to_have_text("16", timeout=30_000)
        # the run's probe delivers real gradients within a few steps; the histogram is drawn with them
        page.get_by_text(re.compile(r"at scale 2\^16: [\d.]+ % of the non-zero activations")).first.wait_for(
            timeout=300_000)
        hist = page.locator(".js-plotly-plot").filter(has_text=re.compile(r"loss scale 2\^16 \(gradients of step"))
        hist.first.wait_for(timeout=60_000)
        report_usable("05", t0, "scale slider, gradient histogram drawn")
        assert hist.first.locator(".barlayer path").count() > 10  # bars, not an empty frame
        handle = scale.locator(".noUi-handle")
        handle.click()
        in_page, seen = measure_key_to_redraw(page, handle, "gradients of step", marks=".barlayer path",
                                         title_after="scale 2^17 ")
        report_redraw("05", "gradient histogram", in_page, seen)
        expect(readout).to_have_text("17", timeout=30_000)
        for _ in range(2):
            handle.press("ArrowRight")
        expect(readout).to_have_text("19", timeout=30_000)
        moved = page.locator(".js-plotly-plot").filter(has_text=re.compile(r"loss scale 2\^19 \(gradients of step"))
        moved.first.wait_for(timeout=30_000)  # redrawn in the page, shifted by 3 powers of two
        page.get_by_text(re.compile(r"at scale 2\^19: [\d.]+ % of the non-zero")).first.wait_for(timeout=30_000)
        live = page.locator(".js-plotly-plot").filter(has_text="skipped steps")
        live.first.wait_for(timeout=60_000)
        # Restart with a budget long enough to steer, then Pause / Apply / Resume / Stop / Export. (force: the
        # live figure below the buttons is redrawn every 2 s, which playwright reads as "not stable")
        set_budget(page, 200)
        page.get_by_role("button", name="Restart", exact=True).click(force=True)
        page.get_by_text(re.compile(r"restarted: a fresh run of 200 epochs")).first.wait_for(timeout=60_000)
        page.get_by_text(re.compile(r"^running$")).first.wait_for(timeout=60_000)
        page.get_by_role("button", name="Pause", exact=True).click(force=True)
        page.get_by_text(re.compile(r"^paused$")).first.wait_for(timeout=60_000)
        for _ in range(2):
            handle.press("ArrowLeft")
        expect(readout).to_have_text("17", timeout=30_000)
        # the readout is the page's value; Apply acts on the kernel's: wait until Python has answered for 2^17
        # (under load the page sends the key presses' values after a delay, and Apply queued 2^18)
        page.get_by_text(re.compile(r"at scale 2\^17: [\d.]+ % of the non-zero")).first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Apply", exact=True).click(force=True)
        page.get_by_text(re.compile(r"queued: init_scale=2\^17.*the run is paused")).first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Resume", exact=True).click(force=True)
        page.get_by_text(re.compile(r"applied at step \d+ \(epoch [\d.]+\): init_scale=2\^17")).first.wait_for(
            timeout=60_000)
        page.get_by_role("button", name="Stop", exact=True).click(force=True)
        page.get_by_text(re.compile(r"^stopped$")).first.wait_for(timeout=60_000)
        page.get_by_role("button", name="Export", exact=True).click(force=True)
        # the export line replays the session: the new scale at its step, then the stop
        page.wait_for_function("""() => Array.from(document.querySelectorAll('textarea')).some(t =>
            t.value.startsWith('dsopt run 05') && t.value.includes('"init_scale", 131072.0')
            && t.value.includes('"stop", true'))""", timeout=30_000)
        page.screenshot(path=str(tmp_path / "panel.png"), full_page=False)
        # the comparison, in the background meanwhile, ends with the published anchor and the verdict
        page.get_by_text(re.compile(r"NVIDIA's published AMP numbers")).first.wait_for(timeout=900_000)
        wait_cells_done(page)
        errors = log_console_errors(page)
        assert errors == [], "JupyterLab's log console shows kernel errors:\n" + "\n".join(errors)
        assert page.locator(".jp-OutputArea-output").filter(has_text="Traceback").count() == 0
