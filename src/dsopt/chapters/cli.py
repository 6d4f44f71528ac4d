"""The ``dsopt`` command line: ``run``, ``list``, ``data`` and ``doctor``."""
from __future__ import annotations

import argparse
import ast
import json
import sys

from dsopt.util.validation import ParameterError


def parse_value(text: str):
    """Parse a ``-p NAME VALUE`` value: JSON, then a Python literal, else the plain string."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            pass
    return text


def cmd_list(args) -> int:
    from dsopt.chapters.registry import CHAPTERS

    for ch in CHAPTERS.values():
        print(f"{ch.id}  {ch.title}   (notebooks/{ch.notebook})")
        for name, p in ch.params.items():
            print(f"      -p {name} {json.dumps(p.default)}    {p.help}")
    return 0


def cmd_run(args) -> int:
    from dsopt.chapters.registry import get_chapter
    from dsopt.chapters.runner import run_chapter

    params = {name: parse_value(value) for name, value in (args.param or [])}
    get_chapter(args.chapter).validate(params)  # refuse bad input before a kernel starts
    if args.update_notebook:
        if params:
            print("dsopt: error: --update-notebook runs the committed defaults; drop the -p options", file=sys.stderr)
            return 2
        from dsopt.chapters.runner import update_committed_notebook

        print(f"updated: {update_committed_notebook(args.chapter, progress=not args.quiet)}")
        return 0
    result = run_chapter(args.chapter, params, args.out, prepare_only=args.prepare_only, progress=not args.quiet)
    print(f"notebook: {result['notebook']}")
    if "metrics_path" in result:
        print(f"metrics:  {result['metrics_path']}" + ("" if result["metrics"] is not None else " (not written)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from dsopt.data import cli as data_cli

    parser = argparse.ArgumentParser(prog="dsopt", description="dsopt: an interactive optimization workbench.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a chapter notebook headless (papermill)")
    p.add_argument("chapter", help="chapter id, e.g. 01")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="notebook parameter (JSON or literal values; repeatable)")
    p.add_argument("--out", help="output folder (default runs/NN_slug-TIMESTAMP)")
    p.add_argument("--prepare-only", action="store_true", help="only write the parameterised notebook")
    p.add_argument("--update-notebook", action="store_true",
                   help="maintainers: re-execute the committed notebook in place with its defaults")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("list", help="list chapters and their parameters with defaults")
    p.set_defaults(func=cmd_list)
    data_cli.register(sub)
    # chapter 06: which distributed backends work here (the import waits until the command runs)
    p = sub.add_parser("doctor", help="which distributed backends (DDP gloo/nccl, Horovod) work here, and why not")
    p.add_argument("--smoke", action="store_true", help="also run a real 2-worker all-reduce per usable backend")
    p.set_defaults(func=lambda a: __import__("dsopt.distributed.doctor", fromlist=["main"]).main(
        ["--smoke"] if a.smoke else []))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ParameterError as exc:
        print(f"dsopt: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"dsopt: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
