"""Refresh a panel from a Recorder on the kernel's main thread (never from the training thread).

``RecorderFeed`` reads new rows by cursor and groups them by metric name. ``poll`` runs a
callback every ``interval`` seconds as an asyncio task on the kernel's event loop, so widget
updates happen on the main thread while the Trainer runs on its worker thread.
"""
from __future__ import annotations

import asyncio
import sys
import traceback
from collections import defaultdict
from typing import Callable

from dsopt.core.recorder import Recorder


class RecorderFeed:
    """Cursor over a Recorder: ``new()`` returns ``{name: ([steps], [values])}`` appended since last call."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder
        self.cursor = 0

    def new(self) -> dict[str, tuple[list, list]]:
        rows, self.cursor = self.recorder.since(self.cursor)
        out: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
        for r in rows:
            steps, values = out[r.name]
            steps.append(r.step)
            values.append(r.value)
        return dict(out)


def poll(callback: Callable[[], bool], interval: float = 0.5) -> asyncio.Task | None:
    """Call ``callback()`` every ``interval`` s on the running event loop until it returns False.

    Returns the task, or None when no event loop runs (plain scripts): then nothing is scheduled.
    A callback that raises stops the polling; its traceback goes to the kernel's own stderr (the
    terminal that started JupyterLab), not into the notebook or JupyterLab's log console.
    """

    async def loop():
        while True:
            try:
                keep = callback()
            except Exception:
                print(f"dsopt: polling {getattr(callback, '__qualname__', callback)} stopped:\n"
                      f"{traceback.format_exc()}", file=sys.__stderr__)
                return
            if not keep:
                return
            await asyncio.sleep(interval)

    try:
        ev = asyncio.get_running_loop()
    except RuntimeError:
        try:
            ev = asyncio.get_event_loop()
        except RuntimeError:
            return None
        if not ev.is_running():
            return None
    return ev.create_task(loop())
