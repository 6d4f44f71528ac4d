"""Lazy re-exports for package ``__init__`` files (PEP 562), in one place.

A package re-exports names from its submodules without importing them at import time, so that
``import dsopt`` (and the ``dsopt`` command) does not pay for torch, numpy or textattack::

    __getattr__, __dir__ = lazy_exports(__name__, {"Trainer": "core.trainer", "State": "core.state"})

Why this is the one place that imports by name at runtime: a lazy export cannot be an import
statement, so ``tests/test_layout.py`` (which reads import statements) cannot see it. To keep that
check meaningful, the target is always a submodule *of the calling package* (``f"{package}.{sub}"``):
a lazy export can never reach across folders, so it never hides a dependency the layout rule forbids.
Library code elsewhere uses plain import statements; the layout check whitelists exactly this file
for ``importlib.import_module``.
"""
from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing would double what `import dsopt` costs
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``exports`` is loaded on first access.

    ``exports`` maps a public name to the submodule that defines it, relative to ``package``
    (``"core.trainer"`` under ``dsopt`` is ``dsopt.core.trainer``). The loaded value is stored on the
    package, so later accesses are plain attribute lookups. An export may not share its name with
    the submodule it comes from (``ValueError``). ``__dir__`` lists the package's own
    names plus every lazy one (``dir()`` and tab completion show them before first use).
    """
    for name, sub in exports.items():
        if not sub or sub.startswith("."):
            raise ValueError(f"{package}: export {name!r} needs a submodule path relative to the package, got {sub!r}")
        if name == sub.partition(".")[0]:
            # Importing the submodule sets that same attribute to the module: the name would mean the
            # function before the first import and the module after it.
            raise ValueError(f"{package}: export {name!r} has the name of the submodule {package}.{name}")

    def __getattr__(name: str) -> Any:
        sub = exports.get(name)
        if sub is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{sub}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
