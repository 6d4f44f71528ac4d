"""The supervisor: one process per launch that owns the workers and guarantees none outlives the job.

``python -m dsopt.distributed.supervisor SPEC.json`` is started by the kernel in a new session. It

* makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``), so that every descendant, including
  ``horovodrun``'s workers that sit in sessions of their own, stays in its process tree and is found
  and killed at the end;
* watches its stdin, a pipe whose only writer is the kernel: ``stop`` ends the job (kernel interrupt),
  end-of-file means the kernel is gone (killed, restarted) and ends the job too;
* starts the workers: DDP as N processes with ``RANK``/``WORLD_SIZE``, meeting through a file in the run
  folder on one machine (gloo on the loopback interface) or at node 0's TCPStore across machines; Horovod through ``horovodrun --gloo -np N -H localhost:N`` on the loopback interface (its
  rendezvous server too: dsopt.distributed.hvdrun);
* forwards every output line to its stdout as one JSON object ``{"t": "out", "rank", "stream", "line"}``;
* ends every other worker within seconds (SIGTERM, then SIGKILL after ``grace_s``) as soon as one
  fails, and after ``timeout_s`` asks the hung workers for their stacks (SIGUSR1) and kills them;
* reports one final ``{"t": "exit", "status": "ok" | "failed" | "timeout" | "stopped" | "orphaned", ...}``;
* removes the run folder (when the launcher made it) if the kernel is gone or exiting ("abandon" on stdin).
"""
from __future__ import annotations

import ctypes
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
HOROVOD_LINE = re.compile(r"^\[(\d+)\]<(stdout|stderr)>:(.*)$")

_out_lock = threading.Lock()


def emit(obj: dict) -> None:
    """One JSON line to the kernel."""
    with _out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def descendants(pid: int | None = None) -> list[int]:
    """Every live descendant of ``pid`` (default: this process), from /proc, deepest first."""
    pid = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out[::-1]


def signal_all(sig: int) -> list[int]:
    pids = descendants()
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    return pids


def signal_workers(sig: int) -> None:
    """Send ``sig`` to the worker processes only (not horovodrun, its shells or helpers, which SIGUSR1 would kill)."""
    for p in descendants():
        try:
            with open(f"/proc/{p}/cmdline", "rb") as fh:
                # an argument of its own: not horovodrun's `/bin/sh -c "env ... -m dsopt.distributed.worker"`,
                # whose death makes horovodrun kill the worker before it could answer
                if b"dsopt.distributed.worker" in fh.read().split(b"\0"):
                    os.kill(p, sig)
        except (OSError, ProcessLookupError):
            pass


