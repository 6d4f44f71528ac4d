"""The ``dsopt`` command line, in one package: ``main`` builds the parser from one module per command group.

* :mod:`~dsopt.cli.chapters`: ``run``, ``lab``, ``list`` (the chapter notebooks);
* :mod:`~dsopt.cli.data`: ``data list|info|fetch|verify|path|nltk`` (the dataset cache);
* :mod:`~dsopt.cli.doctor`: ``doctor`` (which distributed backends work here);
* :mod:`~dsopt.cli.monitor`: ``monitor prometheus`` (a local Prometheus).

This folder may import anything in dsopt, always with a plain ``import`` statement (tests/test_layout.py
sees every one). Answers ``--help``, ``list``, ``data ...`` and every refusal without importing torch (or
numpy, papermill, Jupyter): the heavy imports sit inside the handlers and load only once a command really
works. Exit codes: 0 done, 1 a run failed (the cell's error and the partial notebook are printed), 2 refused
before anything started (usage, a bad parameter, missing data), 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM; ``dsopt run`` kills its kernel and prints the partial notebook's path on both). Every message starts
with ``dsopt:``.
"""
from __future__ import annotations

import argparse
import sys

from dsopt.chapters.kernel import Terminated, sigterm_raises
from dsopt.cli import chapters, data, doctor, monitor
from dsopt.data.errors import DataError
from dsopt.util.validation import ParameterError


def build_parser() -> argparse.ArgumentParser:
    """The whole ``dsopt`` parser; each subcommand sets ``func(args) -> exit code``."""
    parser = argparse.ArgumentParser(
        prog="dsopt", description="dsopt: an interactive optimization workbench.",
        epilog="exit codes: 0 done, 1 a run failed, 2 refused (usage, bad parameter, missing data), "
               "130 interrupted (Ctrl-C), 143 terminated (SIGTERM)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (chapters, data, doctor, monitor):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``dsopt ARGV`` and return its exit code (usage errors exit 2 from argparse)."""
    argv, extra = chapters.split_jupyter_args(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(chapters.mark_parameter_values(argv))  # usage errors: "dsopt: error: ...", exit 2
    if extra:
        args.jupyter_args = extra
    try:
        with sigterm_raises():  # SIGTERM unwinds like Ctrl-C: finally blocks run, a run's kernel is killed
            return int(args.func(args) or 0)
    except (ParameterError, DataError, FileNotFoundError) as exc:
        print(f"dsopt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated): a run's kernel is gone
        print("dsopt: terminated" if isinstance(exc, Terminated) else "dsopt: interrupted", file=sys.stderr)
        if getattr(exc, "notebook", None):
            from dsopt.chapters.runner import display_path

            print(f"partial notebook: {display_path(exc.notebook)}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:
        from dsopt.chapters.runner import ChapterRunError

        if isinstance(exc, ChapterRunError):
            print(f"dsopt: {exc}", file=sys.stderr)
            return 1
        raise
