"""Run keys change exactly when results can: code a Study declares, hashed as syntax; never docstrings, never
the machine (issue #18 item 2; dsopt.studies.fingerprint)."""
from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dsopt.studies.fingerprint import (NEVER_CHANGES_RESULTS, canonical_source, code_hash, covered, dsopt_root,
                                       module_files)
from dsopt.chapters.registry import CHAPTERS
from dsopt.studies.catalog import all_studies

STUDIES = all_studies()


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    """A private copy of the dsopt source tree to edit (the checkout is never touched)."""
    dest = tmp_path_factory.mktemp("src") / "dsopt"
    shutil.copytree(dsopt_root(), dest, ignore=shutil.ignore_patterns("__pycache__", "notebooks"))
    return dest


def _hashes(root: Path) -> dict[str, str]:
    return {s.id: code_hash(s.depends_on, root) for s in STUDIES}


def _edit(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))
    return text


def test_canonical_source_ignores_docstrings_comments_and_layout(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""Module doc."""\ndef f(x):\n    """Doc."""\n    return x + 1  # why\n')
    b.write_text('"""Another doc."""\n\n\ndef f(x):\n    """Other words."""\n    # a comment\n    return (x +\n            1)\n')
    c.write_text('"""Module doc."""\ndef f(x):\n    """Doc."""\n    return x + 2  # why\n')
    assert canonical_source(a) == canonical_source(b)
    assert canonical_source(a) != canonical_source(c)
    d = tmp_path / "d.py"
    d.write_text('def f(x):\n    """Only a docstring."""\n')
    e = tmp_path / "e.py"
    e.write_text("def f(x):\n    pass\n")
    assert canonical_source(d) == canonical_source(e)  # a body that was only a docstring


def test_docstring_and_comment_edits_anywhere_invalidate_no_stored_run(package_copy):
    before = _hashes(package_copy)
    restore = []
    for rel in ("util/validation.py", "core/trainer.py", "weighting/focal.py", "lr/schedules.py"):
        path = package_copy / rel
        text = path.read_text()
        restore.append((path, text))
        first = text.index('"""') + 3
        path.write_text(text[:first] + "An edited docstring. " + text[first:] + "\n# a comment added at the end\n")
    try:
        assert _hashes(package_copy) == before
    finally:
        for path, text in restore:
            path.write_text(text)


def test_verdict_and_presentation_edits_invalidate_no_stored_run(package_copy):
    """A Study's summarize/table/compute/render/live act on finished results: rewriting them, the chapter's
    verdict module, or what a declared module imports from one, stales nothing; editing ``measure`` does."""
    before = _hashes(package_copy)
    edits = [
        (package_copy / "studies/lr_restarts.py", "        return render_verdict(verdict, provenance=provenance, fmt=fmt)\n",
         "        return render_verdict(verdict) + '\\n(edited)'\n"),
        (package_copy / "studies/attention_pruning/chapter.py", "    def live(self, params: Mapping[str, Any]):\n",
         "    def live(self, params: Mapping[str, Any], extra=None):\n"),
        (package_copy / "studies/monitoring/chapter.py", "from dsopt.studies.monitoring.verdict import compute, render\n",
         "from dsopt.studies.monitoring.verdict import compute, render, assess\n"),
        (package_copy / "studies/mixed_precision_verdict.py", "    return out\n", "    return list(out)\n"),
    ]
    restore = [(path, _edit(path, old, new)) for path, old, new in edits]
    try:
        assert _hashes(package_copy) == before
        path = package_copy / "studies/lr_restarts.py"
        restore.append((path, _edit(path, "        p = self.parameters(params)\n        out = compare_schedules(",
                                    "        p = dict(self.parameters(params))\n        out = compare_schedules(")))
        after = _hashes(package_copy)
        assert {c for c in before if before[c] != after[c]} == {"01"}
    finally:
        for path, text in reversed(restore):
            path.write_text(text)


@pytest.mark.parametrize("module", ["dsopt.weighting.focal", "dsopt.lr.schedules", "dsopt.pruning.masking",
                                    "dsopt.monitor.charts", "dsopt.studies.lr_restarts", "dsopt.core.trainer"])
def test_a_code_change_invalidates_exactly_the_studies_that_declare_the_module(package_copy, module):
    before = _hashes(package_copy)
    path = module_files(module, package_copy)[0]
    text = path.read_text()
    path.write_text(text + "\n_PROBE = 2\n")
    try:
        after = _hashes(package_copy)
    finally:
        path.write_text(text)
    changed = {c for c in before if before[c] != after[c]}
    assert changed == {s.id for s in STUDIES if covered(module, s.depends_on)}
    expected = {"dsopt.weighting.focal": {"04"}, "dsopt.lr.schedules": {"01", "06"}, "dsopt.pruning.masking": {"02"},
                "dsopt.monitor.charts": {"07"}, "dsopt.studies.lr_restarts": {"01"}}
    assert changed == expected.get(module, set(CHAPTERS))


def test_a_declared_module_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="dsopt.lr.no_such_module"):
        code_hash(["dsopt.lr.no_such_module"])


_PROBE = textwrap.dedent('''
    import ast, importlib, inspect, json, sys, textwrap
    targets = json.loads(sys.argv[1])
    for module, name in targets:
        fn = getattr(importlib.import_module(module), name)
        # imports inside the run function's body happen when it runs: import them too
        for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(fn)))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dsopt"):
                importlib.import_module(node.module)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("dsopt"):
                        importlib.import_module(a.name)
    print(json.dumps(sorted(n for n in sys.modules if n == "dsopt" or n.startswith("dsopt."))))
''')


@pytest.mark.parametrize("study", STUDIES, ids=[s.id for s in STUDIES])
def test_every_module_a_run_really_imports_is_declared(study):
    """In a fresh interpreter: import each run function (and what its body imports), then read sys.modules."""
    targets = [[fn.__module__, fn.__name__] for fn in study.runs]
    out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(targets)], capture_output=True, text=True,
                         timeout=300, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    undeclared = [m for m in loaded if not covered(m, study.depends_on) and not covered(m, NEVER_CHANGES_RESULTS)]
    assert not undeclared, (f"chapter {study.id}'s runs import {undeclared}: declare them in its Study's depends_on, "
                            f"or (only if they cannot change a result) add them to NEVER_CHANGES_RESULTS with the reason")
    assert {fn.__module__ for fn in study.runs} <= {m for m in loaded if covered(m, study.depends_on)}


def test_every_study_declares_its_runs_and_finds_itself():
    from dsopt.studies.fingerprint import fingerprint, study_of

    for study in STUDIES:
        assert study.runs and study.depends_on
        for fn in study.runs:
            assert inspect.isfunction(fn) and fn.__qualname__ == fn.__name__, "run functions are module-level"
            assert study_of(fn) is study
            assert fingerprint(fn)["study"] == study.id


def test_no_run_function_calls_the_verdict_statistics():
    """dsopt.stats is on NEVER_CHANGES_RESULTS because runs never use it: their own code names nothing of it."""
    import dsopt.stats as stats

    names = set(stats.__all__) if hasattr(stats, "__all__") else {n for n in dir(stats) if not n.startswith("_")}
    for study in STUDIES:
        for fn in study.runs:
            used = set(fn.__code__.co_names) & names
            assert not used, f"{fn.__module__}.{fn.__name__} uses dsopt.stats' {sorted(used)}: declare dsopt.stats"


def test_the_never_changes_results_list_stays_short_and_reasoned():
    assert len(NEVER_CHANGES_RESULTS) <= 25
    assert all(len(reason) > 15 for reason in NEVER_CHANGES_RESULTS.values())
