"""``dsopt run``, ``dsopt lab`` and ``dsopt list``: the chapter notebooks from the command line.

``list`` and every refusal of ``run`` (unknown chapter, bad ``-p``, missing data) need only the chapter
registry; the papermill runner and Jupyter are imported inside the handlers, once a notebook really runs.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys

from dsopt.util.validation import ParameterError


def parse_value(text: str, name: str = "VALUE"):
    """Parse a ``-p NAME VALUE`` value: JSON, then a Python literal, else the plain string. A value nested too
    deeply to parse (``[[[[...`` thousands deep) is refused, naming the parameter, not a RecursionError."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            pass
        except (RecursionError, MemoryError):
            raise ParameterError(name, f"-p {name}: the value ({len(text):,} characters) is nested too deeply to "
                                       f"read; parameters are flat values or short lists") from None
    return text


class _OnceEach(argparse.Action):
    """``-p NAME VALUE``, repeatable for different names; the same name twice is refused (usage error)."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = getattr(namespace, self.dest, None) or []
        name, value = values[0], values[1].removeprefix(_VALUE_MARK)
        earlier = [v for n, v in items if n == name]
        if earlier:
            parser.error(f"-p {name} given twice ({earlier[0]!r} and {value!r}); give each parameter once")
        setattr(namespace, self.dest, [*items, (name, value)])


def _verify_count(text: str) -> int:
    """``--verify K``: 1 to 100 stored runs per comparison."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--verify takes a whole number of runs, 1 to 100; got {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"--verify takes a whole number of runs, 1 to 100; got {value}")
    return value


def _seconds(text: str) -> int:
    """``--timeout``: whole seconds, 0 (no limit) to one week."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be whole seconds; got {text!r}") from None
    if not 0 <= value <= 7 * 86400:
        raise argparse.ArgumentTypeError(f"must be in [0, 604800] seconds (0: no limit); got {value}")
    return value


def cmd_list(args) -> int:
    from dsopt.chapters.registry import CHAPTERS

    for ch in CHAPTERS.values():
        print(f"{ch.id}  {ch.title}   (notebooks/{ch.notebook})")
        for name, p in ch.params.items():
            print(f"      -p {name} {json.dumps(p.default)}    {p.help}")
    return 0


def _plain(markdown: str) -> str:
    """A verdict line without Markdown emphasis (older metrics files have no ``line_text``)."""
    return markdown.replace("**", "").replace("__", "")


def _claim_lines(node, path=()) -> list[tuple[tuple, str]]:
    """Every stored claim verdict (a dict with ``status`` and ``line``, as dsopt.stats writes it) with its path."""
    if isinstance(node, dict):
        if "status" in node and isinstance(node.get("line"), str):
            return [(path, node.get("line_text") or _plain(node["line"]))]  # the terminal gets no Markdown
        return [x for k, v in node.items() for x in _claim_lines(v, (*path, str(k)))]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in _claim_lines(v, path)]
    return []


def _headline(metrics: dict | None, limit: int = 8) -> list[str]:
    """The verdict's headline lines: ``verdict["headline"]`` if the chapter gives one, else one line per
    claim verdict found in the metrics (status first, prefixed by the setting it is about)."""
    verdict = (metrics or {}).get("verdict") or {}
    if isinstance(verdict.get("headline"), list):
        return [str(x) for x in verdict["headline"]]
    containers = {"per_task", "per_setting", "settings", "claims", "verdicts", "tasks"}
    out = []
    for path, line in _claim_lines(verdict):
        where = " / ".join(p for p in path[:-1] if p not in containers)
        out.append(f"{where}: {line}" if where else line)
    if not out:  # an older chapter: the lines of its text that carry a status word
        words = ("supported", "contradicted", "inconclusive", "not testable here", "not decidable", "holds",
                 "not reproduced")
        out = [_plain(ln) for ln in str(verdict.get("text", "")).splitlines() if any(w in ln for w in words)]
    return out[:limit] + ([f"... and {len(out) - limit} more in the metrics file"] if len(out) > limit else [])


def cmd_run(args) -> int:
    from dsopt.chapters.registry import get_chapter
    from dsopt.chapters.runner import display_path

    params = {name: parse_value(value, name) for name, value in (args.param or [])}
    get_chapter(args.chapter).validate(params)  # refuse bad input before a kernel starts
    if args.executor is not None:
        from dsopt.studies.executors import parse_executor

        parse_executor(args.executor, name="--executor")
    if args.reuse_stored and not args.update_notebook:
        raise ParameterError("--reuse-stored", "--reuse-stored goes with --update-notebook (maintainers re-rendering "
                                               "a committed notebook); a plain run reuses stored runs already")
    if args.verify and (args.decide or args.update_notebook):
        raise ParameterError("--verify", "--verify goes with a plain run (it re-executes the stored runs that run "
                                         "reads); drop --decide / --update-notebook")
    if args.decide:
        if args.update_notebook or args.prepare_only or args.html:
            raise ParameterError("--decide", "--decide runs the study in this process, without a notebook: drop "
                                             "--update-notebook, --prepare-only and --html")
        from dsopt.studies.decide import run_decide

        res = run_decide(args.chapter, params, args.out, max_seeds=args.max_seeds, batch=args.batch,
                         executor=args.executor)
        print(res["text"])
        print(f"decide:   {display_path(res['path'])}")
        return 0
    if args.update_notebook:
        if args.executor:
            raise ParameterError("--executor", "--update-notebook makes the committed runs on this machine (they "
                                               "record it); drop --executor")
        if params or args.out:
            raise ParameterError("-p", "--update-notebook runs the committed defaults; drop the -p and --out options")
        from dsopt.chapters.runner import update_committed_notebook

        res = update_committed_notebook(args.chapter, progress=not args.quiet, timeout=args.timeout or None,
                                        reuse_stored=args.reuse_stored)
        print(f"updated: {display_path(res['notebook'])}")
        print(f"stored runs: {display_path(res['stored_runs'])} ({res['n_runs']} runs)")
        return 0
    from dsopt.chapters.runner import run_chapter

    if args.verify and (args.prepare_only or params.get("stored_runs") is False):
        raise ParameterError("--verify", "--verify re-executes stored runs that a run reads: drop --prepare-only "
                                         "and -p stored_runs False")
    result = run_chapter(args.chapter, params, args.out, prepare_only=args.prepare_only, progress=not args.quiet,
                         timeout=args.timeout or None, verify=args.verify, executor=args.executor)
    if args.html and not args.prepare_only:
        from dsopt.chapters.runner import export_html

        result["html"] = export_html(result["notebook"])
    for notice in result.get("notices") or []:  # printed in the kernel: the terminal gets them too
        print(notice, file=sys.stderr)
    headline = _headline(result.get("metrics"))
    if headline:
        print("verdict:")
        print("\n".join(f"  {line}" for line in headline))
    origin = ((result.get("metrics") or {}).get("provenance") or {})
    if isinstance(origin, dict) and origin.get("text"):
        checked = (f"; {origin['verified']} of them re-executed here first (--verify, picked at random: "
                   f"DSOPT_SPOT_CHECK_SEED={result.get('spot_check_seed')} repeats the pick) and reproduced"
                   if origin.get("verified") else "")
        print(f"runs:     {_plain(str(origin['text']))}{checked}"
              + ("; -p stored_runs False measures them here" if origin.get("stored") else ""))
    print(f"notebook: {display_path(result['notebook'])}")
    if "metrics_path" in result:
        print(f"metrics:  {display_path(result['metrics_path'])}"
              + ("" if result["metrics"] is not None else " (not written)"))
    if "html" in result:
        print(f"html:     {display_path(result['html'])}")
    return 0


def cmd_lab(args) -> int:
    from dsopt.chapters.lab import copy_notebooks, start_lab

    folder = copy_notebooks(args.dir, replace=args.replace)
    if args.no_start:
        return 0
    return start_lab(folder, args.jupyter_args)


def register(sub) -> None:
    """Add ``run``, ``lab`` and ``list`` (in that order) to the ``dsopt`` subparsers."""
    p = sub.add_parser("run", help="run a chapter notebook headless (papermill)")
    p.add_argument("chapter", help="chapter id, e.g. 01")
    p.add_argument("-p", "--param", nargs=2, action=_OnceEach, metavar=("NAME", "VALUE"),
                   help="notebook parameter (JSON or literal values; one per name)")
    p.add_argument("--out", help="output folder (default runs/NN_slug-TIMESTAMP)")
    p.add_argument("--prepare-only", action="store_true", help="only write the parameterised notebook")
    p.add_argument("--html", action="store_true", help="also write an HTML export whose figures render offline")
    p.add_argument("--update-notebook", action="store_true",
                   help="maintainers: re-execute the committed notebook from nothing with its defaults and "
                        "store its runs in notebooks/stored_runs/")
    p.add_argument("--reuse-stored", action="store_true",
                   help="with --update-notebook: use the stored runs whose keys are still current (a verdict, "
                        "table or plot change re-renders in minutes); compute only the rest")
    p.add_argument("--decide", action="store_true",
                   help="add seeds in looks until each claim is decided (alpha spending keeps false decisions at "
                        "5 %%), up to --max-seeds; runs are cached in .dsopt-cache/NN, so it resumes")
    p.add_argument("--verify", type=_verify_count, default=0, metavar="K",
                   help="re-execute K stored runs of each comparison on this machine before using them (chosen "
                        "among the cheap ones); a run that does not reproduce fails the run, naming it")
    p.add_argument("--max-seeds", type=int, default=12, metavar="K", help="with --decide: the budget in seeds "
                   "(default 12)")
    p.add_argument("--batch", type=int, default=None, metavar="B",
                   help="with --decide: seeds added per look (default: the chapter's n_seeds)")
    p.add_argument("--executor", default=None, metavar="SPEC",
                   help="where the comparison's runs execute: local (default), dask (a Dask cluster started here), "
                        "dask://HOST:PORT (a Dask scheduler; needs dsopt[cluster]); default $DSOPT_EXECUTOR")
    p.add_argument("--timeout", type=_seconds, default=0, metavar="SECONDS",
                   help="stop the run when one cell takes longer (default 0: no limit)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("lab", help="copy the chapter notebooks into a folder (once) and start JupyterLab there")
    p.add_argument("dir", nargs="?", default="dsopt-notebooks", help="working folder (default ./dsopt-notebooks)")
    p.add_argument("--replace", action="store_true",
                   help="replace notebooks you edited with dsopt's versions (yours are kept as NAME.ipynb.bak, or "
                        ".bak2, .bak3 ... when an earlier copy is there)")
    p.add_argument("--no-start", action="store_true", help="only copy the notebooks")
    p.set_defaults(func=cmd_lab, jupyter_args=[])
    p.epilog = ("options after -- go to `jupyter lab`, e.g. dsopt lab -- --no-browser --port 8899 "
                "(as root, --allow-root is added)")
    p = sub.add_parser("list", help="list chapters and their parameters with defaults")
    p.set_defaults(func=cmd_list)


#: Prefixed to a ``-p`` value that starts with "-" so that argparse reads it as a value (``-p base_lr -1e-3``, which
#: argparse alone takes for an option: "expected 2 arguments"); removed again by :class:`_OnceEach`. A NUL
#: cannot come from a command line, so no value of the user's is ever changed.
_VALUE_MARK = "\0"


def mark_parameter_values(argv: list[str]) -> list[str]:
    """``argv`` with every ``-p NAME VALUE`` whose VALUE starts with "-" made readable to argparse."""
    out = list(argv)
    i = 0
    while i < len(out):
        if out[i] == "--":
            break
        if out[i] in ("-p", "--param") and i + 2 < len(out) and out[i + 2].startswith("-") and out[i + 2] != "-":
            out[i + 2] = _VALUE_MARK + out[i + 2]
            i += 3
            continue
        i += 1
    return out


def split_jupyter_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``dsopt lab [DIR] -- JUPYTER OPTIONS``: (dsopt's arguments, the options for ``jupyter lab``)."""
    if argv[:1] == ["lab"] and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []
