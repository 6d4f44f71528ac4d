"""The package layout's import rule, checked on every import statement (module level and inside functions).

Layers, lowest first: util -> core -> models -> data; metrics and stats beside them; technique packages
(pure: no plotting, no data loading, no chapter fixtures) on top of those; studies on top of the
techniques; chapters (registry, runner) apart; cli (the ``dsopt`` command) on top of everything.
dsopt_widgets may import anything in dsopt, and nothing in src/dsopt imports dsopt_widgets or plotly.
docs/CONTRACTS.md states the same table.

The rule can only see import statements, so library code (src/dsopt, dsopt_widgets) imports no module by
a string (``importlib.import_module(...)``, ``__import__(...)``): lazy imports are plain ``import``
statements inside functions.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "dsopt"
WIDGETS = ROOT / "dsopt_widgets"

BASE = {"util", "core", "models", "metrics", "stats"}
TECHNIQUES = {"lr", "pruning", "weighting", "augment", "precision", "distributed", "monitor"}
ANYTHING = frozenset({"anything in dsopt"})  # a folder on top of all the others

#: folder -> the dsopt folders its modules may import (itself always allowed).
ALLOWED = {
    "util": set(),
    "core": {"util"},
    "models": {"util", "core"},
    "data": {"util", "core", "models"},
    "metrics": {"util", "core"},
    "stats": {"util"},
    **{t: BASE for t in TECHNIQUES},
    "studies": BASE | {"data", "chapters"} | TECHNIQUES,  # chapters: the torch-free registry (a Study's params)
    "chapters": {"util", "data"},
    "cli": ANYTHING,
}
FORBIDDEN_EVERYWHERE = ("dsopt_widgets", "plotly", "ipywidgets")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute module name imported by ``path`` (relative imports resolved), with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            if name == "dsopt":  # `from dsopt import core` names submodules too
                out += [(node.lineno, f"dsopt.{a.name}") for a in node.names]
    return out


def _folder(path: Path) -> str | None:
    rel = path.relative_to(SRC).parts
    return rel[0] if len(rel) > 1 else None


def violations() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        folder = _folder(path)
        for line, name in _imports(path):
            where = f"{path.relative_to(SRC.parent)}:{line}"
            if name.split(".")[0] in FORBIDDEN_EVERYWHERE:
                found.append(f"{where} imports {name} (src/dsopt never imports widgets or plotting)")
                continue
            if folder is None or not name.startswith("dsopt."):
                continue  # top-level modules (dsopt/__init__.py) re-export lazily
            target = name.split(".")[1]
            if folder not in ALLOWED:
                found.append(f"{where}: folder {folder!r} has no rule in tests/test_layout.py (add one)")
                break
            allowed = ALLOWED[folder]
            if allowed is not ANYTHING and target != folder and target not in allowed and (SRC / target).exists():
                found.append(f"{where}: {folder}/ may not import {name} (allowed: "
                             f"{', '.join(sorted(allowed)) or 'nothing else of dsopt'})")
    return found


#: library file (relative to the folder above its package) -> why its string import hides no dependency.
DYNAMIC_IMPORT_ALLOWED = {
    "dsopt/util/lazy.py": "the one PEP 562 lazy re-export helper: it imports a package's own submodules by their "
                          "relative names (tests/test_lazy.py checks every export exists; no other folder reachable)",
    "dsopt/distributed/worker.py": "imports the user's `module:function` launch target named in the worker's spec "
                                   "(user code, not a dsopt module)",
}


def _is_string_import(node: ast.AST) -> str | None:
    """``importlib.import_module``/``__import__`` when ``node`` calls or imports one by name, else None."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        return f"{name}(...)" if name in ("import_module", "__import__") else None
    if isinstance(node, ast.ImportFrom) and node.module == "importlib":
        hidden = [a.name for a in node.names if a.name in ("import_module", "__import__")]
        return f"from importlib import {', '.join(hidden)}" if hidden else None
    return None


