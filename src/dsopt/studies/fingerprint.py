"""What produced a run: the code its Study declares, hashed as syntax, and the machine it ran on.

A run's cache key must change exactly when its result can: when its parameters change (the caller's
``key(job)``) or when the code that computes it changes. "The code" is what the run's
:class:`~dsopt.studies.study.Study` declares in ``depends_on`` (dsopt modules or whole packages), hashed
as an abstract syntax tree with docstrings removed: a docstring, a comment, a blank line or a re-wrapped
line changes no key, so editing prose never stales a stored run, while any change to code does. Two more
things are left out because they cannot change a stored run: imports from modules on
:data:`NEVER_CHANGES_RESULTS`, and a Study's :data:`PRESENTATION` verbs (summarize, table, compute, render,
live), which act on finished results; so a chapter's verdict and tables can be rewritten freely.
tests/test_fingerprint.py proves that every dsopt module a run really imports is declared, or is on
:data:`NEVER_CHANGES_RESULTS` (a short list, each entry with its reason).

The machine (torch version, device, CPU model and capability, host) is recorded in every run file and
shown, but is not part of the key: on another machine, re-executing a few stored runs within tolerance
(the spot check, :mod:`dsopt.studies.jobs`) decides whether stored runs are reused.

A run function that belongs to no Study (a script's, a test's) falls back to the static import closure
of its module (every dsopt module it names in an import statement, transitively), hashed the same way.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import os
import platform
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

#: dsopt modules a run imports that cannot change its result, with the reason. Anything else a run imports
#: must be declared in its Study's ``depends_on`` (tests/test_fingerprint.py checks, in a fresh interpreter).
NEVER_CHANGES_RESULTS = {
    "dsopt.__init__": "lazy re-exports only (PEP 562); whatever it re-exports is checked where it is imported",
    "dsopt.util.__init__": "package marker, no code of its own",
    "dsopt.util.atomic": "atomic file writes: where bytes land, not which",
    "dsopt.util.runfile": "the run-file format (sealing, checksums): results pass through unchanged",
    "dsopt.util.lifetime": "worker processes end with their parent: process management only",
    "dsopt.util.lazy": "the lazy re-export helper of package __init__ files",
    "dsopt.studies.__init__": "package marker, no code of its own",
    "dsopt.studies.jobs": "the grid runner: caching, workers, progress; it calls the run function unchanged",
    "dsopt.studies.fingerprint": "this module: computes keys, never results",
    "dsopt.studies.study": "the Study protocol: declarations, no computation",
    "dsopt.core.handle": "the run-handle protocol (statuses, a progress record) panels read; no run computes with it",
    "dsopt.studies.catalog": "finds a chapter's Study module: imports, no computation",
    "dsopt.data.download": "downloads; every file is checked against its published SHA-256 before use",
    "dsopt.data.cache": "the verified data cache: a file is used only if its SHA-256 matches the registry's",
    "dsopt.data.errors": "error messages for missing or corrupt data",
    "dsopt.chapters.__init__": "package marker, no code of its own",
    "dsopt.chapters.registry": "parameter declarations and validators (values reach runs through their keys)",
    "dsopt.stats": "verdict statistics (intervals, tests, claims), applied to finished runs' results; "
                   "no run function calls it (tests/test_fingerprint.py reads the run functions' code)",
    "dsopt.studies.attention_pruning.verdict": "chapter 02's verdict, computed from finished runs' results",
    "dsopt.studies.augmentation.verdict": "chapter 03's verdict, computed from finished runs' results",
    "dsopt.studies.monitoring.verdict": "chapter 07's verdict, computed from finished runs' results",
    "dsopt.studies.lr_restarts_verdict": "chapter 01's verdict, computed from finished runs' results",
    "dsopt.studies.dynamic_weighting_verdict": "chapter 04's verdict, computed from finished runs' results",
    "dsopt.studies.mixed_precision_verdict": "chapter 05's verdict, computed from finished runs' results",
    "dsopt.studies.distributed_verdict": "chapter 06's verdict, computed from finished runs' results",
}

#: A Study's verbs and hooks that act on finished results or on the panel, never on a stored run: ``summarize``,
#: ``table``, ``compute`` and ``render`` (and their hooks) read what ``measure`` returned; ``live`` builds the
#: panel's runs, which are never stored. Inside a class deriving from ``Study`` they are left out of the code
#: hash, so a verdict or a table can change without staling a run (``grid`` and ``measure`` stay in).
PRESENTATION = frozenset({"summarize", "table", "compute", "render", "live", "summarize_runs", "format_table",
                          "verdict_of", "render_verdict", "verdict_json", "claim_verdicts", "spot_check_group"})


def dsopt_root() -> Path:
    """The folder of the installed dsopt package."""
    return Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- code as syntax
def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _dump(node) -> str:
    """A canonical text of an AST: node types and field values, no positions; empty and None fields left out,
    so a newer Python that adds an empty field (3.12's ``type_params``) gives the same text."""
    if isinstance(node, ast.AST):
        fields = [f"{name}={_dump(value)}" for name, value in ast.iter_fields(node)
                  if value is not None and value != [] and name not in ("type_comment", "kind")]
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return "[" + ",".join(_dump(x) for x in node) + "]"
    return repr(node)


def _never_changes(module: str | None) -> bool:
    return bool(module) and any(module == m or module.startswith(m + ".") for m in NEVER_CHANGES_RESULTS
                                if not m.endswith(".__init__"))


def _names(target: ast.AST) -> set[str] | None:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        parts = [_names(e) for e in target.elts]
        return None if any(p is None for p in parts) else set().union(*parts)
    return None


def _is_presentation(node: ast.AST) -> bool:
    """A Study class member in :data:`PRESENTATION` (a method, or an assignment whose every target is one)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return node.name in PRESENTATION
    if isinstance(node, ast.Assign):
        names = [_names(t) for t in node.targets]
        return all(n is not None and n <= PRESENTATION for n in names)
    return False


def _strip_results_free(tree: ast.Module) -> ast.Module:
    """Leave out what cannot change a run: imports from :data:`NEVER_CHANGES_RESULTS` modules (anywhere in the
    file) and the :data:`PRESENTATION` members of classes deriving from ``Study``."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        keep = [n for n in body if not (isinstance(n, ast.ImportFrom) and n.level == 0 and _never_changes(n.module))]
        if isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id == "Study" for b in node.bases):
            keep = [n for n in keep if not _is_presentation(n)]
        if len(keep) != len(body):
            node.body = keep or [ast.Pass()]
    return tree


