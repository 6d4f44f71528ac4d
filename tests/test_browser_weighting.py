"""Chapter 04 in a real JupyterLab in headless Chromium, used the way a person uses it.

Run All; the kernel goes idle while the scheme comparison runs in the background and the live run
trains; the live weight trace gains points during the comparison; the gamma slider redraws the weight
curves (latency printed); Restart begins a new run; Pause holds the step counter; a new scheme applied
while paused takes effect at the first step after Resume, where the per-batch weight trace jumps; Stop
ends the run; Export's `dsopt run` command replays the session to the same Recorder history; the
table, figure and verdict appear when ready; JupyterLab's log console holds no error.
"""
from __future__ import annotations

import json
import re
import time

import pytest
from jupyterlab_harness import (
    button,
    chapter_in_lab,
    log_console_errors,
    measure_key_to_redraw,
    plot,
    report_redraw,
    report_usable,
    restart_and_pause,
    reveal,
    run_all,
    run_code_cell,
    run_status,
    screenshot,
    set_budget,
    slider,
    steps_per_epoch,
    trace_points,
    wait_cells_done,
    wait_file,
    wait_points,
    wait_status,
)
from playwright.sync_api import expect

from dsopt.chapters.runner import run_chapter

pytestmark = pytest.mark.browser

PARAMS = {"scale": "tiny", "epochs": 2, "n_seeds": 2, "live_epochs": 1, "imbalance_ratio": 20.0,
          "tasks": "credit_card_default"}
WEIGHT_CLASS_0 = 4  # live traces: recall class 0, recall class 1, PR-AUC, ROC-AUC, weight class 0 (each batch), ...


def test_a_person_steers_chapter_04(tmp_path):
    with chapter_in_lab("04", PARAMS, tmp_path) as page:
        t0 = time.monotonic()
        run_all(page)
        idle = wait_cells_done(page, timeout=600)
        gamma = slider(page, "gamma")
        reveal(gamma)
        curves = plot(page, "weight vs true-class probability")
        curves.locator(".scatterlayer .trace path.js-line").first.wait_for(timeout=180_000)
        wait_status(page, lambda s, n: s == "running" and n > 0, what="the live run to train")
        report_usable("04", t0, "curves drawn, live run training", idle)
        progress = page.get_by_text(re.compile(r"scheme comparison: (starting|\d+ / \d+ runs) in the background"))
        expect(progress.first).to_be_visible(timeout=30_000)
        live = plot(page, "live run: train weight per class")
        first = len(wait_points(page, live, WEIGHT_CLASS_0, 0))
        wait_points(page, live, WEIGHT_CLASS_0, first + 3)
        assert progress.first.is_visible(), "the comparison ended before the live trace could be watched"
        screenshot(page, tmp_path, "04-panel-while-comparing")

        # gamma redraws the overlaid focal curves (computed in Python: a kernel round trip)
        handle = gamma.locator(".noUi-handle")
        handle.click()
        in_page, seen = measure_key_to_redraw(page, handle, "weight vs true-class probability", key="ArrowLeft")
        report_redraw("04", "curves", in_page, seen)
        expect(gamma.locator(".widget-readout")).to_have_text("1.9", timeout=60_000)
        expect(page.get_by_text(re.compile(r"overlay: focal \(gamma=1\.9, alpha=None\)")).first).to_be_visible(
            timeout=60_000)

        # Restart, Pause; switch the scheme while paused: it applies at the first step after Resume.
        # A budget of 200 epochs: the fresh run cannot end before Pause lands (the 2-epoch one could, under load).
        held = restart_and_pause(page, 200)
        page.locator(".widget-dropdown").filter(has_text="scheme").locator("select").select_option("inverse_frequency")
        button(page, "Apply").click()
        expect(page.get_by_text(re.compile(rf"queued: inverse_frequency; the run is paused: applies at the first step "
                                           rf"after Resume \(step {held}\)")).first).to_be_visible(timeout=120_000)
        page.wait_for_timeout(2000)  # watch the counter for two seconds
        assert run_status(page) == ("paused", held)
        screenshot(page, tmp_path, "04-paused")
        button(page, "Resume").click()
        applied = page.get_by_text(re.compile(r"applied at step (\d+) \(epoch [0-9.]+\): inverse_frequency"))
        expect(applied.first).to_be_visible(timeout=120_000)
        step = int(re.search(r"step (\d+)", applied.first.inner_text()).group(1))
        assert step == held
        # the majority class's weight per batch: about 1.15 under the article's rule, about 0.52 from that step on
        at = step / steps_per_epoch(page)
        deadline = time.monotonic() + 180
        while not any(x > at for x, _ in trace_points(page, live, WEIGHT_CLASS_0)) and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        w = trace_points(page, live, WEIGHT_CLASS_0)
        before, after = [y for x, y in w if x < at - 1e-9], [y for x, y in w if x >= at - 1e-9]
        assert before and after and min(before) > 1.0 and max(after) < 0.8, (before[-3:], after[:3])

        button(page, "Stop").click()
        _, stopped_at = wait_status(page, lambda s, n: s == "stopped", what="the run to stop")
        page.wait_for_timeout(1000)
        assert run_status(page) == ("stopped", stopped_at)
        button(page, "Export").click()
        area = page.get_by_placeholder(re.compile("press Export")).last
        expect(area).to_have_value(re.compile(r"^dsopt run 04 -p live_epochs \d+ -p control_schedule '"),
                                   timeout=30_000)
        command = area.input_value()
        live_epochs = int(re.search(r"-p live_epochs (\d+)", command).group(1))
        schedule = json.loads(re.search(r"control_schedule '(.*)'$", command).group(1))
        assert [step, "scheme", "inverse_frequency"] in schedule and schedule[-1] == [stopped_at, "stop", True]
        run_code_cell(page, "panel.trainer.recorder.save_json('live_rows.json')")
        live_rows = json.loads(wait_file(page.lab_root / "live_rows.json").read_text())
        screenshot(page, tmp_path, "04-stopped-exported")
        set_budget(page, PARAMS["live_epochs"])  # short again: it runs beside the comparison
        button(page, "Restart").click()
        expect(page.get_by_text(re.compile(r"restarted: a fresh run of \d+ epochs, same seed, starting with "
                                           r"inverse_frequency")).first).to_be_visible(timeout=120_000)

        verdict = page.get_by_text(re.compile(r"Claim: 'minority recall \+27 %'"))
        verdict.first.wait_for(timeout=900_000)
        expect(page.get_by_text(re.compile(r"recall @ threshold 0\.5")).first).to_be_attached()
        reveal(verdict.first)
        screenshot(page, tmp_path, "04-verdict")
        if run_status(page)[0] in ("running", "paused"):
            button(page, "Stop").click()
            wait_status(page, lambda s, n: s in ("stopped", "finished"), what="the restarted run to end")
        errors = log_console_errors(page)
        assert errors == [], "JupyterLab's log console shows kernel errors:\n" + "\n".join(errors)

    replay = run_chapter("04", {"scale": "tiny", "tasks": "credit_card_default", "epochs": 1, "n_seeds": 1,
                                "imbalance_ratio": 20.0, "live_epochs": live_epochs, "control_schedule": schedule},
                         tmp_path / "replay", progress=False)
    assert replay["metrics"]["live_recorder"] == live_rows
