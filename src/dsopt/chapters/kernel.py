"""One headless notebook execution with its own kernel, its own files, and a clean end on every exit path.

Why each piece exists (issue 23):

- **A private folder per run.** Each run's kernel connection file (it holds the HMAC key) and its IPC sockets
  live in a fresh 0700 folder (``tempfile.mkdtemp``), removed when the run ends however it ends. Jupyter's
  defaults (sockets ``kernel-ipc-N`` in the working folder, numbered by the first free N; a connection file
  in /tmp) let two runs started together in one folder pick the same sockets, and both failed.
- **papermill runs in a worker thread**, so the main thread keeps Python's signal handling (nbclient otherwise
  replaces the SIGINT/SIGTERM handlers with its own and no caller ever learns of the signal). On Ctrl-C or
  SIGTERM the main thread kills the kernel's process group, lets papermill write the partial notebook, and
  raises :class:`Terminated` (SIGTERM) or ``KeyboardInterrupt`` (Ctrl-C).
- **Notebook writes are atomic**: papermill's local writes (at each cell's start and end) go through a temp
  file and ``os.replace``, so a kill or a full disk leaves the previous complete notebook, never a cut one.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

from dsopt.util.atomic import atomic_write_text

#: Seconds the main thread waits for papermill to write the partial notebook after the kernel was killed.
_WIND_DOWN_S = 20.0
#: Name of the private kernel folders: ``dsopt-kernel-PID-RANDOM``.
_PREFIX = "dsopt-kernel-"
#: AF_UNIX socket paths are limited to ~107 bytes: a longer temp folder falls back to /tmp.
_MAX_BASE = 60


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the run stops like on Ctrl-C (``notebook``: the partial notebook's path, once known)."""

    notebook: str | None = None


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """In the main thread, turn SIGTERM into :class:`Terminated` (so ``finally`` blocks run); else no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove_stale(base: Path) -> None:
    """Remove the kernel folders of runs that were killed (``kill -9``: no ``finally`` ran): ours, whose pid is gone."""
    for folder in base.glob(f"{_PREFIX}*-*"):
        pid = folder.name[len(_PREFIX):].split("-", 1)[0]
        try:
            if not pid.isdigit() or folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # alive (PermissionError: someone else's process), or the folder went meanwhile
            continue


@contextlib.contextmanager
def private_folder() -> Iterator[Path]:
    """A fresh 0700 folder for one run's kernel files; removed (with whatever is in it) on every exit.

    Its name carries this process's id, so a later run removes it if this one was killed with no chance to.
    """
    base = tempfile.gettempdir()
    if len(base) > _MAX_BASE and os.path.isdir("/tmp"):
        base = "/tmp"
    _remove_stale(Path(base))
    path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base))  # 0700, a name nobody else has
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def kernel_config(folder: Path):
    """Kernels talk to papermill over IPC sockets in ``folder``: nothing listens on a port, the kernel has no
    reason to warn about unencrypted TCP, and no other run can pick the same socket names."""
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.connection_file = str(folder / "kernel.json")
    config.KernelManager.ip = str(folder / "kernel-ipc")
    return config


class KernelRegistry:
    """The kernel managers one run created (papermill creates them in the worker thread); kills them all.

    Kernels write their own stderr (ipykernel's log: e.g. a traceback when shut down mid-cell, a native crash's
    last words) to ``log`` instead of the terminal: ``dsopt run`` reports each failure in one line, and quotes
    the log's last line when the kernel died."""

    def __init__(self, log: Path | None = None):
        self.managers: list = []
        self.cancelled = threading.Event()
        self.log = log

    def manager_class(self) -> type:
        """An ``AsyncKernelManager`` subclass that records its instances here and starts nothing once cancelled."""
        from jupyter_client.manager import AsyncKernelManager

        registry = self

        class TrackedKernelManager(AsyncKernelManager):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                registry.managers.append(self)

            async def _async_pre_start_kernel(self, **kw):
                if registry.cancelled.is_set():
                    raise RuntimeError("the run was stopped before its kernel started")
                return await super()._async_pre_start_kernel(**kw)

            async def _async_launch_kernel(self, kernel_cmd, **kw):
                if registry.log is None or "stderr" in kw:
                    return await super()._async_launch_kernel(kernel_cmd, **kw)
                with open(registry.log, "ab") as log:  # the kernel's process keeps its own copy of the descriptor
                    return await super()._async_launch_kernel(kernel_cmd, **kw, stderr=log)

        return TrackedKernelManager

    def kill_all(self) -> None:
        """SIGKILL every kernel's process group (its workers too) and reap it. Safe from any thread."""
        self.cancelled.set()
        for km in list(self.managers):
            prov = getattr(km, "provisioner", None)
            proc = getattr(prov, "process", None)
            if proc is None:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                pgid = getattr(prov, "pgid", None)
                if pgid and pgid != os.getpgid(0):
                    os.killpg(pgid, signal.SIGKILL)
                else:
                    proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)


