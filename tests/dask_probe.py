"""Run functions for the Dask executor tests (workers import them by name, from this folder)."""
from __future__ import annotations

import multiprocessing
import os
import time


def _child(queue) -> None:
    queue.put(os.getpid())


def with_child(x: int) -> dict:
    """Start a child process (as a DataLoader worker or a launch would) and return both pids."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    child = queue.get(timeout=60)
    proc.join(60)
    return {"x": x, "pid": os.getpid(), "child": child, "exitcode": proc.exitcode, "nice": os.nice(0)}


def slow(x: float) -> dict:
    """Sleep ``x`` seconds; return the pid that ran it."""
    time.sleep(x)
    return {"x": x, "pid": os.getpid()}


def boom(x: float) -> dict:
    time.sleep(x)
    raise ValueError(f"boom after {x} s")
