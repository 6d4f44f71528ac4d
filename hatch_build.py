"""Build hook: ship the chapter notebooks and their stored runs inside the wheel (dsopt/chapters/notebooks).

Only ``notebooks/*.ipynb``, the claims table they cite (``notebooks/CLAIMS.md``) and
``notebooks/stored_runs/**/*.json`` are shipped: a developer's run caches
(``notebooks/.dsopt-cache``, model weights) and checkpoints never end up in a wheel. Editable installs
read the checkout's notebooks/ directly and ship nothing.
"""
from __future__ import annotations

from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class NotebooksHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel" or version == "editable":
            return
        src = Path(self.root) / "notebooks"
        files = sorted(src.glob("*.ipynb")) + [src / "CLAIMS.md"] + sorted((src / "stored_runs").rglob("*.json"))
        for path in files:
            build_data["force_include"][str(path)] = f"dsopt/chapters/notebooks/{path.relative_to(src).as_posix()}"
