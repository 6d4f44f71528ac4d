"""Background jobs: long measurements that leave the kernel free while a person steers a live run.

Messages from the browser (a slider moved, a button pressed) are handled only while the kernel is
idle, so a notebook cell that waits for a long comparison freezes every panel above it. With a
frontend, :func:`run_in_background` starts the computation on a thread of the kernel and returns at
once; the heavy work runs in :func:`dsopt.studies.jobs.run_jobs`' spawned workers (always in worker
processes here, at a lower CPU priority, so the live run and the UI keep their core). Any later cell
asks for a rendering of the result with :meth:`BackgroundJob.show`, which displays a progress bar now
and the rendering in the same place once the result is ready; no cell ever waits.

Headless (papermill, nbval, scripts: no frontend) the very same calls block: ``run_in_background``
runs the function to the end before returning and ``show`` displays the rendering at once, so an
executed notebook reads top to bottom, deterministically.

::

    job = run_in_background(compare_schedules, tasks, schedules, epochs=20, seeds=[0, 1, 2],
                            desc="schedule comparison")
    job.show(lambda r: Markdown(format_table(r["table"])))      # this cell: the table
    job.show(lambda r: comparison_figure(r["runs"]))            # a later cell: the figure

A render function receives the result and returns what to show: a plotly figure, an IPython display
object (``Markdown``, ``HTML``), a string, a list of those, or None; what it prints is shown too. Widget
objects are touched on the kernel's main thread only (the progress and the rendering are driven by a
task on the kernel's event loop, which runs whenever the kernel is idle). A job started again under
the same ``name`` (a re-run cell) cancels its predecessor; finished runs stay in the study's cache.
"""
from __future__ import annotations

import contextlib
import html
import io
import signal
import threading
import time
import traceback
from typing import Any, Callable

import ipywidgets as W

from dsopt.studies.jobs import JobsCancelled, current_execution, execution
from dsopt_widgets.frontend import has_frontend, show_static
from dsopt_widgets.live import poll
from dsopt_widgets.stale import live_box

#: Niceness added to background workers: the live run (normal priority) keeps its core.
BACKGROUND_NICE = 10

_ACTIVE: dict[str, "BackgroundJob"] = {}


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def _where_from(result: Any) -> str:
    """" · N runs read from stored runs" when a result carries its provenance (Study.measure_with_provenance): a
    job that took 0 s read its runs, it did not measure them."""
    prov = result.get("provenance") if isinstance(result, dict) else None
    text = prov.get("text") if isinstance(prov, dict) else None
    return f" · {html.escape(text.split('. Reused')[0])}" if text else ""


def _is_plotly_figure(obj: Any) -> bool:
    try:
        from plotly.basedatatypes import BaseFigure
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, BaseFigure)


def _flatten(obj: Any) -> list:
    if obj is None:
        return []
    if isinstance(obj, (list, tuple)):
        return [x for item in obj for x in _flatten(item)]
    return [obj]


def to_outputs(obj: Any) -> list[dict]:
    """Notebook output dicts for ``obj`` (see the module doc for what may be rendered)."""
    out = []
    for item in _flatten(obj):
        if isinstance(item, str):
            out.append({"output_type": "stream", "name": "stdout", "text": item if item.endswith("\n") else item + "\n"})
        elif _is_plotly_figure(item):
            import plotly.io as pio

            bundle = pio.renderers["plotly_mimetype"].to_mimebundle(item.to_dict())
            bundle["text/plain"] = f"<plotly figure: {len(item.data)} traces>"
            out.append({"output_type": "display_data", "data": bundle, "metadata": {}})
        else:
            from IPython.core.formatters import format_display_data

            data, meta = format_display_data(item)
            out.append({"output_type": "display_data", "data": data, "metadata": meta})
    return out


