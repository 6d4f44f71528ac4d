"""Chapter 02 in a real JupyterLab in headless Chromium: the pruning panel renders; moving its slider with
the keyboard masks a head on the live model (the heatmap gains a marker, the accuracy line changes) and
Remove heads times a structurally pruned copy; the comparison's verdict follows. Records Run All -> usable
panel and key press -> redrawn heatmap."""
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
    screenshot,
    wait_cells_done,
)
from jupyterlab_harness import slider as fraction_slider
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TINY = {"scale": "tiny", "finetune_epochs": 0, "fractions": [0.5], "n_seeds": 1, "live_epochs": 2,
        "live_fraction": 0.0, "latency_batch_sizes": [1], "latency_lengths": [16], "latency_repeats": 1}


def test_pruning_panel_slider_masks_heads_in_the_page(tmp_path):
    with chapter_in_lab("02", TINY, tmp_path) as page:
        t0 = time.monotonic()
        run_all(page)
        # usable: the slider, the heatmap of the real importance, the status line (the comparison runs on)
        slider = fraction_slider(page, "fraction")
        slider.wait_for(timeout=300_000)
        heatmap = page.locator(".js-plotly-plot").filter(has_text="head importance").first
        heatmap.locator(".heatmaplayer image, .heatmaplayer .hm").first.wait_for(state="attached", timeout=300_000)
        status = page.get_by_text(re.compile(r"of 2 heads pruned")).first
        status.wait_for(timeout=300_000)
        report_usable("02", t0, "slider, importance heatmap and status shown")
        reveal(slider)  # JupyterLab renders only the cells in view
        assert status.text_content().startswith("0 of 2 heads pruned")
        markers = heatmap.locator(".scatterlayer .point")
        assert markers.count() == 0
        handle = slider.locator(".noUi-handle")
        handle.click()
        for _ in range(4):  # 0.00 -> 0.20: still no head of two
            handle.press("ArrowRight")
        expect(slider.locator(".widget-readout")).to_have_text("0.20", timeout=120_000)
        page.wait_for_timeout(1000)  # let the four answers settle before timing the fifth
        # 0.20 -> 0.25: one of the two heads is masked on the live model; the heatmap gains its marker
        in_page, seen = measure_key_to_redraw(page, handle, "head importance", marks=".scatterlayer .point")
        report_redraw("02", "heatmap (a head masked, validation accuracy recomputed)", in_page, seen)
        expect(slider.locator(".widget-readout")).to_have_text("0.25", timeout=120_000)
        page.get_by_text(re.compile(r"^1 of 2 heads pruned \(50 %\): validation accuracy")).first.wait_for(timeout=120_000)
        expect(heatmap.locator(".scatterlayer .point")).to_have_count(1, timeout=60_000)  # the figure is redrawn
        page.get_by_role("button", name="Remove heads").click()
        page.get_by_text(re.compile(r"latency \(ms\)")).first.wait_for(timeout=60_000)
        screenshot(page, tmp_path, "02-removed")
        # the comparison, in the background meanwhile, ends with its verdict; then every cell has run
        page.get_by_text(re.compile(r"of the accuracy kept' -- (supported|contradicted|inconclusive)")).first.wait_for(
            timeout=900_000)
        wait_cells_done(page)
        errors = log_console_errors(page)
        assert errors == [], "JupyterLab's log console shows kernel errors:\n" + "\n".join(errors)
