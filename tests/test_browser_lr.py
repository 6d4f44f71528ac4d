"""Chapter 01 in a real JupyterLab in headless Chromium, used the way a person uses it.

Run All; the kernel goes idle while the comparison runs in the background and the live run trains;
the panel's live loss trace gains points while the comparison is still running; a slider redraws the
preview (key press -> redrawn preview latency printed); Apply names the step it applied at and the
live LR trace changes from that step; Pause stops the step counter, Resume continues it, Stop ends the
run; Export gives the `dsopt run` command whose replay has the same Recorder history; Restart begins a
new run; the table, figure and verdict appear when the comparison is done; JupyterLab's log console
holds no error. Every wait is on a condition, with generous timeouts (the machine may be shared).
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
    wait_figure,
    wait_points,
    wait_status,
)
from playwright.sync_api import expect

from dsopt.chapters.runner import run_chapter
from dsopt.lr.schedules import schedule_from_params

pytestmark = pytest.mark.browser

# tiny scale: a comparison of a minute or two in the background (4 schedules x 3 seeds on digits)
PARAMS = {"scale": "tiny", "epochs": 12, "n_seeds": 3, "live_epochs": 2, "tasks": "digits"}


def test_a_person_steers_chapter_01(tmp_path):
    with chapter_in_lab("01", PARAMS, tmp_path) as page:
        t0 = time.monotonic()
        run_all(page)
        idle = wait_cells_done(page, timeout=600)
        # The panel: its run started by itself, its preview is drawn (plotly.js travels over the kernel socket).
        base_lr = slider(page, "base LR")
        reveal(base_lr)
        preview = plot(page, "schedule preview")
        curve = preview.locator(".scatterlayer .trace").first.locator("path.js-line")
        curve.wait_for(timeout=180_000)
        state, _ = wait_status(page, lambda s, n: s == "running" and n > 0, what="the live run to train")
        report_usable("01", t0, "preview drawn, live run training", idle)
        # The comparison runs in the background while the live loss trace gains points.
        progress = page.get_by_text(re.compile(r"schedule comparison: (starting|\d+ / \d+ runs) in the background"))
        expect(progress.first).to_be_visible(timeout=30_000)
        live = plot(page, "live run: train loss")
        first = len(wait_points(page, live, 0, 0))
        wait_points(page, live, 0, first + 3)
        assert progress.first.is_visible(), "the comparison ended before the live trace could be watched"
        screenshot(page, tmp_path, "01-panel-while-comparing")

        # A key press on a slider redraws the preview (Python computes the curve: a kernel round trip).
        t_0 = slider(page, "T_0 (epochs)")
        t0_handle = t_0.locator(".noUi-handle")
        t0_handle.click()
        in_page, seen = measure_key_to_redraw(page, t0_handle, "schedule preview")
        report_redraw("01", "preview", in_page, seen)
        expect(t_0.locator(".widget-readout")).to_have_text("6", timeout=60_000)
        expect(page.get_by_text(re.compile(r"preview: restarts at 6, 18, ")).first).to_be_visible(timeout=60_000)
        t0_handle.press("ArrowLeft")  # back to the article's T_0=5
        expect(t_0.locator(".widget-readout")).to_have_text("5", timeout=60_000)

        # Restart begins a new run (same knobs, same seed); Pause holds its step counter.
        # A budget of 200 epochs: the fresh run cannot end before Pause lands (the 2-epoch one could, under load).
        held = restart_and_pause(page, 200)
        # Apply while paused: queued for the first step after Resume.
        handle = base_lr.locator(".noUi-handle")
        handle.click()
        for _ in range(10):  # 1.0e-3 -> 1.0e-2 in steps of 10^0.1
            handle.press("ArrowRight")
        expect(base_lr.locator(".widget-readout")).to_have_text("1.0e-2", timeout=60_000)
        expect(page.get_by_text(re.compile(r"preview: restarts at 5, 15")).first).to_be_visible(timeout=60_000)
        # The readout is the page's value; Apply acts on the kernel's. Wait until Python has drawn the preview for
        # 1e-2 (its peak): under load the page sent the last key presses' values after Apply, so Apply queued an
        # intermediate value and the later previews replaced its message (CI, 2026-12-08).
        wait_figure(page, "schedule preview", "(el) => { const y = ((el.data || [])[0] || {}).y || []; "
                                              "return y.length > 0 && Math.abs(Math.max(...y) - 0.01) < 1e-9; }")
        button(page, "Apply").click()
        queued = re.compile(rf"queued: base_lr=0\.01; the run is paused: applies at the first step after "
                            rf"Resume \(step {held}\)")
        expect(page.get_by_text(queued).first).to_be_visible(timeout=120_000)
        page.wait_for_timeout(2000)  # watch the counter for two seconds
        assert run_status(page) == ("paused", held)
        screenshot(page, tmp_path, "01-paused")
        button(page, "Resume").click()
        wait_status(page, lambda s, n: s == "running" and n > held, what="the run to resume")
        # The message names the step it applied at; the live LR trace jumps ~10x from there.
        applied = page.get_by_text(re.compile(r"applied at step (\d+) \(epoch [0-9.]+\): base_lr=0\.01"))
        expect(applied.first).to_be_visible(timeout=120_000)
        step = int(re.search(r"step (\d+)", applied.first.inner_text()).group(1))
        assert step == held  # the first step after Resume
        at = step / steps_per_epoch(page)  # the live traces' x axis is the fractional epoch
        deadline = time.monotonic() + 180
        while not any(x > at for x, _ in trace_points(page, live, 2)) and time.monotonic() < deadline:
            page.wait_for_timeout(250)  # the live figure is redrawn every 2 s
        lr = trace_points(page, live, 2)  # the live figure's traces: train loss, validation accuracy, learning rate
        # Each plotted LR divided by the article's schedule with the old base (1e-3) at the same position:
        # 1 before the step, 10 from it on (comparing neighbouring points instead fails near a cycle's end,
        # where the cosine itself drops several-fold per step).
        old = schedule_from_params({"base_lr": 1e-3, "T_0": 5, "T_mult": 2})
        before = [y / old(x) for x, y in lr if x < at - 1e-9 and old(x) > 0]
        after = [y / old(x) for x, y in lr if x >= at - 1e-9 and old(x) > 0]
        assert before and after, (len(before), len(after))
        assert before == pytest.approx([1.0] * len(before), rel=1e-4), before[-3:]
        assert after == pytest.approx([10.0] * len(after), rel=1e-4), after[:3]

        # Stop ends the run.
        button(page, "Stop").click()
        _, stopped_at = wait_status(page, lambda s, n: s == "stopped", what="the run to stop")
        page.wait_for_timeout(1000)
        assert run_status(page) == ("stopped", stopped_at)

        # Export: the command that replays this session headless.
        button(page, "Export").click()
        area = page.get_by_placeholder(re.compile("press Export")).last
        expect(area).to_have_value(re.compile(r"^dsopt run 01 -p live_epochs \d+ -p control_schedule '"),
                                   timeout=30_000)
        command = area.input_value()
        live_epochs = int(re.search(r"-p live_epochs (\d+)", command).group(1))
        schedule = json.loads(re.search(r"control_schedule '(.*)'$", command).group(1))
        assert schedule == [[step, "base_lr", pytest.approx(0.01)], [stopped_at, "stop", True]]
        run_code_cell(page, "panel.trainer.recorder.save_json('live_rows.json')")
        rows_file = page.lab_root / "live_rows.json"
        deadline = time.monotonic() + 120
        while not rows_file.is_file() and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        live_rows = json.loads(rows_file.read_text())
        screenshot(page, tmp_path, "01-stopped-exported")

        # Restart again: a new run with the current knobs (base LR 1e-2 from step 0), same seed.
        set_budget(page, PARAMS["live_epochs"])  # short again: it runs beside the comparison
        button(page, "Restart").click()
        expect(page.get_by_text(re.compile(r"restarted: a fresh run of \d+ epochs, same seed, starting with "
                                           r"base_lr=0\.01")).first).to_be_visible(timeout=120_000)

        # The comparison's table, figure and verdict appear when it is done (no cell waited for it).
        verdict = page.get_by_text(re.compile(r"With T_0=5, T_mult=2 stepped per epoch"))
        verdict.first.wait_for(timeout=900_000)
        expect(page.get_by_text(re.compile(r"epochs to 95 % of best")).first).to_be_visible()
        expect(page.locator(".js-plotly-plot").filter(has_text="digits").first).to_be_attached()
        reveal(verdict.first)
        screenshot(page, tmp_path, "01-verdict")
        if run_status(page)[0] in ("running", "paused"):  # the restarted run may have finished meanwhile
            button(page, "Stop").click()
            wait_status(page, lambda s, n: s in ("stopped", "finished"), what="the restarted run to end")
        errors = log_console_errors(page)
        screenshot(page, tmp_path, "01-log-console")
        assert errors == [], "JupyterLab's log console shows kernel errors:\n" + "\n".join(errors)

    # `dsopt run` replays the exported session headless to the same Recorder history.
    replay = run_chapter("01", {"scale": "tiny", "tasks": "digits", "epochs": 2, "n_seeds": 1,
                                "live_epochs": live_epochs, "control_schedule": schedule},
                         tmp_path / "replay", progress=False)
    assert replay["metrics"]["live_recorder"] == live_rows
