"""The ``%%distributed`` cell magic (``%load_ext dsopt``).

::

    %%distributed -n 2 --backend ddp --timeout 120 --vars epochs,lr
    model = dist.wrap_model(make_model())
    ...
    result = final_accuracy          # optional: comes back per rank in `_distributed.results`

Across machines (DDP): run the same cell on each with ``--nnodes K --node-rank R --master-addr HOST
--master-port P`` (HOST: node 0's address; the same port everywhere), as torchrun does. A misspelled or unknown
option fails the cell with the usage text.

The cell runs in N fresh worker processes with the process group initialised; it sees ``dist`` (the
:mod:`dsopt.distributed.runtime` module), ``rank``, ``world_size``, ``backend``, ``device`` and the
kernel variables named in ``--vars`` (pickled). Output streams into the cell prefixed by rank. The
finished job (per-rank ``result`` values, Recorders, timings) is stored as ``_distributed`` in the
notebook's namespace.
"""
from __future__ import annotations

import argparse
import shlex


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="%%distributed", add_help=False)
    p.add_argument("-n", "--workers", type=int, default=2)
    p.add_argument("--backend", default="ddp")
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--vars", default="")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--nnodes", type=int, default=1)
    p.add_argument("--node-rank", dest="node_rank", type=int, default=0)
    p.add_argument("--master-addr", dest="master_addr", default=None)
    p.add_argument("--master-port", dest="master_port", type=int, default=None)
    return p


USAGE = ("usage: %%distributed -n N --backend ddp|horovod [--timeout S] [--vars a,b] [--threads T] "
         "[--device cpu|cuda] [--env NAME=VALUE] [--nnodes K --node-rank R --master-addr HOST --master-port P]")


class _Usage(ValueError):
    pass


def parse_line(line: str) -> argparse.Namespace:
    """Parse the magic's options; errors name the option and the allowed values."""
    parser = _parser()
    try:
        ns, extra = parser.parse_known_args(shlex.split(line))
    except SystemExit as exc:  # argparse's own message went to stderr
        raise _Usage(f"%%distributed: bad options {line!r}; {USAGE}") from exc
    if extra:
        raise _Usage(f"%%distributed: unknown option(s) {' '.join(extra)}; {USAGE}")
    return ns


def distributed(line: str, cell: str, user_ns: dict) -> object:
    """The magic's body (also callable without IPython, for tests)."""
    from dsopt.distributed.launcher import launch

    ns = parse_line(line)
    names = [v.strip() for v in ns.vars.split(",") if v.strip()]
    missing = [v for v in names if v not in user_ns]
    if missing:
        raise NameError(f"%%distributed --vars: {', '.join(missing)} not defined in the notebook")
    env = {}
    for item in ns.env:
        if "=" not in item:
            raise _Usage(f"%%distributed --env expects NAME=VALUE; got {item!r}")
        k, v = item.split("=", 1)
        env[k] = v
    # said before the workers exist: each starts Python and imports torch first, which kept the cell blank for
    # seconds (16 s under load) before its first line
    print(f"dsopt: starting {ns.workers} {ns.backend} worker{'s' if ns.workers != 1 else ''} on {ns.device}; each "
          f"starts Python and imports torch before the cell's first line ...", flush=True)
    result = launch(cell, ns.workers, ns.backend, timeout=ns.timeout, device=ns.device, threads=ns.threads,
                    vars={v: user_ns[v] for v in names}, env=env, nnodes=ns.nnodes, node_rank=ns.node_rank,
                    master_addr=ns.master_addr, master_port=ns.master_port)
    user_ns["_distributed"] = result
    print(f"dsopt: {result.world_size} {result.backend} workers finished in {result.wall_s:.1f} s "
          f"(results in _distributed.results)")
    return None


def load_ipython_extension(ip) -> None:
    """Register ``%%distributed`` in IPython (``%load_ext dsopt`` or ``%load_ext dsopt.distributed``)."""

    from IPython.core.error import UsageError

    def magic(line, cell):
        try:
            return distributed(line, cell, ip.user_ns)
        except _Usage as exc:  # the cell fails (papermill and Run All stop there), showing the usage
            raise UsageError(str(exc)) from None

    ip.register_magic_function(magic, magic_kind="cell", magic_name="distributed")
