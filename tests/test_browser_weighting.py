"""Chapter 04 in a real JupyterLab in headless Chromium: the weighting panel renders, the gamma slider
redraws the weight curves in the page and the Python side answers (the panel's message, Apply)."""
from __future__ import annotations

import re

import pytest
from jupyterlab_harness import chapter_in_lab, slider
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LINES = "(el) => Array.from(el.querySelectorAll('.scatterlayer path.js-line')).map(p => p.getAttribute('d')).join('|')"


def test_weighting_panel_gamma_slider_updates_curves_and_python(tmp_path):
    params = {"scale": "tiny", "epochs": 1, "n_seeds": 1, "live_epochs": 2, "imbalance_ratio": 20.0,
              "tasks": "credit_card_default"}
    with chapter_in_lab("04", params, tmp_path, done=r"Claim: 'minority recall \+27 %'") as page:
        gamma = slider(page, "gamma")
        gamma.wait_for(timeout=120_000)
        curves = page.locator(".js-plotly-plot").filter(has_text="weight vs true-class probability").last
        curves.wait_for(timeout=120_000)
        gamma.scroll_into_view_if_needed()  # JupyterLab renders cells far from the viewport lazily
        before = curves.evaluate(LINES)
        readout = gamma.locator(".widget-readout")
        expect(readout).to_have_text("2.0", timeout=30_000)
        handle = gamma.locator(".noUi-handle")
        handle.click()
        for _ in range(3):
            handle.press("ArrowLeft")
        page.wait_for_function(f"([el, d]) => ({LINES})(el) !== d", arg=[curves.element_handle(), before],
                               timeout=30_000)
        expect(readout).to_have_text("1.7", timeout=30_000)
        # The Python side answered: the panel's message names the overlaid focal curve's new gamma.
        page.get_by_text(re.compile(r"overlay: focal \(gamma=1\.7, alpha=None\)")).first.wait_for(timeout=30_000)
        # Apply: validated by the run's Controls on the Python side.
        page.get_by_role("button", name="Apply").click()
        page.get_by_text(re.compile(r"applied: article .* from step \d+|queued: article")).first.wait_for(timeout=30_000)
        gamma.scroll_into_view_if_needed()
        page.screenshot(path="/tmp/lab04.png", full_page=False)