def string_imports(root: Path) -> list[str]:
    """Every dynamic string import in the .py files under ``root``, as ``path:line: call`` (the path
    relative to ``root``'s parent). Plain ``import x`` statements, in functions or in a
    ``try: ... except ImportError`` probe, are not string imports and are not listed."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            call = _is_string_import(node)
            if call:
                found.append(f"{path.relative_to(root.parent).as_posix()}:{node.lineno}: {call}")
    return found


def test_import_rule_holds():
    assert violations() == []


@pytest.mark.parametrize("root", [SRC, WIDGETS], ids=["src/dsopt", "dsopt_widgets"])
def test_library_code_imports_no_module_by_a_string(root):
    found = [f for f in string_imports(root) if f.split(":")[0] not in DYNAMIC_IMPORT_ALLOWED]
    assert found == [], "import these with a plain `import` statement (inside a function to stay lazy):\n" + \
        "\n".join(found)


def test_every_allowed_string_import_is_still_there():
    """An entry of DYNAMIC_IMPORT_ALLOWED whose file no longer has a string import is removed, not kept."""
    files = {f.split(":")[0] for f in string_imports(SRC)}
    assert set(DYNAMIC_IMPORT_ALLOWED) <= files


@pytest.mark.parametrize("code, expected", [
    ("import importlib\n\nMON = importlib.import_module(\"dsopt.monitor\")\n", "plant.py:3: import_module(...)"),
    ("def f():\n    return __import__(\"dsopt.monitor\")\n", "plant.py:2: __import__(...)"),
    ("from importlib import import_module as im\n", "plant.py:1: from importlib import import_module"),
])
def test_the_string_import_check_catches_a_planted_one(tmp_path, code, expected):
    (tmp_path / "dsopt" / "monitor").mkdir(parents=True)
    (tmp_path / "dsopt" / "monitor" / "plant.py").write_text(code)
    assert string_imports(tmp_path / "dsopt") == [f"dsopt/monitor/{expected}"]


def test_an_optional_dependency_probe_is_no_string_import(tmp_path):
    (tmp_path / "dsopt").mkdir()
    (tmp_path / "dsopt" / "probe.py").write_text(
        "def has_horovod():\n    try:\n        import horovod.torch  # noqa: F401\n    except ImportError:\n"
        "        return False\n    return True\n")
    assert string_imports(tmp_path / "dsopt") == []


def test_every_folder_has_a_rule():
    folders = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(ALLOWED), f"folders without an import rule: {sorted(folders - set(ALLOWED))}"


def test_no_flat_modules_beside_the_packages():
    """Only the package's __init__ lives at the top; everything else sits in a folder named for its role."""
    flat = sorted(p.name for p in SRC.glob("*.py") if p.name != "__init__.py")
    assert flat == []


@pytest.mark.parametrize("bad, expected", [
    ("from dsopt.studies.jobs import run_jobs\n", "core/ may not import dsopt.studies.jobs"),
    ("import plotly.graph_objects as go\n", "imports plotly.graph_objects"),
    ("def f():\n    from dsopt_widgets import base\n", "imports dsopt_widgets"),
])
def test_the_checker_catches_a_violation(tmp_path, monkeypatch, bad, expected):
    """The rule test must fail on a planted violation (so a green run means something)."""
    fake = tmp_path / "dsopt"
    (fake / "core").mkdir(parents=True)
    (fake / "studies").mkdir()
    (fake / "core" / "__init__.py").write_text("")
    (fake / "studies" / "__init__.py").write_text("")
    (fake / "core" / "bad.py").write_text(bad)
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    assert any(expected in v for v in violations())


def test_cli_may_import_anything_in_dsopt_but_no_widgets(tmp_path, monkeypatch):
    fake = tmp_path / "dsopt"
    for folder in ("cli", "studies", "monitor"):
        (fake / folder).mkdir(parents=True)
        (fake / folder / "__init__.py").write_text("")
    (fake / "cli" / "ok.py").write_text("def f():\n    from dsopt.studies import jobs\n    import dsopt.monitor.loop\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    assert violations() == []
    (fake / "cli" / "bad.py").write_text("from dsopt_widgets import base\n")
    assert violations() == ["dsopt/cli/bad.py:1 imports dsopt_widgets (src/dsopt never imports widgets or plotting)"]
