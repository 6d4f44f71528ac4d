"""Module-level run functions for the run_jobs tests (spawned workers import them by name)."""
from __future__ import annotations

import os
import time
from pathlib import Path


def sleepy(seconds: float, pid_dir: str | None = None) -> dict:
    """Write this worker's pid into ``pid_dir`` (if given), sleep, return the pid and niceness."""
    if pid_dir:
        Path(pid_dir, f"{os.getpid()}.pid").write_text(str(os.getpid()))
    time.sleep(seconds)
    return {"pid": os.getpid(), "nice": os.nice(0), "seconds": seconds}


def fails_after(seconds: float) -> dict:
    time.sleep(seconds)
    raise ValueError(f"failed after {seconds} s")


def dispatch(kind: str, pid_dir: str) -> dict:
    """``fails_after(1)`` for "fail", else ``sleepy(60, pid_dir)``."""
    return fails_after(1.0) if kind == "fail" else sleepy(60, pid_dir)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


def wait_gone(pids, timeout: float) -> list[int]:
    """Wait up to ``timeout`` s for every pid to end; return those still alive."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [p for p in left if alive(p)]
        time.sleep(0.1)
    return [p for p in left if alive(p)]


def wait_for_files(folder: Path, n: int, timeout: float) -> list[Path]:
    """Wait (condition-based, generous) until ``folder`` holds ``n`` pid files."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(Path(folder).glob("*.pid"))
        if len(files) >= n:
            return files
        time.sleep(0.1)
    raise TimeoutError(f"only {len(list(Path(folder).glob('*.pid')))} of {n} workers started within {timeout} s")
