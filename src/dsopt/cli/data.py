"""The ``dsopt data`` command: list, fetch, verify and locate datasets.

Registered by :func:`dsopt.cli.main` through :func:`register`. Every subcommand sets ``args.func``, a
function taking the parsed ``argparse.Namespace``, printing to stdout (errors to stderr) and returning the
exit code (it never calls ``sys.exit``). Subcommands:

* ``dsopt data list`` - name, rows, task, licence and whether the files are cached.
* ``dsopt data fetch NAME [NAME ...]`` (or ``all``) - download and verify; 1 if any fails, 2 for an unknown name.
* ``dsopt data verify [NAME ...]`` - each file OK / MISSING / CORRUPT; 1 if any is not OK.
* ``dsopt data path [NAME]`` - the cache dir (``$DSOPT_DATA`` or the user cache), or a dataset's folder.
* ``dsopt data nltk [--dest DIR] [--allow-download]`` - build the NLTK data textattack needs (stopwords,
  WordNet 3.0 from Debian's wordnet packages), verified, offline; print the folder for ``NLTK_DATA``.
"""
from __future__ import annotations

import argparse
import sys

from dsopt.data.cache import MISSING, OK, data_dir, dataset_path, verify
from dsopt.data.download import fetch
from dsopt.data.errors import DataError
from dsopt.data.registry import DATASETS, get_info
from dsopt.util.validation import ParameterError


def _cached_state(name: str) -> str:
    info = get_info(name)
    if info.bundled:
        return "bundled"
    states = {st.status for st in verify([name])}
    if states == {OK}:
        return "yes"
    if states == {MISSING}:
        return "no"
    if OK in states and states <= {OK, MISSING}:
        return "partial"
    return "CORRUPT"


