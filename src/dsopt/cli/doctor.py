"""``dsopt doctor [--smoke]``: which distributed backends (DDP gloo/nccl, Horovod) work here, and why not.

The probe itself is :func:`dsopt.distributed.doctor.doctor` (it asks a separate Python process); it is
imported only when the command runs.
"""
from __future__ import annotations


def cmd_doctor(args) -> int:
    """Print one line per backend; exit 0 when the first (DDP gloo on CPU) works, else 1."""
    from dsopt.distributed.doctor import doctor, format_report

    rows = doctor(smoke=args.smoke)
    print(format_report(rows))
    return 0 if rows[0]["ok"] else 1


def register(sub) -> None:
    """Add ``doctor`` to the ``dsopt`` subparsers."""
    p = sub.add_parser("doctor", help="which distributed backends (DDP gloo/nccl, Horovod) work here, and why not")
    p.add_argument("--smoke", action="store_true", help="also run a real 2-worker all-reduce per usable backend")
    p.set_defaults(func=cmd_doctor)
