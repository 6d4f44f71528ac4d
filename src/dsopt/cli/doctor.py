"""``dsopt doctor [--smoke] [--executor SPEC]``: which distributed backends (DDP gloo/nccl, Horovod) work here, and
why not; and where a comparison's runs would execute (``$DSOPT_EXECUTOR``) and whether that executor answers.

The probe itself is :func:`dsopt.distributed.doctor.doctor` (it asks a separate Python process); it is
imported only when the command runs.
"""
from __future__ import annotations


def cmd_doctor(args) -> int:
    """Print one line per backend and one for the executor; exit 0 when the first backend (DDP gloo on CPU) works
    and the executor can run jobs, else 1."""
    from dsopt.distributed.doctor import doctor, format_report
    from dsopt.studies.executors import current_executor, parse_executor, scheduler_answers

    spec = parse_executor(args.executor, name="--executor") if args.executor else current_executor()
    rows = doctor(smoke=args.smoke)
    print(format_report(rows))
    ok, text = scheduler_answers(spec)
    print(f"executor: {'ok ' if ok else 'NO '} {text}")
    return 0 if rows[0]["ok"] and ok else 1


def register(sub) -> None:
    """Add ``doctor`` to the ``dsopt`` subparsers."""
    p = sub.add_parser("doctor", help="which distributed backends (DDP gloo/nccl, Horovod) work here, and why not")
    p.add_argument("--smoke", action="store_true", help="also run a real 2-worker all-reduce per usable backend")
    p.add_argument("--executor", default=None, metavar="SPEC",
                   help="check this executor instead of $DSOPT_EXECUTOR (local, dask, dask://HOST:PORT)")
    p.set_defaults(func=cmd_doctor)
