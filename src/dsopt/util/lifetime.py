"""Processes that end with their parent: no worker or server outlives the kernel or test that started it.

A spawned worker blocked on its task queue never sees its parent die (it holds both ends of the queue's
pipe), so without help it lives on after a ``kill -9`` of the kernel. Two mechanisms, both cheap:

- :func:`set_parent_death_signal` asks the Linux kernel to signal this process the moment its parent
  dies (``prctl(PR_SET_PDEATHSIG)``; it survives ``exec``, so it also works in ``preexec_fn``);
- :func:`exit_with_parent` additionally starts a daemon thread that polls ``os.getppid()`` (portable:
  an orphan is re-parented) and an optional ``also()`` condition, and ends the process at once.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import Callable

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Linux: deliver ``sig`` to this process when its parent thread ends. False where unsupported.

    Note the kernel's rule: the "parent" is the *thread* that created this process, so create
    children from a thread that outlives them (run_jobs spawns its workers from the thread that waits).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return False


def exit_with_parent(parent_pid: int, *, interval: float = 0.5, also: Callable[[], bool] | None = None,
                     sig: int = signal.SIGKILL) -> threading.Thread:
    """End this process (``os._exit(1)``, no cleanup) when ``parent_pid`` is no longer its parent or
    ``also()`` returns True; checked every ``interval`` seconds on a daemon thread. Returns the thread.

    Call it first thing in a child (e.g. a process-pool initializer) with the parent's pid taken in
    the parent, so a parent that died before the child got here is noticed too.
    """
    set_parent_death_signal(sig)
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid or (also is not None and also()):
                os._exit(1)
            time.sleep(interval)

    thread = threading.Thread(target=watch, name="dsopt-exit-with-parent", daemon=True)
    thread.start()
    return thread
