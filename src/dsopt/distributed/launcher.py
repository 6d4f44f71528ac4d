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
                 on_line: Callable[[int | str, str, str], None] | None, keep_run_dir: bool,
                 nodes: dict | None = None):
        self.n, self.backend, self.timeout, self.device = n, backend, timeout, device
        self.nodes = nodes or {"nnodes": 1, "node_rank": 0, "master_addr": None, "master_port": None}
        self.echo, self.on_line = echo, on_line
        self.started_at = time.time()
        self._own_dir = run_dir is None and not keep_run_dir
        self.run_dir = Path(run_dir or tempfile.mkdtemp(prefix="dsopt-dist-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.lines: list[tuple[int | str, str, str]] = []
        #: the global ranks this launch runs (all of them on one machine; node_rank * n ... on several)
        self.ranks = list(range(self.nodes["node_rank"] * n, self.nodes["node_rank"] * n + n))
        self.recorders: dict[int, Recorder] = {r: Recorder() for r in self.ranks}
        self._tails = {r: 0 for r in self.ranks}
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
            "nodes": self.nodes, "remove_run_dir": self._own_dir,
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
        for r in self.ranks:
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
                if r == self.ranks[0]:
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
        """The first rank's Recorder (rank 0 on one machine: the reference run)."""
        return self.recorders[self.ranks[0]]

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
    def stop(self, wait: float | None = None, abandon: bool = False) -> None:
        """End every worker (what a kernel interrupt does). With ``wait``: return once they are gone,
        killing the supervisor's process group if they are not gone after ``wait`` seconds. ``abandon``: nobody
        will read the result (the interpreter exits): the supervisor also removes the run folder it was given."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"abandon\n" if abandon else b"stop\n")
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
            self.stop(wait=10.0, abandon=True)  # the supervisor removes the folder, even if this process dies now
            self._drain()
            self._remove_own_dir()
            print(f"dsopt: interrupted; all {self.n} workers ended", file=sys.stderr, flush=True)
            raise
        except TimeoutError:
            raise  # the job goes on: a later wait() joins it
        finally:
            if self.proc.poll() is None and (deadline is None or time.monotonic() <= deadline):
                self.stop(wait=10.0, abandon=True)  # left by an exception: nobody reads the folder
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
        """The result of the ended job (or its failure raised); the run folder it made goes however it ended (it
        holds the cell's source and pickled variables: a failed or timed-out launch used to leave it in /tmp)."""
        try:
            return self._result()
        finally:
            self._remove_own_dir()

    def _remove_own_dir(self) -> None:
        """Remove the temporary run folder this job made (not a ``run_dir`` given by the caller or kept)."""
        if self._own_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _result(self) -> LaunchResult:
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
        for r in self.ranks:
            p = self.run_dir / f"rank{r}.result.pkl"
            results.append(pickle.loads(p.read_bytes()) if p.is_file() else None)
        marks: dict[int, dict[str, float]] = {}
        for r in self.ranks:
            p = self.run_dir / f"rank{r}.marks.jsonl"
            if p.is_file():
                marks[r] = {m["name"]: m["time"] for m in map(json.loads, p.read_text().splitlines())}
        return LaunchResult(status, results, self.recorders, str(self.run_dir), self.n, self.backend,
                            self.started_at, float(ex.get("time", time.time())), marks)

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


#: Environment the launcher sets for each worker: given in ``env=`` it is refused, never silently replaced.
LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK")


def _validate_nodes(backend: str, nnodes, node_rank, master_addr, master_port, env) -> dict:
    """Several machines (DDP): ``nnodes`` launches, one per machine, each with its ``node_rank`` and the same
    ``master_addr``/``master_port`` (where rank 0, on node 0, serves torch's TCPStore), as torchrun does."""
    nnodes = check_number("nnodes", nnodes, low=1, high=4096, integer=True)
    node_rank = check_number("node_rank", node_rank, low=0, high=nnodes - 1, integer=True)
    if master_port is not None:
        master_port = check_number("master_port", master_port, low=1, high=65535, integer=True)
    if master_addr is not None and (not isinstance(master_addr, str) or not master_addr.strip()):
        raise ParameterError("master_addr", f"master_addr must be a host name or address; got {master_addr!r}")
    if nnodes > 1 and (master_addr is None or master_port is None):
        raise ParameterError("master_addr", f"nnodes={nnodes} needs master_addr and master_port: the address of "
                                            "node 0 and a free port there, the same on every node")
    if backend == "horovod" and (nnodes > 1 or master_addr is not None or master_port is not None):
        raise ParameterError("nnodes", "nnodes, node_rank, master_addr and master_port are DDP's rendezvous; "
                                       "Horovod over several hosts runs through horovodrun -H (not wrapped by dsopt)")
    clash = sorted(set(env or {}) & set(LAUNCHER_ENV))
    if clash:
        raise ParameterError("env", f"env sets {', '.join(clash)}, which the launcher sets for each worker; use "
                                    "nnodes / node_rank / master_addr / master_port (%%distributed --nnodes "
                                    "--node-rank --master-addr --master-port) instead")
    return {"nnodes": nnodes, "node_rank": node_rank,
            "master_addr": master_addr.strip() if master_addr else None, "master_port": master_port}


def start(target, n: int = 2, backend: str = "ddp", *, args=(), kwargs=None, vars=None, timeout: float | None = None,
          device: str = "cpu", threads: int | None = 1, grace_s: float = 3.0, run_dir: str | None = None,
          env: dict | None = None, python: str | None = None, echo: bool = True,
          on_line: Callable | None = None, keep_run_dir: bool = False, nnodes: int = 1, node_rank: int = 0,
          master_addr: str | None = None, master_port: int | None = None) -> DistributedJob:
    """Start ``target`` on ``n`` workers and return the running :class:`DistributedJob` (non-blocking).

    ``target``: source code (a cell), ``"module:function"`` or a module-level function; the function is
    called as ``fn(*args, **kwargs)`` on every rank and its return value comes back per rank.
    ``vars``: picklable values made visible to a code target as globals. ``device='cuda'``: nccl (DDP)
    or Horovod on GPUs, one worker per GPU (untested on GPU in this repository's CI).
    ``threads``: torch threads per worker (1 on a shared CPU). ``env``: extra environment for the workers
    (e.g. ``HOROVOD_FUSION_THRESHOLD``; the rendezvous variables are refused: see below).
    ``nnodes``, ``node_rank``, ``master_addr``, ``master_port`` (DDP): this launch is node ``node_rank`` of
    ``nnodes``, each running ``n`` workers (global ranks ``node_rank * n ...``), meeting at node 0's
    ``master_addr:master_port`` through torch's TCPStore. On one machine (the default) the rendezvous is a file
    in the run folder and gloo uses the loopback interface: nothing listens beyond 127.0.0.1.
    ``keep_run_dir``: keep the temporary run folder (its path is ``job.run_dir``); by default it is removed
    however the job ends.
    """
    n, backend, timeout, device, threads, grace_s = _validate(n, backend, timeout, device, threads, grace_s)
    nodes = _validate_nodes(backend, nnodes, node_rank, master_addr, master_port, env)
    check_backend(backend, python)
    return DistributedJob(Target.of(target, args, kwargs, vars), n, backend, timeout=timeout, device=device,
                          threads=threads, grace_s=grace_s, run_dir=run_dir, env=env, python=python, echo=echo,
                          on_line=on_line, keep_run_dir=keep_run_dir, nodes=nodes)


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
            job.stop(wait=5, abandon=True)  # the supervisor removes the run folder: this process may not live on
            job._remove_own_dir()
        except Exception:
            pass