def _display_now(obj: Any) -> None:
    """Headless: display ``obj`` in the running cell (plotly figures as static output)."""
    from IPython.display import display

    for item in _flatten(obj):
        if isinstance(item, str):
            print(item)
        elif _is_plotly_figure(item):
            show_static(item)
        else:
            display(item)


def _error_output(exc: BaseException) -> dict:
    return {"output_type": "error", "ename": type(exc).__name__, "evalue": str(exc),
            "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__)}


class _View:
    """One place in the notebook where the job shows progress, then ``render(result)``."""

    def __init__(self, job: "BackgroundJob", render: Callable[[Any], Any] | None):
        self.job, self.render, self.rendered = job, render, False
        self.bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(width="240px"))
        self.label = W.HTML()
        self.cancel = W.Button(description="Cancel", tooltip="stop this measurement (finished runs stay cached)",
                               layout=W.Layout(width="90px"))
        self.cancel.on_click(lambda _: job.cancel())
        self.status = W.HBox([self.bar, self.cancel, self.label], layout=W.Layout(align_items="center"))
        self.output = W.Output(layout=W.Layout(overflow="auto"))
        self.box = live_box(self.status, self.output)  # greys out, saying why, once the kernel is gone

    def update(self) -> None:
        job = self.job
        desc, done, total = job.progress
        if job.state == "running" and not total:
            what = f"waiting for the {job.waiting_for}" if job.waiting_for else "starting in the background"
            self.label.value = f"<span>{job.desc}: {what} · {_fmt_seconds(job.elapsed())}</span>"
            return
        if job.state == "running":
            self.bar.value = done / total
            self.label.value = (f"<span>{job.desc}: {done} / {total} {desc} in the background · "
                                f"{_fmt_seconds(job.elapsed())} · {job.eta_text()}"
                                " · the kernel stays free: steer the live run above meanwhile · Cancel (or Kernel &gt; "
                                "Interrupt while no cell runs) stops it</span>")
            return
        if self.rendered:
            return
        self.rendered = True
        self.bar.layout.display = self.cancel.layout.display = "none"
        if job.state == "done":
            self.label.value = (f'<span style="color:#555">{job.desc}: finished in {_fmt_seconds(job.elapsed())}'
                                f'{_where_from(job._result)}</span>')
            self.output.outputs = tuple(self._render())
        elif job.state == "cancelled":
            by = f" by {job.cancel_reason}" if job.cancel_reason else ""
            self.label.value = (f'<span style="color:#b00020">{job.desc}: cancelled{by} ({job.error}); re-run the '
                                f'cell to resume</span>')
        else:
            self.label.value = f'<span style="color:#b00020">{job.desc} failed: {type(job.error).__name__}: {job.error}</span>'
            self.output.outputs = (_error_output(job.error),)

    def _render(self) -> list[dict]:
        if self.render is None:
            return []
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                shown = self.render(self.job.result())
        except Exception as exc:  # shown in place of the rendering, never as a kernel traceback
            return to_outputs(printed.getvalue() or None) + [_error_output(exc)]
        return to_outputs(printed.getvalue() or None) + to_outputs(shown)


