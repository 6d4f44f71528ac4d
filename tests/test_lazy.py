"""dsopt.util.lazy: the packages' lazy re-exports (PEP 562) load on first access, once, and nothing heavy before."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import pytest

from dsopt.util.lazy import lazy_exports


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package ``lazyfake`` with a submodule ``impl`` defining ``answer`` and counting its imports."""
    pkg = tmp_path / "lazyfake"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from dsopt.util.lazy import lazy_exports
        __getattr__, __dir__ = lazy_exports(__name__, {"answer": "impl", "deep": "sub.inner"})
    """))
    (pkg / "impl.py").write_text("import builtins\nbuiltins.lazyfake_loads = getattr(builtins, 'lazyfake_loads', 0) + 1\n"
                                 "answer = 42\n")
    (pkg / "sub").mkdir()
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "inner.py").write_text("deep = 'inner'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    import builtins
    for name in [m for m in sys.modules if m == "lazyfake" or m.startswith("lazyfake.")]:
        del sys.modules[name]
    if hasattr(builtins, "lazyfake_loads"):
        del builtins.lazyfake_loads


def test_a_name_loads_its_submodule_on_first_access_only(fake_package):
    import builtins

    import lazyfake

    assert "lazyfake.impl" not in sys.modules
    assert "answer" in dir(lazyfake)  # listed before it is loaded
    assert lazyfake.answer == 42
    assert "lazyfake.impl" in sys.modules and builtins.lazyfake_loads == 1
    assert vars(lazyfake)["answer"] == 42  # cached on the package: no second __getattr__ call
    from lazyfake import answer, deep

    assert (answer, deep) == (42, "inner")
    assert builtins.lazyfake_loads == 1


def test_an_unknown_name_is_an_attribute_error_so_submodule_imports_still_work(fake_package):
    import lazyfake

    with pytest.raises(AttributeError, match="'lazyfake' has no attribute 'nothing'"):
        lazyfake.nothing  # noqa: B018
    from lazyfake import impl  # a plain submodule: the import system falls back after AttributeError

    assert isinstance(impl, types.ModuleType)


@pytest.mark.parametrize("exports, message", [
    ({"x": ""}, "relative to the package"),
    ({"x": ".impl"}, "relative to the package"),
    ({"impl": "impl"}, "has the name of the submodule"),
])
def test_exports_that_could_not_work_are_refused(exports, message):
    with pytest.raises(ValueError, match=message):
        lazy_exports("somepkg", exports)


def test_every_package_export_resolves_and_import_dsopt_stays_light():
    """Each re-exported name of dsopt, dsopt.data, dsopt.augment, dsopt.distributed exists in its submodule
    (checked without importing the submodules: by reading their top-level names), and ``import dsopt`` plus the
    packages import neither torch nor numpy."""
    import ast
    import importlib.util

    import dsopt
    import dsopt.augment
    import dsopt.data
    import dsopt.distributed

    for package in (dsopt, dsopt.augment, dsopt.data, dsopt.distributed):
        for name, sub in package._EXPORTS.items():
            source = importlib.util.find_spec(f"{package.__name__}.{sub}").origin
            tree = ast.parse(open(source).read())
            defined = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                       for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
            defined |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            defined |= {a.asname or a.name for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                        for a in n.names}
            assert name in defined, f"{package.__name__}.{name}: not defined in {package.__name__}.{sub}"
    probe = ("import sys, dsopt, dsopt.data, dsopt.augment, dsopt.distributed\n"
             "print(sorted(m for m in ('torch', 'numpy', 'textattack') if m in sys.modules))\n"
             "from dsopt import Trainer, seed_everything\n"
             "print('torch' in sys.modules, Trainer.__module__, seed_everything.__module__)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True dsopt.core.trainer dsopt.core.seeding"


def test_a_cold_chapter_kernel_loads_the_tokenizer_from_two_threads_at_once():
    """Issue 20 item 1: chapter 07's first Run All failed with "cannot import name 'AutoTokenizer' from
    'transformers'" (its background comparison and live replay import transformers at once). A chapter's first
    cell (`start`; 01 on digits: no dataset needed) imports it while only one thread runs; then two threads load
    the tokenizer together. Without
    that import this fails 4 times in 4 on this machine."""
    code = textwrap.dedent("""
        import sys, threading
        from dsopt.chapters.notebook import start
        from dsopt.chapters.registry import get_chapter
        assert "transformers" not in sys.modules
        start("06", {n: p.default for n, p in get_chapter("06").params.items()})
        assert "transformers" not in sys.modules, "06 trains on digits: it need not pay for transformers"
        start("01", {**{n: p.default for n, p in get_chapter("01").params.items()}, "tasks": "digits"})
        from dsopt.models.tokenize import load_minilm_tokenizer
        errors, go = [], threading.Barrier(2)
        def load():
            go.wait()
            try:
                load_minilm_tokenizer()
            except Exception as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=load) for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print("errors:", errors)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "errors: []", out.stdout + out.stderr[-2000:]
