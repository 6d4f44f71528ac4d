"""The worker bootstrap: ``python -m dsopt.distributed.worker SPEC.json`` (one per rank).

Started by the supervisor (DDP) or by ``horovodrun --gloo`` (Horovod). It ties itself to its parent
(``PR_SET_PDEATHSIG``: dies with it), dumps every thread's stack on ``SIGUSR1`` into
``stack-rank{R}.txt`` in the run folder (the supervisor asks a hung worker for it before killing it and
shows it as that rank's output: a file, because horovodrun forwards a worker's stderr lazily and
loses what is in flight when it is killed), initialises the process group, runs the target, and leaves
in the run folder ``rank{R}.result.pkl`` on success or ``rank{R}.error.json`` (with the traceback) on
failure. The target is either a cell's code written to a module file (imported under a stable module
name, so anything it defines pickles by reference) or ``module:function`` with pickled arguments.
"""
from __future__ import annotations

import ctypes
import faulthandler
import importlib
import importlib.util
import json
import os
import pickle
import signal
import sys
import time
import traceback
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: deliver ``sig`` to this process when its parent dies; exit now if it already has."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except OSError:  # not Linux: the supervisor's process-group kill still applies
        return
    if os.getppid() != parent or parent == 1:
        os._exit(1)


def rank_from_env(backend: str) -> int:
    """This worker's rank before the process group exists (for file names)."""
    if backend == "horovod":
        return int(os.environ.get("HOROVOD_RANK", "0"))
    return int(os.environ.get("RANK", "0"))


def load_target(spec: dict):
    """Return (callable, args, kwargs) for the spec's target."""
    target = spec["target"]
    if target["kind"] == "code":
        name = target["module"]
        mod_spec = importlib.util.spec_from_file_location(name, target["path"])
        module = importlib.util.module_from_spec(mod_spec)

        def run_code():
            from dsopt.distributed import runtime

            module.__dict__.update(pickle.loads(Path(target["vars"]).read_bytes()) if target.get("vars") else {})
            module.__dict__.update(dist=runtime, rank=runtime.rank(), world_size=runtime.world_size(),
                                   backend=runtime.backend(), device=runtime.device())
            sys.modules[name] = module
            mod_spec.loader.exec_module(module)
            return module.__dict__.get("result")

        return run_code, (), {}
    sys.path[:0] = target.get("sys_path", [])
    module = importlib.import_module(target["module"])
    fn = getattr(module, target["name"])
    args, kwargs = pickle.loads(Path(target["args"]).read_bytes()) if target.get("args") else ((), {})
    return fn, args, kwargs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    die_with_parent()
    spec = json.loads(Path(argv[0]).read_text())
    run_dir = Path(spec["run_dir"])
    r = rank_from_env(spec["backend"])
    stack_file = open(run_dir / f"stack-rank{r}.txt", "w")  # noqa: SIM115 (faulthandler writes to it until exit)
    faulthandler.register(signal.SIGUSR1, file=stack_file, all_threads=True)
    try:
        import torch

        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        from dsopt.distributed import runtime

        runtime.init(spec["backend"], run_dir=str(run_dir), device=spec.get("device", "cpu"),
                     timeout_s=float(spec.get("collective_timeout_s", 600)))
        r = runtime.rank()
        fn, args, kwargs = load_target(spec)
        value = fn(*args, **kwargs)
        tmp = run_dir / f".rank{r}.result.pkl"
        tmp.write_bytes(pickle.dumps(value))
        os.replace(tmp, run_dir / f"rank{r}.result.pkl")
        runtime.shutdown()
        return 0
    except BaseException as exc:  # the cell's error, reported with its traceback
        tb = traceback.format_exc()
        err = {"rank": r, "type": type(exc).__name__, "message": str(exc), "traceback": tb, "time": time.time()}
        tmp = run_dir / f".rank{r}.error.json"
        tmp.write_text(json.dumps(err))
        os.replace(tmp, run_dir / f"rank{r}.error.json")
        print(tb, file=sys.stderr, end="", flush=True)
        return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown (gloo/horovod background threads can hang it)