@functools.lru_cache(maxsize=1024)
def _canonical(path: str, mtime_ns: int, size: int) -> str:
    source = Path(path).read_text(encoding="utf-8")
    return _dump(_strip_results_free(_strip_docstrings(ast.parse(source, filename=path))))


def canonical_source(path: str | os.PathLike) -> str:
    """The code of one Python file as canonical syntax: docstrings, comments and layout do not appear, nor do
    imports of modules that cannot change results or a Study's presentation verbs (:func:`_strip_results_free`)."""
    st = os.stat(path)
    return _canonical(str(path), st.st_mtime_ns, st.st_size)


# ----------------------------------------------------------------------------- modules -> files
def module_files(name: str, root: Path | None = None) -> list[Path]:
    """The files of a dsopt module (``dsopt.lr.schedules``) or package (``dsopt.lr``: every file under it;
    ``dsopt.lr.__init__``: the package's own file only).

    Raises ValueError naming the module when it does not exist (a Study declaring a module that was
    renamed must fail loudly, not hash nothing).
    """
    base = root or dsopt_root()
    if name != "dsopt" and not name.startswith("dsopt."):
        raise ValueError(f"depends_on names dsopt modules; got {name!r}")
    if name.endswith(".__init__"):  # a package's own file, without its submodules
        init = base / Path(*name.split(".")[1:-1]) / "__init__.py"
        if init.is_file():
            return [init]
        raise ValueError(f"depends_on names {name!r}, which is no package of dsopt (renamed?)")
    rel = Path(*name.split(".")[1:])
    folder = base / rel
    if rel.parts and folder.is_dir() and (folder / "__init__.py").is_file():
        return sorted(folder.rglob("*.py"))
    if not rel.parts:
        return sorted(base.rglob("*.py"))
    path = folder.with_suffix(".py")
    if path.is_file():
        return [path]
    raise ValueError(f"depends_on names {name!r}, which is no module or package of dsopt (renamed?)")


def covered(module: str, declared: Iterable[str]) -> bool:
    """True when ``module`` is one of ``declared``, inside a declared package, or a package whose own file
    (``PKG.__init__``) is declared."""
    return any(module == d or module.startswith(d + ".") or d == f"{module}.__init__" for d in declared)


