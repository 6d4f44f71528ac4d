"""``dsopt lab [DIR]``: the chapter notebooks in a working folder of your own, opened in JupyterLab.

The notebooks ship inside the package, so this works from a plain ``pip install``. They are copied
once, with the runs they were computed from (``stored_runs/``), into ``DIR``; a manifest
(``DIR/.dsopt-lab.json``) remembers the SHA-256 of every file copied, so a later ``dsopt lab`` (say after
upgrading dsopt) can tell an untouched copy, which it updates, from one you edited, which it never
replaces without asking (or ``--replace``, which keeps yours as ``NAME.bak``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from dsopt.chapters.registry import CHAPTERS, notebooks_dir
from dsopt.util.atomic import atomic_write_bytes, atomic_write_text

MANIFEST = ".dsopt-lab.json"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shipped(src: Path) -> list[Path]:
    """Files to copy, relative to the notebooks folder: each chapter's notebook and its stored runs."""
    files = [Path(ch.notebook) for ch in CHAPTERS.values() if (src / ch.notebook).is_file()]
    runs = src / "stored_runs"
    if runs.is_dir():
        files += sorted(p.relative_to(src) for p in runs.rglob("*.json"))
    return files


def _ask(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def copy_notebooks(folder: str | os.PathLike, *, replace: bool = False, quiet: bool = False) -> Path:
    """Copy the shipped notebooks into ``folder`` without losing an edit; return the folder."""
    src = notebooks_dir()
    dst = Path(folder).expanduser().resolve()
    dst.mkdir(parents=True, exist_ok=True)
    manifest_path = dst / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    said = []
    for rel in _shipped(src):
        new, old = src / rel, dst / rel
        new_sha = _sha(new)
        if not old.exists():
            old.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(old, new.read_bytes())
            said.append(f"copied   {rel}")
        elif _sha(old) == new_sha:
            pass
        elif manifest.get(str(rel)) == _sha(old):  # untouched since we copied it: update it
            atomic_write_bytes(old, new.read_bytes())
            said.append(f"updated  {rel}")
        elif rel.suffix == ".ipynb" and (replace or _ask(f"{rel} differs from dsopt's version (you edited it). "
                                                          f"Replace it, keeping yours as {rel.name}.bak?")):
            shutil.copy2(old, old.with_name(old.name + ".bak"))
            atomic_write_bytes(old, new.read_bytes())
            said.append(f"replaced {rel} (yours: {rel.name}.bak)")
        else:
            said.append(f"kept     {rel} (edited by you; `dsopt lab --replace` takes dsopt's version, keeping yours)")
            continue
        manifest[str(rel)] = new_sha
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    if not quiet:
        for line in said:
            print(f"dsopt: {line}")
        print(f"dsopt: notebooks in {dst}")
    return dst


def start_lab(folder: Path, jupyter_args: list[str] | None = None) -> int:
    """Replace this process with ``jupyter lab`` serving ``folder`` (Ctrl-C stops it; nothing is left behind)."""
    args = [a for a in (jupyter_args or []) if a != "--"]
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}", *args]
    sys.stdout.flush()
    os.chdir(folder)
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - execv does not return