class BackgroundJob:
    """A computation running on a kernel thread (its grids in run_jobs' workers), or already finished.

    ``state``: "running", "done", "failed" or "cancelled". ``progress``: ``(what, done, total)`` of
    the grid running now. ``result()`` blocks until the end (scripts; never call it in a notebook
    cell with a frontend: that would freeze the panels again) and re-raises a failure.
    """

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, *, desc: str, name: str | None,
                 background: bool, refresh: float = 0.5):
        self.fn, self.desc, self.name = fn, desc, name or desc
        self.state = "running"
        self.progress: tuple[str, int, int] = ("runs", 0, 0)
        self.error: BaseException | None = None
        self._result: Any = None
        self._cancel = threading.Event()
        self._views: list[_View] = []
        self._t0 = time.monotonic()
        self._t1: float | None = None
        self._progress_t: list[tuple[float, int]] = []
        self._done = threading.Event()
        self.refresh_interval = refresh
        self._poll = None
        self.waiting_for: str | None = None  # set by then(): the job this one waits for
        self.cancel_reason: str | None = None
        self._executor = current_execution().executor  # a thread starts with a fresh context: carry the caller's
        if background:
            self._thread = threading.Thread(target=self._target, args=(args, kwargs, True), daemon=True,
                                            name=f"dsopt-background-{self.name}")
            self._thread.start()
        else:
            self._thread = None
            self._target(args, kwargs, False)

    def _target(self, args, kwargs, background: bool) -> None:
        settings = dict(on_progress=self._on_progress, cancel=self._cancel, executor=self._executor)
        if background:
            settings.update(nice=BACKGROUND_NICE, isolate=True)
        try:
            with execution(**settings):
                self._result = self.fn(*args, **kwargs)
            self.state = "done"
        except JobsCancelled as exc:
            self.error, self.state = exc, "cancelled"
        except BaseException as exc:  # kept for result() and shown in the views
            self.error, self.state = exc, "failed"
            if not background:
                raise
        finally:
            self._t1 = time.monotonic()
            self._done.set()

    def _on_progress(self, desc: str, done: int, total: int) -> None:
        last_desc, _, last_total = self.progress
        if desc != last_desc or total != last_total or (self._progress_t and done < self._progress_t[-1][1]):
            self._progress_t = []  # a new grid (a study's next round): its own pace
        self.progress = (desc, done, total)
        self._progress_t.append((time.monotonic(), done))

    # -- queries -----------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once the job has finished, failed or been cancelled."""
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> Any:
        """The function's return value (waits for it); re-raises its exception."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.desc} still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self._result

    def elapsed(self) -> float:
        return (self._t1 or time.monotonic()) - self._t0

    def eta(self) -> float | None:
        """Seconds left in the grid running now, from the pace of its runs finished in this session (None
        before the first): the time the remaining runs take at that pace, minus the time since the last one
        finished, so the estimate counts down between finished runs (it stood still for minutes when runs were
        long: issue 20 item 6); 0 once that time has passed."""
        pts = self._progress_t
        _, done, total = self.progress
        if len(pts) < 2 or pts[-1][1] <= pts[0][1] or not total:
            return None
        rate = (pts[-1][1] - pts[0][1]) / max(pts[-1][0] - pts[0][0], 1e-9)
        return max(0.0, (total - done) / rate - (time.monotonic() - pts[-1][0]))

    def eta_text(self) -> str:
        """What the progress line says about the time left: an estimate that moves, or why there is none."""
        left = self.eta()
        _, done, total = self.progress
        if left is None:
            return (f"an estimate comes when the first of these {total - done} runs ends" if total > done
                    else "finishing")
        if left < 1:
            return "any moment now (slower than the pace so far)"
        return f"about {_fmt_seconds(left)} left"

    def cancel(self, reason: str | None = None) -> None:
        """Ask the job to stop (its workers exit within about a second; finished runs stay cached); ``reason``
        (e.g. "Kernel > Interrupt") is shown in its progress line."""
        if reason and not self._cancel.is_set():
            self.cancel_reason = reason
        self._cancel.set()

    def then(self, fn: Callable[..., Any], *args: Any, desc: str = "measurement", name: str | None = None,
             **kwargs: Any) -> "BackgroundJob":
        """A job running ``fn(this job's result, *args, **kwargs)`` once this one has finished.

        In the background when this job is (its thread waits for this one; cancelling either stops
        it, and a failure here fails it too), else at once. Use it for work that needs the result,
        e.g. measurements on the models a comparison trained, so that no cell waits for them.
        """
        if self._thread is None:
            return run_in_background(fn, self.result(), *args, desc=desc, name=name, background=False, **kwargs)
        first = self
        box: dict = {}
        started = threading.Event()  # the thread may run before run_in_background has returned the job

        def chained():
            started.wait()
            job = box["job"]
            job.waiting_for = first.desc
            while not first._done.wait(0.5):
                if job._cancel.is_set():
                    raise JobsCancelled(desc)
            result = first.result()  # re-raises the first job's failure (a cancellation stays one)
            job.waiting_for = None
            return fn(result, *args, **kwargs)

        box["job"] = job = run_in_background(chained, desc=desc, name=name, background=True)
        started.set()
        return job

    # -- display -----------------------------------------------------------------------------------
    def show(self, render: Callable[[Any], Any] | None = None) -> None:
        """Show ``render(result)`` here: at once when finished (headless: always), else progress now
        and the rendering in its place when the result is ready (the cell itself returns at once).

        Returns None, so a cell ending in ``job.show(...)`` shows only the rendering: nbval executes cells
        without history, where a trailing ``;`` does not hide a returned object's repr.
        """
        if self._thread is None:  # ran in the foreground (headless)
            if self.state == "done" and render is not None:
                _display_now(render(self._result))
            return None
        from IPython.display import display

        view = _View(self, render)
        self._views.append(view)
        view.update()
        display(view.box)
        if self._poll is None:
            self._poll = poll(self._tick, self.refresh_interval)
        return None

    def _tick(self) -> bool:
        """Main thread, on the kernel's event loop: move the progress bars; render when finished."""
        for view in self._views:
            view.update()
        return not self.done

    def __repr__(self) -> str:
        desc, done, total = self.progress
        return f"<BackgroundJob {self.desc!r}: {self.state}, {done}/{total} {desc}>"


def interrupt_cancels_background() -> bool:
    """Make Kernel > Interrupt, pressed while no cell runs, cancel every running background job.

    ipykernel ignores SIGINT while idle: it installs Python's default handler only around a cell's execution and
    restores the handler it saved afterwards. So an Interrupt pressed while a comparison ran in the background
    reached nothing, and nothing on the page said to press Cancel (issue 20 item 5). This makes the saved
    handler one that cancels the running jobs (their lines say "cancelled by Kernel > Interrupt"; finished runs
    stay cached); during a cell, Interrupt still interrupts that cell, as in any notebook. The live runs of the
    panels are not touched (their Stop ends them). Returns False (nothing changed) outside an ipykernel, or
    where its hook (``saved_sigint_handler``) is missing.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None or not hasattr(kernel, "saved_sigint_handler"):
        return False
    previous = kernel.saved_sigint_handler
    if getattr(previous, "dsopt_cancels_background", False):
        return True

    def on_interrupt(signum, frame):
        for job in list(_ACTIVE.values()):
            if not job.done and job._thread is not None:
                job.cancel("Kernel > Interrupt")
        if callable(previous) and previous is not signal.default_int_handler:  # never raise in the idle loop
            previous(signum, frame)

    on_interrupt.dsopt_cancels_background = True
    kernel.saved_sigint_handler = on_interrupt
    return True


def run_in_background(fn: Callable[..., Any], *args: Any, desc: str = "measurement", name: str | None = None,
                      background: bool | None = None, **kwargs: Any) -> BackgroundJob:
    """Run ``fn(*args, **kwargs)`` as a :class:`BackgroundJob`: in the background with a frontend,
    to the end before returning without one (``background`` overrides the detection).

    ``desc`` names the job in its progress line; ``name`` (default ``desc``) identifies it: a new job
    with the name of a running one cancels that one first (a re-run cell does not run twice).
    """
    if background is None:
        background = has_frontend()
    key = name or desc
    previous = _ACTIVE.get(key)
    if previous is not None and not previous.done:
        previous.cancel()
        previous._done.wait(30)
    job = BackgroundJob(fn, args, kwargs, desc=desc, name=key, background=background)
    _ACTIVE[key] = job
    if background:
        interrupt_cancels_background()
    return job