@contextlib.contextmanager
def quiet_papermill_log() -> Iterator[None]:
    """No stray papermill/nbclient log lines on stderr (e.g. "Kernel died while waiting for execute reply"):
    the caller reports each failure as one ``dsopt:`` line. A logging setup of the caller's own still sees them."""
    logger, handler = logging.getLogger("papermill"), logging.NullHandler()
    logger.addHandler(handler)  # a handler on the way: Python's last-resort stderr handler stays silent
    try:
        yield
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def atomic_notebook_writes() -> Iterator[None]:
    """While active, papermill writes local notebooks through a temp file + ``os.replace`` in the same folder."""
    from papermill.iorw import LocalHandler, papermill_io
    from papermill.utils import chdir

    class AtomicLocalHandler(LocalHandler):
        def write(self, buf, path):
            with chdir(self._cwd):
                dirname = os.path.dirname(path)
                if dirname and not os.path.exists(dirname):
                    raise FileNotFoundError(f"output folder {dirname} doesn't exist.")
                atomic_write_text(path, buf)

    # papermill picks the *last* "local" entry (its get_handler keeps overwriting it), and has no unregister:
    # swap the entries in place and put the originals back after.
    saved = list(papermill_io._handlers)
    papermill_io._handlers[:] = [(scheme, AtomicLocalHandler() if scheme == "local" else handler)
                                 for scheme, handler in saved]
    try:
        yield
    finally:
        papermill_io._handlers[:] = saved


def execute(run: Callable[..., object], *args, **kwargs) -> object:
    """``run(*args, **kwargs, config=..., kernel_manager_class=...)`` (papermill's ``execute_notebook``) with a private
    kernel folder, atomic notebook writes, and Ctrl-C/SIGTERM handled in the main thread (see the module doc).

    Exceptions of the run are re-raised here; on a signal the kernel is killed first and the signal's
    exception (``KeyboardInterrupt`` or :class:`Terminated`) is raised once papermill has written the notebook.
    """
    outcome: dict = {}
    with private_folder() as folder, atomic_notebook_writes(), quiet_papermill_log(), sigterm_raises():
        registry = KernelRegistry(folder / "kernel-stderr.log")

        def work():
            try:
                outcome["value"] = run(*args, **kwargs, config=kernel_config(folder),
                                       kernel_manager_class=registry.manager_class())
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread as is
                outcome["error"] = exc

        worker = threading.Thread(target=work, name="dsopt-papermill", daemon=True)
        try:
            worker.start()
            worker.join()  # interruptible: a signal's exception is raised here, in the main thread
        except BaseException:
            main = threading.current_thread() is threading.main_thread()  # a second Ctrl-C must not cut the cleanup
            ignore = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
            try:
                registry.kill_all()
                worker.join(_WIND_DOWN_S)  # papermill sees the dead kernel and saves the partial notebook
                registry.kill_all()  # a kernel that started meanwhile
            finally:
                for s, h in ignore.items():
                    signal.signal(s, h)
            raise
        if "error" in outcome:
            outcome["error"].kernel_log = last_line(registry.log)  # read before the folder goes
            raise outcome["error"]
    return outcome.get("value")


def last_line(path: Path, limit: int = 200) -> str:
    """The last non-empty line of a (kernel's log) file, shortened; "" when there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            lines = [ln.strip() for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:limit] if lines else ""