def code_hash(modules: Iterable[str], root: Path | None = None) -> str:
    """SHA-256 over the canonical syntax of every file of ``modules`` (see :func:`module_files`)."""
    base = root or dsopt_root()
    return files_hash({p for m in modules for p in module_files(m, base)}, base)


# ----------------------------------------------------------------------------- undeclared runs
def _module_path(name: str, root: Path) -> Path | None:
    rel = Path(*name.split(".")[1:])
    for cand in (root / rel / "__init__.py", (root / rel).with_suffix(".py") if rel.parts else None):
        if cand is not None and cand.is_file():
            return cand
    return None


def _imported(path: Path, root: Path) -> set[str]:
    """dsopt modules named by any import statement of ``path`` (function-level ones too)."""
    parts = ("dsopt", *path.relative_to(root).with_suffix("").parts)
    package = parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = (".".join(package[: len(package) - node.level + 1] + ((node.module,) if node.module else ()))
                    if node.level else node.module or "")
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import submodule`
    return {n for n in out if n == "dsopt" or n.startswith("dsopt.")}


@functools.cache
def import_closure(module: str | None = None, root: str | None = None) -> tuple[str, ...]:
    """Files (relative to the package) of ``module`` and every dsopt module it imports, transitively, found
    statically (import statements, function-level ones too). ``None`` or a module outside dsopt: every file.
    Parent packages' ``__init__`` files count (importing ``a.b`` runs them).
    """
    base = Path(root) if root else dsopt_root()
    if module is None or not (module == "dsopt" or module.startswith("dsopt.")):
        return tuple(sorted(str(p.relative_to(base)) for p in base.rglob("*.py")))
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        pieces = name.split(".")
        for i in range(1, len(pieces) + 1):
            path = _module_path(".".join(pieces[:i]), base)
            if path is not None and path not in seen:
                seen.add(path)
                todo += sorted(_imported(path, base))
    return tuple(sorted(str(p.relative_to(base)) for p in seen))


def files_hash(files: Iterable[str | os.PathLike], root: Path | None = None) -> str:
    """SHA-256 over the canonical syntax of ``files`` (paths relative to the package, or absolute inside it)."""
    base = root or dsopt_root()
    h = hashlib.sha256()
    for path in sorted({(base / f).resolve() for f in files}):
        h.update(str(path.relative_to(base)).encode() + b"\0" + canonical_source(path).encode() + b"\0")
    return h.hexdigest()


# ----------------------------------------------------------------------------- runs and machines
def study_of(code: Callable | str | None):
    """The Study that declares ``code`` (a run function or a module name), or None.

    Found as a ``STUDY`` attribute of the function's module or of a package above it (a chapter's study
    module or package defines it). Only modules already imported are looked at: nothing is imported here.
    """
    module = code if isinstance(code, str) or code is None else getattr(code, "__module__", None)
    from dsopt.studies.study import Study

    while module:
        study = getattr(sys.modules.get(module), "STUDY", None)
        if isinstance(study, Study):
            return study
        module = module.rpartition(".")[0]
    return None


def fingerprint(code: Callable | str | None = None) -> dict:
    """What a run's result depends on in code: ``{"study", "module", "modules", "code"}``.

    ``modules`` are the Study's ``depends_on`` (for code outside any Study: its static import closure) and
    ``code`` the :func:`code_hash` of them. This is the code part of every run key; :func:`machine` is recorded
    beside it and never part of the key.
    """
    module = code if isinstance(code, str) or code is None else getattr(code, "__module__", None)
    study = study_of(code)
    if study is not None:
        modules = sorted(study.depends_on)
        digest = code_hash(modules)
    else:
        modules = list(import_closure(module if module and module.startswith("dsopt") else None))
        digest = files_hash(modules)
    return {"study": study.id if study is not None else None,
            "module": module if module and module.startswith("dsopt") else "dsopt",
            "modules": modules, "code": digest}


def device_name() -> str:
    """The device a run uses by default: ``cuda:<name>`` when CUDA is available, else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(0)}"
    return "cpu"


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict:
    """Where a run was made: torch, device, CPU model and vector capability, host, Python. Recorded, not keyed."""
    import torch

    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # older torch
        capability = "unknown"
    return {"torch": torch.__version__, "device": device_name(), "cpu": cpu_model(), "cpu_capability": capability,
            "host": socket.gethostname(), "python": platform.python_version()}
