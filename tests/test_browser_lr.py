"""Chapter 01 in a real JupyterLab in headless Chromium: the panel renders, a slider drives both
the preview in the page and the Python side (the panel's message and the run's Controls)."""
from __future__ import annotations

import re
import time

import pytest
from jupyterlab_harness import chapter_in_lab, slider
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_lr_panel_slider_updates_preview_and_python(tmp_path):
    params = {"scale": "tiny", "epochs": 3, "n_seeds": 1, "live_epochs": 2, "tasks": "digits"}
    with chapter_in_lab("01", params, tmp_path, done=r"With T_0=5, T_mult=2 stepped per epoch") as page:
        # The panel: sliders and the preview figure (plotly.js arrives over the kernel socket: be patient).
        t0 = slider(page, "T_0")
        t0.wait_for(timeout=120_000)
        preview = page.locator(".js-plotly-plot").filter(has_text="schedule preview").first
        preview.wait_for(timeout=120_000)
        curve = preview.locator(".scatterlayer .trace").first.locator("path.js-line")
        before = curve.get_attribute("d")
        readout = t0.locator(".widget-readout")
        expect(readout).to_have_text("5", timeout=30_000)
        handle = t0.locator(".noUi-handle")
        changed = "([el, d]) => el.getAttribute('d') !== d"
        handle.click()
        handle.press("ArrowLeft")
        handle.press("ArrowLeft")
        page.wait_for_function(changed, arg=[curve.element_handle(), before], timeout=30_000)
        page.get_by_text(re.compile(r"preview: restarts at none")).first.wait_for(timeout=30_000)  # T_0=3 >= horizon 3
        mid = curve.get_attribute("d")
        # Measure in the page: key down on the slider -> the preview's SVG path rewritten (kernel round trip
        # included), with a keydown listener and a MutationObserver; printed with -s, not asserted.
        curve.evaluate("""(el) => {
            window.__dsopt = {};
            document.addEventListener('keydown', () => { window.__dsopt.down = performance.now(); },
                                      {capture: true, once: true});
            new MutationObserver((m, obs) => { window.__dsopt.drawn = performance.now(); obs.disconnect(); })
                .observe(el, {attributes: true, attributeFilter: ['d']});
        }""")
        t_press = time.perf_counter()
        handle.press("ArrowLeft")
        page.wait_for_function(changed, arg=[curve.element_handle(), mid], timeout=30_000, polling="raf")
        seen_by_test = 1000 * (time.perf_counter() - t_press)
        in_page = page.evaluate("window.__dsopt.drawn - window.__dsopt.down")
        print(f"slider key down -> preview redrawn: {in_page:.0f} ms in the page ({seen_by_test:.0f} ms seen by the test)")
        expect(readout).to_have_text("2", timeout=30_000)
        # The Python side answered: the panel's message names the new restart positions.
        page.get_by_text(re.compile(r"preview: restarts at 2")).first.wait_for(timeout=30_000)
        # Apply: validated by the run's Controls on the Python side.
        page.get_by_role("button", name="Apply").click()
        page.get_by_text(re.compile(r"applied: T_0=2 from step \d+|queued: T_0=2; the run is not training")).first.wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "lab.png"), full_page=False)