def kill_tree(grace_s: float) -> None:
    """SIGTERM every descendant, wait up to ``grace_s``, SIGKILL what is left, reap."""
    if not signal_all(signal.SIGTERM):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap()
        if not descendants():
            return
        time.sleep(0.05)
    signal_all(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while descendants() and time.monotonic() < deadline:
        _reap()
        time.sleep(0.02)


def _reap() -> None:
    """Collect exited children (as subreaper we also inherit orphaned grandchildren)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Supervisor:
    def __init__(self, spec: dict, spec_path: str):
        self.spec = spec
        self.spec_path = spec_path
        self.run_dir = Path(spec["run_dir"])
        self.n = int(spec["world_size"])
        self.events: queue.Queue = queue.Queue()
        self.procs: dict[int | str, subprocess.Popen] = {}

    # -- starting ---------------------------------------------------------------------------------
    def _env(self) -> dict:
        env = dict(os.environ)
        threads = str(self.spec.get("threads") or 1)
        env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        src = self.spec.get("pythonpath")
        if src:
            env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env.update({k: str(v) for k, v in (self.spec.get("env") or {}).items()})
        return env

    def _pipe(self, proc: subprocess.Popen, stream, rank, name: str) -> None:
        def pump():
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if rank == "launcher":  # horovodrun's own output carries the rank prefix
                    m = HOROVOD_LINE.match(line)
                    if m:
                        emit({"t": "out", "rank": int(m.group(1)), "stream": m.group(2), "line": m.group(3)})
                        continue
                emit({"t": "out", "rank": rank, "stream": name, "line": line})
            stream.close()

        threading.Thread(target=pump, daemon=True).start()

    def start(self) -> None:
        py = self.spec.get("python") or sys.executable
        worker = [py, "-u", "-m", "dsopt.distributed.worker", self.spec_path]
        env = self._env()
        if self.spec["backend"] == "ddp":
            nodes = self.spec.get("nodes") or {"nnodes": 1, "node_rank": 0, "master_addr": None, "master_port": None}
            env.update(MASTER_ADDR=nodes["master_addr"] or "127.0.0.1",
                       MASTER_PORT=str(nodes["master_port"] or self.spec["port"]),
                       WORLD_SIZE=str(self.n * nodes["nnodes"]), LOCAL_WORLD_SIZE=str(self.n),
                       GROUP_RANK=str(nodes["node_rank"]))
            if nodes["nnodes"] == 1 and not nodes["master_addr"]:
                # one machine: rendezvous through a file in the run folder and gloo's pairs on the loopback
                # interface, so no worker listens beyond 127.0.0.1 (torch's TCPStore binds every interface)
                env.update(DSOPT_RENDEZVOUS_FILE=str(self.run_dir / "rendezvous"), GLOO_SOCKET_IFNAME="lo")
            base = self.n * nodes["node_rank"]
            for r in range(self.n):
                e = dict(env, RANK=str(base + r), LOCAL_RANK=str(r))
                p = subprocess.Popen(worker, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=self.spec.get("cwd"))
                self.procs[r] = p
                self._pipe(p, p.stdout, r, "stdout")
                self._pipe(p, p.stderr, r, "stderr")
        else:
            # horovodrun's command line through dsopt.distributed.hvdrun: its rendezvous listens on 127.0.0.1 only
            cmd = [py, "-m", "dsopt.distributed.hvdrun", "-np", str(self.n), "-H", f"localhost:{self.n}", "--gloo",
                   "--network-interfaces", "lo", "--start-timeout", str(int(self.spec.get("start_timeout_s", 60))),
                   *worker]
            p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, cwd=self.spec.get("cwd"))
            self.procs["launcher"] = p
            self._pipe(p, p.stdout, "launcher", "stdout")
        emit({"t": "started", "pids": {str(k): p.pid for k, p in self.procs.items()}, "time": time.time()})

    # -- watching ---------------------------------------------------------------------------------
    def _watch_stdin(self) -> None:
        def watch():
            for line in iter(sys.stdin.buffer.readline, b""):
                if line.strip() == b"stop":
                    self.events.put("stop")
                elif line.strip() == b"abandon":  # the kernel is exiting: stop, and nobody will read the folder
                    self.events.put("abandon")
            self.events.put("orphaned")  # EOF: the kernel that started us is gone

        threading.Thread(target=watch, daemon=True).start()

    def _errors(self) -> list[dict]:
        errs = []
        for p in self.run_dir.glob("rank*.error.json"):
            try:
                errs.append(json.loads(p.read_text()))
            except (OSError, ValueError):
                pass
        return sorted(errs, key=lambda e: e["time"])

    def _wait_for_stacks(self, ranks: list[int], settle_s: float = 0.3, max_s: float = 5.0) -> None:
        """After SIGUSR1: wait until each of ``ranks`` has written its stack file and it stopped growing
        for ``settle_s`` (at most ``max_s``: a worker stuck in C code may never write)."""
        t0 = time.monotonic()
        sizes: dict[int, tuple[int, float]] = {}
        while time.monotonic() - t0 < max_s:
            now, settled = time.monotonic(), True
            for r in ranks:
                try:
                    size = (self.run_dir / f"stack-rank{r}.txt").stat().st_size
                except OSError:
                    size = 0
                if size == 0 or sizes.get(r, (-1, 0.0))[0] != size:
                    sizes[r] = (size, now)
                    settled = False
                elif now - sizes[r][1] < settle_s:
                    settled = False
            if settled:
                return
            time.sleep(0.05)

    def _emit_stacks(self, ranks: list[int]) -> None:
        """Show each hung rank's stack (from its file) as that rank's stderr lines."""
        for r in ranks:
            try:
                text = (self.run_dir / f"stack-rank{r}.txt").read_text(errors="replace")
            except OSError:
                text = ""
            if not text.strip():
                emit({"t": "out", "rank": r, "stream": "stderr", "line": "(no stack: the worker did not answer SIGUSR1)"})
                continue
            emit({"t": "out", "rank": r, "stream": "stderr", "line": "stack at the timeout (every thread):"})
            for line in text.splitlines():
                emit({"t": "out", "rank": r, "stream": "stderr", "line": line})

    def _finished_ranks(self) -> set[int]:
        done = {int(p.name[4:].split(".")[0]) for p in self.run_dir.glob("rank*.result.pkl")}
        return done | {e["rank"] for e in self._errors()}

    def run(self) -> int:
        self._watch_stdin()
        self.start()
        timeout = self.spec.get("timeout_s")
        deadline = time.monotonic() + float(timeout) if timeout else None
        grace = float(self.spec.get("grace_s", 3.0))
        status, detail, abandoned = "ok", {}, False
        while True:
            try:
                ev = self.events.get(timeout=0.05)
            except queue.Empty:
                ev = None
            if ev in ("stop", "orphaned", "abandon"):
                status = "orphaned" if ev == "orphaned" else "stopped"
                abandoned = ev in ("orphaned", "abandon")
                break
            codes = {k: p.poll() for k, p in self.procs.items()}
            failed = [k for k, c in codes.items() if c not in (None, 0)]
            if failed:
                status = "failed"
                detail = {"exit_codes": {str(k): c for k, c in codes.items()}}
                break
            if all(c == 0 for c in codes.values()):
                break
            if deadline is not None and time.monotonic() > deadline:
                status = "timeout"
                base = self.n * int((self.spec.get("nodes") or {}).get("node_rank", 0))
                hung = sorted(set(range(base, base + self.n)) - self._finished_ranks())
                detail = {"hung_ranks": hung, "timeout_s": timeout}
                signal_workers(signal.SIGUSR1)  # faulthandler in each worker writes every thread's stack
                self._wait_for_stacks(hung)
                break
        t_end = time.time()
        kill_tree(grace)
        for p in self.procs.values():
            try:
                p.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.1)  # let the output pumps drain
        if status == "timeout":
            self._emit_stacks(detail["hung_ranks"])
        errors = self._errors()
        if status == "ok" and errors:
            status = "failed"
        if abandoned and self.spec.get("remove_run_dir"):
            # the kernel is gone (killed, restarted) or exiting: nobody reads the folder (it holds the cell's code)
            # nor, when it is gone, the exit message below (its pipe is broken)
            shutil.rmtree(self.run_dir, ignore_errors=True)
        emit({"t": "exit", "status": status, "errors": errors, "time": t_end,
              "killed_after_s": round(time.time() - t_end, 3), **detail})
        return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGTERM, lambda *a: (kill_tree(1.0), os._exit(143)))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the kernel says "stop" on its pipe instead
    spec_path = argv[0]
    spec = json.loads(Path(spec_path).read_text())
    return Supervisor(spec, spec_path).run()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # not sys.exit: the stdin watchdog thread blocks in read() and would abort finalisation
