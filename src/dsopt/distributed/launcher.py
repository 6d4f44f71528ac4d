"""Launch N worker processes from a notebook cell or a script, DDP or Horovod, and supervise them.

``launch(...)`` blocks (and prints every rank's output, prefixed ``[rank R]``, while it runs);
``start(...)`` returns a :class:`DistributedJob` at once (panels, background comparisons). Either way:

* the code runs in fresh interpreters (exec, never fork): nothing defined in the notebook has to
  pickle, and the kernel never touches CUDA (GPUs are counted with ``nvidia-smi``, not torch);
* a cell's code is written to a module file that the workers import, so functions it defines are
  importable by name inside the workers (spawn-safe);
* a supervisor process (:mod:`dsopt.distributed.supervisor`) in its own session owns the workers.
  Its stdin is a pipe from this process: a kernel interrupt writes ``stop``; a kernel that dies or
  restarts closes the pipe; in both cases the supervisor kills every worker within seconds;
* if a worker raises, the others are ended within ``grace_s`` seconds and :class:`WorkerFailed`
  carries the failing rank's traceback; past ``timeout`` the hung workers' stacks are printed and
  :class:`WorkerTimeout` names them;
* every rank's :func:`dsopt.distributed.runtime.recorder` rows arrive in ``job.recorders[rank]``
  (rank 0's feeds the chapter's live panel).

A :class:`DistributedJob` is a :class:`~dsopt.core.handle.RunHandle` (``stop(wait)``, ``wait(timeout)``,
``running``, ``status``, ``state``, ``recorder``: rank 0's). It cannot pause: collectives would time
out on the ranks still waiting, so ``pause()`` and ``resume()`` raise :class:`PauseUnsupported`.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import pickle
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsopt.core.handle import Progress
from dsopt.core.recorder import Recorder
from dsopt.util.validation import ParameterError, check_choice, check_number

BACKENDS = ("ddp", "horovod")
DEVICES = ("cpu", "cuda")
_ACTIVE: weakref.WeakSet[DistributedJob] = weakref.WeakSet()


# -- errors (picklable: every constructor argument goes to super().__init__) ------------------------
class DistributedError(RuntimeError):
    """A distributed job did not finish normally."""


class WorkerFailed(DistributedError):
    """A worker raised. ``rank``: the first failing rank; ``remote_traceback``: its traceback."""

    def __init__(self, rank: int, exc_type: str, message: str, remote_traceback: str, stopped_after_s: float = 0.0):
        super().__init__(rank, exc_type, message, remote_traceback, stopped_after_s)
        self.rank, self.exc_type, self.message = rank, exc_type, message
        self.remote_traceback, self.stopped_after_s = remote_traceback, stopped_after_s

    def __str__(self) -> str:
        return (f"rank {self.rank} raised {self.exc_type}: {self.message}\n"
                f"(every other worker was ended {self.stopped_after_s:.1f} s later)\n"
                f"--- traceback of rank {self.rank} ---\n{self.remote_traceback}")


class WorkerTimeout(DistributedError):
    """Workers still running after ``timeout_s`` were killed. ``hung_ranks``: the ranks that had not finished."""

    def __init__(self, hung_ranks: list, timeout_s: float):
        super().__init__(hung_ranks, timeout_s)
        self.hung_ranks, self.timeout_s = list(hung_ranks), timeout_s

    def __str__(self) -> str:
        ranks = ", ".join(map(str, self.hung_ranks)) or "none identified"
        return (f"timeout: still running after {self.timeout_s:g} s; killed. Hung ranks: {ranks} "
                f"(their stacks are printed above)")


class WorkersLost(DistributedError):
    """The workers ended without reporting (e.g. killed from outside) or the supervisor died."""


class PauseUnsupported(DistributedError, NotImplementedError):
    """A distributed job cannot be paused (the other ranks' collectives would time out): stop it instead."""


class BackendUnavailable(DistributedError):
    """The requested backend cannot run here; the message says why and how to fix it."""


# -- helpers ------------------------------------------------------------------------------------------
def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def visible_gpus() -> int:
    """GPUs visible to workers, counted WITHOUT initialising CUDA in this process (``nvidia-smi -L``)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    n = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        n = min(n, len([d for d in cvd.split(",") if d.strip() and d.strip() != "-1"]))
    return n


def horovodrun_path(python: str | None = None) -> str | None:
    """``horovodrun`` next to the Python that runs the workers, if Horovod is installed there."""
    exe = Path(python or sys.executable).with_name("horovodrun")
    return str(exe) if exe.is_file() else None


def check_backend(backend: str, python: str | None = None) -> None:
    """Raise :class:`BackendUnavailable` with the reason and the fix when ``backend`` cannot run."""
    check_choice("backend", backend, list(BACKENDS))
    if backend == "horovod":
        import importlib.util

        absent = os.environ.get("DSOPT_NO_HOROVOD") == "1"
        if absent or importlib.util.find_spec("horovod") is None or horovodrun_path(python) is None:
            from dsopt.distributed.doctor import INSTALL_HINT

            raise BackendUnavailable(f"backend 'horovod' is not available: Horovod is not installed in "
                                     f"{sys.prefix}. {INSTALL_HINT}")


@dataclass
class Target:
    """What the workers run: a cell's source, or an importable function with pickled arguments."""

    kind: str
    code: str | None = None
    module: str | None = None
    name: str | None = None
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    vars: dict = field(default_factory=dict)

    @classmethod
    def of(cls, target, args=(), kwargs=None, vars=None) -> Target:
        if isinstance(target, str) and ":" in target and "\n" not in target and " " not in target:
            module, name = target.split(":", 1)
            return cls("function", module=module, name=name, args=tuple(args), kwargs=dict(kwargs or {}))
        if isinstance(target, str):
            return cls("code", code=target, vars=dict(vars or {}))
        if callable(target):
            module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
            if module in (None, "__main__") or "<locals>" in name or "." in name:
                raise ParameterError("target", f"target function {name!r} must be defined at module level in an "
                                               f"importable module (not in the notebook): spawned workers import it by "
                                               f"name. Put the cell's code under %%distributed instead.")
            return cls("function", module=module, name=name, args=tuple(args), kwargs=dict(kwargs or {}))
        raise ParameterError("target", f"target must be code (str), 'module:function' or a function; got {type(target).__name__}")


# -- the job --------------------------------------------------------------------------------------------
@dataclass
class LaunchResult:
    """A finished job: per-rank return values (or the cell's ``result`` variable), Recorders and timings."""

    status: str
    results: list
    recorders: dict[int, Recorder]
    run_dir: str
    world_size: int
    backend: str
    started_at: float
    ended_at: float
    marks: dict

    @property
    def wall_s(self) -> float:
        return self.ended_at - self.started_at


#: The supervisor's word for how a job ended -> the run handle's status (dsopt.core.handle.STATUSES).
_STATUS = {"running": "running", "ok": "finished", "stopped": "stopped", "failed": "failed", "timeout": "failed",
           "lost": "failed"}


class DistributedJob:
    """A running launch. ``wait()`` blocks, prints output and raises on failure; ``stop()`` ends it.

    A run handle (see the module docstring): ``state`` is a :class:`~dsopt.core.handle.Progress` of rank 0
    as of the last :meth:`poll_records`; its ``max_epochs`` and ``batches_per_epoch`` come from rank 0's
    rows of those names when the target logs them (the chapter's ``train_worker`` does).
    """

    def __init__(self, target: Target, n: int, backend: str, *, timeout: float | None, device: str, threads: int | None,
                 grace_s: float, run_dir: str | None, env: dict | None, python: str | None, echo: bool,
                 on_line: Callable[[int | str, str, str], None] | None, keep_run_dir: bool):
        self.n, self.backend, self.timeout, self.device = n, backend, timeout, device
        self.echo, self.on_line = echo, on_line
        self.started_at = time.time()
        self._own_dir = run_dir is None and not keep_run_dir
        self.run_dir = Path(run_dir or tempfile.mkdtemp(prefix="dsopt-dist-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.lines: list[tuple[int | str, str, str]] = []
        self.recorders: dict[int, Recorder] = {r: Recorder() for r in range(n)}
        self._tails = {r: 0 for r in range(n)}
        self._events: queue.Queue = queue.Queue()
        self._exit: dict | None = None
        self._closed = False
        self._ended: LaunchResult | BaseException | None = None  # what wait() returned or raised, once it ended
        self.state = Progress(max_epochs=0)
        spec = self._write_spec(target, threads, grace_s, env, python)
        self.proc = subprocess.Popen(
            [python or sys.executable, "-m", "dsopt.distributed.supervisor", str(self.run_dir / "spec.json")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [spec["pythonpath"],
                                                                          os.environ.get("PYTHONPATH", "")] if p)),
        )
        _ACTIVE.add(self)
        self._reader = threading.Thread(target=self._read, daemon=True, name="dsopt-dist-reader")
        self._reader.start()

    def _write_spec(self, target: Target, threads, grace_s, env, python) -> dict:
        import dsopt

        t: dict[str, Any] = {"kind": target.kind}
        if target.kind == "code":
            digest = hashlib.sha256(target.code.encode()).hexdigest()[:12]
            t["module"] = f"dsopt_cell_{digest}"
            t["path"] = str(self.run_dir / f"{t['module']}.py")
            Path(t["path"]).write_text(target.code)
            if target.vars:
                (self.run_dir / "vars.pkl").write_bytes(pickle.dumps(target.vars))
                t["vars"] = str(self.run_dir / "vars.pkl")
        else:
            t.update(module=target.module, name=target.name, sys_path=[os.getcwd()])
            (self.run_dir / "args.pkl").write_bytes(pickle.dumps((target.args, target.kwargs)))
            t["args"] = str(self.run_dir / "args.pkl")
        spec = {
            "target": t, "backend": self.backend, "world_size": self.n, "run_dir": str(self.run_dir),
            "port": free_port(), "threads": threads, "device": self.device, "timeout_s": self.timeout,
            "grace_s": grace_s, "env": env or {}, "python": python or sys.executable, "cwd": os.getcwd(),
            "pythonpath": str(Path(dsopt.__file__).resolve().parents[1]),
            "horovodrun": horovodrun_path(python) if self.backend == "horovod" else None,
        }
        (self.run_dir / "spec.json").write_text(json.dumps(spec))
        return spec

    # -- reading ------------------------------------------------------------------------------------
    def _read(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            try:
                msg = json.loads(raw)
            except ValueError:
                msg = {"t": "out", "rank": "supervisor", "stream": "stderr", "line": raw.decode(errors="replace").rstrip()}
            if msg.get("t") == "out":
                item = (msg["rank"], msg["stream"], msg["line"])
                self.lines.append(item)
                if self.on_line is not None:
                    self.on_line(*item)
            elif msg.get("t") == "exit":
                self._exit = msg
            self._events.put(msg)
        self._events.put({"t": "eof"})

    def poll_records(self) -> dict[int, int]:
        """Read new rows of every rank's streamed Recorder; returns rows added per rank."""
        added = {}
        for r in range(self.n):
            path = self.run_dir / f"rank{r}.records.jsonl"
            if not path.is_file():
                continue
            with open(path, "rb") as fh:
                fh.seek(self._tails[r])
                data = fh.read()
            end = data.rfind(b"\n") + 1  # only complete lines
            self._tails[r] += end
            rows = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
            for row in rows:
                self.recorders[r].log(row["name"], row["value"], step=row["step"], epoch=row["epoch"])
                if r == 0:
                    self._progress(row)
            added[r] = len(rows)
        return added

    def _progress(self, row: dict) -> None:
        s = self.state
        if row["name"] == "max_epochs":
            s.max_epochs = int(row["value"])
        elif row["name"] == "batches_per_epoch":
            s.batches_per_epoch = max(1, int(row["value"]))
        s.step = max(s.step, int(row["step"]))

    @property
    def recorder(self) -> Recorder:
        """Rank 0's Recorder (the reference run)."""
        return self.recorders[0]

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def outcome(self) -> str:
        """The supervisor's word: running, ok, stopped, failed, timeout or lost."""
        if self._exit is not None:
            return self._exit["status"]
        return "running" if self.running else "lost"

    @property
    def status(self) -> str:
        """The run handle's status: running, stopped, finished or failed (a job starts running; never paused)."""
        return _STATUS.get(self.outcome, "failed")

    def start(self) -> DistributedJob:
        """A job runs from its creation (:func:`start`): returns ``self`` (the run handle's contract)."""
        return self

    def pause(self) -> None:
        raise PauseUnsupported("a distributed job cannot pause: the other ranks' collectives would time out; "
                               "stop it and launch again")

    resume = pause

    # -- ending ---------------------------------------------------------------------------------------
    def stop(self, wait: float | None = None) -> None:
        """End every worker (what a kernel interrupt does). With ``wait``: return once they are gone,
        killing the supervisor's process group if they are not gone after ``wait`` seconds."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"stop\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
            if wait is None:
                return
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                self._kill()

    def _kill(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the supervisor's session: workers too (not horovod's)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def wait(self, timeout: float | None = None) -> LaunchResult:
        """Block until the job ends (printing output when ``echo``); raise on failure, timeout or interrupt.

        ``timeout``: raise TimeoutError (the job goes on) if it still runs after that many seconds.
        Once ended, every later call returns (or raises) the same.
        """
        if self._ended is None:
            self._ended = self._join(timeout)
        if isinstance(self._ended, BaseException):
            raise self._ended
        return self._ended

    def _join(self, timeout: float | None) -> LaunchResult | BaseException:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    msg = self._events.get(timeout=0.1)
                except queue.Empty:
                    self.poll_records()
                    if deadline is not None and time.monotonic() > deadline and self.proc.poll() is None:
                        raise TimeoutError(f"the job still runs after {timeout} s")
                    continue
                if msg.get("t") == "out" and self.echo:
                    rank, stream, line = msg["rank"], msg["stream"], msg["line"]
                    prefix = f"[rank {rank}] " if isinstance(rank, int) else f"[{rank}] "
                    print(prefix + line, file=sys.stderr if stream == "stderr" else sys.stdout, flush=True)
                elif msg.get("t") == "eof":
                    break
        except KeyboardInterrupt:
            self.stop(wait=10.0)
            self._drain()
            print(f"dsopt: interrupted; all {self.n} workers ended", file=sys.stderr, flush=True)
            raise
        except TimeoutError:
            raise  # the job goes on: a later wait() joins it
        finally:
            if self.proc.poll() is None and (deadline is None or time.monotonic() <= deadline):
                self.stop(wait=10.0)
        self.proc.wait()
        try:
            return self._finish()
        except BaseException as exc:  # noqa: BLE001 - kept: every later wait() raises it again
            return exc

    def _drain(self) -> None:
        self._reader.join(timeout=5)
        while not self._events.empty():
            self._events.get_nowait()

    def _finish(self) -> LaunchResult:
        self._reader.join(timeout=5)
        self.poll_records()
        ex = self._exit or {"status": "lost", "errors": [], "time": time.time()}
        _ACTIVE.discard(self)
        status = ex["status"]
        if status == "failed":
            errs = ex.get("errors") or []
            if errs:
                e = errs[0]
                raise WorkerFailed(e["rank"], e["type"], e["message"], e["traceback"], ex.get("killed_after_s", 0.0))
            codes = ex.get("exit_codes", {})
            raise WorkerFailed(-1, "ProcessExit", f"a worker exited with {codes} without a Python traceback "
                                                  f"(killed, or crashed in native code); see its output above", "", 0.0)
        if status == "timeout":
            raise WorkerTimeout(ex.get("hung_ranks", []), float(ex.get("timeout_s") or 0))
        if status == "stopped":
            raise KeyboardInterrupt
        if status != "ok":
            raise WorkersLost(f"the workers ended without reporting (status {status!r}); output above")
        results = []
        for r in range(self.n):
            p = self.run_dir / f"rank{r}.result.pkl"
            results.append(pickle.loads(p.read_bytes()) if p.is_file() else None)
        marks: dict[int, dict[str, float]] = {}
        for r in range(self.n):
            p = self.run_dir / f"rank{r}.marks.jsonl"
            if p.is_file():
                marks[r] = {m["name"]: m["time"] for m in map(json.loads, p.read_text().splitlines())}
        out = LaunchResult(status, results, self.recorders, str(self.run_dir), self.n, self.backend,
                           self.started_at, float(ex.get("time", time.time())), marks)
        if self._own_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return out

    def __del__(self):  # a job dropped while running must not leave workers behind
        try:
            if self.proc.poll() is None:
                self._kill()
        except Exception:
            pass


def _validate(n, backend, timeout, device, threads, grace_s):
    n = check_number("n", n, low=1, high=1024, integer=True)
    backend = check_choice("backend", backend, list(BACKENDS))
    device = check_choice("device", device, list(DEVICES))
    if timeout is not None:
        timeout = float(check_number("timeout", timeout, low=0.0, low_inclusive=False))
    if threads is not None:
        threads = check_number("threads", threads, low=1, high=1024, integer=True)
    grace_s = float(check_number("grace_s", grace_s, low=0.0, high=60.0))
    if device == "cuda":
        gpus = visible_gpus()
        if gpus == 0:
            raise BackendUnavailable("device='cuda' needs GPUs, and nvidia-smi sees none here; use device='cpu' "
                                     "(gloo) or run on a GPU machine")
        if n > gpus:
            raise ParameterError("n", f"n must be between 1 and the {gpus} visible GPUs for device='cuda'; got {n}")
    return n, backend, timeout, device, threads, grace_s


def start(target, n: int = 2, backend: str = "ddp", *, args=(), kwargs=None, vars=None, timeout: float | None = None,
          device: str = "cpu", threads: int | None = 1, grace_s: float = 3.0, run_dir: str | None = None,
          env: dict | None = None, python: str | None = None, echo: bool = True,
          on_line: Callable | None = None, keep_run_dir: bool = False) -> DistributedJob:
    """Start ``target`` on ``n`` workers and return the running :class:`DistributedJob` (non-blocking).

    ``target``: source code (a cell), ``"module:function"`` or a module-level function; the function is
    called as ``fn(*args, **kwargs)`` on every rank and its return value comes back per rank.
    ``vars``: picklable values made visible to a code target as globals. ``device='cuda'``: nccl (DDP)
    or Horovod on GPUs, one worker per GPU (untested on GPU in this repository's CI).
    ``threads``: torch threads per worker (1 on a shared CPU). ``env``: extra environment for the workers
    (e.g. ``HOROVOD_FUSION_THRESHOLD``).
    """
    n, backend, timeout, device, threads, grace_s = _validate(n, backend, timeout, device, threads, grace_s)
    check_backend(backend, python)
    return DistributedJob(Target.of(target, args, kwargs, vars), n, backend, timeout=timeout, device=device,
                          threads=threads, grace_s=grace_s, run_dir=run_dir, env=env, python=python, echo=echo,
                          on_line=on_line, keep_run_dir=keep_run_dir)


def launch(target, n: int = 2, backend: str = "ddp", **kw) -> LaunchResult:
    """Run ``target`` on ``n`` workers and block until it ends; see :func:`start` for the arguments.

    Prints every rank's output as it comes (``[rank R] ...``). Raises :class:`WorkerFailed` (with the
    failing rank's traceback), :class:`WorkerTimeout` or ``KeyboardInterrupt`` (after ending every worker).
    """
    return start(target, n, backend, **kw).wait()


@atexit.register
def _end_all() -> None:
    """Interpreter exit (kernel shutdown): end every job still running. The stdin watchdog covers SIGKILL."""
    for job in list(_ACTIVE):
        try:
            job.stop(wait=5)
        except Exception:
            pass
