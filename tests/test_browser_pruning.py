"""Chapter 02 in a real JupyterLab in headless Chromium: the pruning panel renders; moving its slider with
the keyboard masks a head on the live model (the heatmap gains a marker, the accuracy line changes) and
Remove heads times a structurally pruned copy."""
from __future__ import annotations

import re

import pytest
from jupyterlab_harness import chapter_in_lab
from jupyterlab_harness import slider as fraction_slider
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TINY = {"scale": "tiny", "finetune_epochs": 0, "fractions": [0.5], "n_seeds": 1, "live_epochs": 2,
        "live_fraction": 0.0, "latency_batch_sizes": [1], "latency_lengths": [16], "latency_repeats": 1}


def test_pruning_panel_slider_masks_heads_in_the_page(tmp_path):
    with chapter_in_lab("02", TINY, tmp_path, done=r"of the accuracy kept' -- (supported|contradicted|inconclusive)") as page:
        slider = fraction_slider(page, "fraction")
        slider.wait_for(timeout=120_000)
        heatmap = page.locator(".js-plotly-plot").filter(has_text="head importance").first
        heatmap.wait_for(timeout=120_000)
        slider.scroll_into_view_if_needed()  # JupyterLab renders only the cells in view
        status = page.get_by_text(re.compile(r"of 2 heads pruned")).first
        assert status.text_content().startswith("0 of 2 heads pruned")
        markers = heatmap.locator(".scatterlayer .point")
        assert markers.count() == 0
        handle = slider.locator(".noUi-handle")
        handle.click()
        for _ in range(5):  # 0.00 -> 0.25: one of the two heads
            handle.press("ArrowRight")
        expect(slider.locator(".widget-readout")).to_have_text("0.25", timeout=30_000)
        page.get_by_text(re.compile(r"^1 of 2 heads pruned \(50 %\): validation accuracy")).first.wait_for(timeout=30_000)
        page.wait_for_function("el => el.querySelectorAll('.scatterlayer .point').length === 1",
                               arg=heatmap.element_handle(), timeout=30_000)
        page.get_by_role("button", name="Remove heads").click()
        page.get_by_text(re.compile(r"latency \(ms\)")).first.wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "lab.png"), full_page=False)