def cmd_list(args: argparse.Namespace) -> int:
    """Print one short line per registered dataset (name, rows, licence, cached)."""
    rows = [(n, i.rows.split(" (")[0].replace(" / ", "/"), i.licence, _cached_state(n)) for n, i in DATASETS.items()]
    header = ("name", "rows", "licence", "cached")
    widths = [max(len(str(r[k])) for r in rows + [header]) for k in range(3)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    print(fmt.format(*header))
    for r in rows:
        print(fmt.format(*r))
    print(f"\ndata dir: {data_dir()}   (details: dsopt data info NAME)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Everything the registry knows about one dataset."""
    info = get_info(args.name)
    for label, value in (("name", info.name), ("task", info.task), ("rows", info.rows), ("licence", info.licence),
                         ("description", info.description), ("citation", info.citation), ("homepage", info.homepage),
                         ("cached", _cached_state(info.name))):
        print(f"{label + ':':<13}{value}")
    return 0


def _expand(names: list[str]) -> list[str]:
    if not names or any(n.lower() == "all" for n in names):
        return list(DATASETS)
    return [get_info(n).name for n in names]


def cmd_fetch(args: argparse.Namespace) -> int:
    """Download and verify the named datasets (``all`` for every one)."""
    selected = _expand(args.names)  # an unknown name: ParameterError -> "dsopt: error: ...", exit 2
    code = 0
    for name in selected:
        try:
            paths = fetch(name, force=args.force, timeout=args.timeout, progress=not args.quiet)
        except (DataError, ParameterError) as exc:
            print(f"{name}: FAILED\n{exc}", file=sys.stderr)
            code = 1
            continue
        where = dataset_path(name) if paths else "bundled with scikit-learn"
        print(f"{name}: OK ({len(paths)} file(s)) {where}")
    return code


def cmd_verify(args: argparse.Namespace) -> int:
    """Check every file's SHA-256; print ``STATUS path``; exit 1 if any is not OK."""
    selected = _expand(args.names)
    results = verify(selected)
    for st in results:
        line = f"{st.status:<8} {st.path}"
        if st.status not in (OK, MISSING):
            line += f"\n         expected sha256 {st.expected}\n         actual   sha256 {st.actual}"
        print(line)
    bad = [st for st in results if not st.ok]
    if bad:
        names = " ".join(sorted({st.dataset for st in bad}))
        corrupt = [st for st in bad if st.status != MISSING]
        fix = (f"`dsopt data fetch {names}` replaces the {len(corrupt)} corrupt file(s) and downloads the missing ones"
               if corrupt else f"`dsopt data fetch {names}` downloads them")
        print(f"\n{len(bad)} of {len(results)} file(s) not OK "
              f"({len(corrupt)} corrupt, {len(bad) - len(corrupt)} missing). Fix: {fix}.", file=sys.stderr)
        return 1
    print(f"\nall {len(results)} file(s) OK in {data_dir()}")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    """Print the data dir, or the folder of one dataset."""
    if args.name:
        print(dataset_path(args.name))
    else:
        print(data_dir())
    return 0


def cmd_nltk(args: argparse.Namespace) -> int:
    """Build (or check) the NLTK data folder textattack needs; print where it is."""
    from dsopt.data import nltk as nd

    root = args.dest or nd.nltk_data_dir()
    if args.check:
        st = nd.status(root)
        for name, info in st.items():
            print(f"{name:<10} {'ready' if info['ready'] else 'MISSING'}  " + ", ".join(
                f"{k}={v}" for k, v in info.items() if k != "ready"))
        return 0 if all(i["ready"] for i in st.values()) else 1
    try:
        path = nd.ensure_nltk_data(args.packages.split(","), root, allow_download=args.allow_download or None,
                                   rebuild=args.rebuild)
    except (DataError, ParameterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"NLTK data ready in {path} ({args.packages})\nexport NLTK_DATA={path}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``data`` command to ``subparsers`` (from ``add_subparsers``); return its parser.

    After ``parse_args``, call ``args.func(args)`` and use the returned int as the exit code.
    """
    p = subparsers.add_parser(
        "data", help="list, fetch, verify and locate datasets",
        description="Datasets live in $DSOPT_DATA (default: the user cache dir). "
        "DSOPT_DATA_MIRROR=URL downloads from URL/<relpath>; DSOPT_OFFLINE=1 never downloads.",
    )
    sub = p.add_subparsers(dest="data_command", metavar="{list,info,fetch,verify,path,nltk}")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    pl = sub.add_parser("list", help="registered datasets and whether they are cached")
    pl.set_defaults(func=cmd_list)

    pi = sub.add_parser("info", help="everything known about one dataset (licence, citation, source)")
    pi.add_argument("name", help="dataset name")
    pi.set_defaults(func=cmd_info)

    pf = sub.add_parser("fetch", help="download and verify datasets")
    pf.add_argument("names", nargs="+", metavar="NAME", help=f"dataset name or 'all' ({', '.join(DATASETS)})")
    pf.add_argument("--force", action="store_true", help="download again even if the files are valid")
    pf.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)")
    pf.add_argument("--quiet", action="store_true", help="no progress bar")
    pf.set_defaults(func=cmd_fetch)

    pv = sub.add_parser("verify", help="check every stored file against its SHA-256 (exit 1 if any is bad)")
    pv.add_argument("names", nargs="*", metavar="NAME", help="datasets to check (default: all)")
    pv.set_defaults(func=cmd_verify)

    pp = sub.add_parser("path", help="print the data cache dir (or one dataset's folder)")
    pp.add_argument("name", nargs="?", help="dataset name")
    pp.set_defaults(func=cmd_path)

    pn = sub.add_parser("nltk", help="build the NLTK data textattack needs (stopwords, WordNet), offline, verified",
                        description="Builds corpora/stopwords (from the verified stopwords.zip in the data cache) and "
                        "corpora/wordnet (copied from Debian's wordnet-base + wordnet-sense-index, SHA-256 checked, "
                        "lexnames generated) in DEST (default $DSOPT_NLTK_DATA or the user cache).")
    pn.add_argument("--dest", help="NLTK data folder to build (default: $DSOPT_NLTK_DATA or the user cache)")
    pn.add_argument("--packages", default="stopwords,wordnet", help="comma-separated: stopwords, wordnet")
    pn.add_argument("--allow-download", action="store_true",
                    help="fetch missing package zips from their URLs (SHA-256 checked); off with DSOPT_OFFLINE=1")
    pn.add_argument("--rebuild", action="store_true", help="build again even if the folder is complete")
    pn.add_argument("--check", action="store_true", help="only report what is built and which sources exist")
    pn.set_defaults(func=cmd_nltk)
    return p
