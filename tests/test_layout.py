"""The package layout's import rule, checked on every import statement (module level and inside functions).

Layers, lowest first: util -> core -> models -> data; metrics and stats beside them; technique packages
(pure: no plotting, no data loading, no chapter fixtures) on top of those; studies on top of the
techniques; chapters (registry, runner, CLI) apart. dsopt_widgets may import anything in dsopt, and
nothing in src/dsopt imports dsopt_widgets or plotly. docs/CONTRACTS.md states the same table.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dsopt"

BASE = {"util", "core", "models", "metrics", "stats"}
TECHNIQUES = {"lr", "pruning", "weighting", "augment", "precision", "distributed", "monitor"}

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
            if target != folder and target not in ALLOWED[folder] and (SRC / target).exists():
                found.append(f"{where}: {folder}/ may not import {name} (allowed: "
                             f"{', '.join(sorted(ALLOWED[folder])) or 'nothing else of dsopt'})")
    return found


def test_import_rule_holds():
    assert violations() == []


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
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert any(expected in v for v in violations())
