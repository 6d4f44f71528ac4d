"""``dsopt lab [DIR]``: the chapter notebooks in a working folder of your own, opened in JupyterLab.

The notebooks ship inside the package, so this works from a plain ``pip install``. They are copied
once, with the runs they were computed from (``stored_runs/``), into ``DIR``; a manifest
(``DIR/.dsopt-lab.json``) remembers the SHA-256 of every file copied, so a later ``dsopt lab`` (say after
upgrading dsopt) can tell an untouched copy, which it updates, from one you edited, which it never
replaces without asking (or ``--replace``, which keeps yours as ``NAME.ipynb.bak``, ``.bak2``, ...: every
earlier copy stays). One line per chapter says what was copied.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from dsopt.chapters.registry import CHAPTERS, notebooks_dir
from dsopt.util.atomic import atomic_write_bytes, atomic_write_text
from dsopt.util.validation import ParameterError

MANIFEST = ".dsopt-lab.json"
#: The article's claims, one row per chapter: every notebook's first cell links it.
CLAIMS = "CLAIMS.md"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shipped(src: Path) -> list[Path]:
    """Files to copy, relative to the notebooks folder: each chapter's notebook, the claims table the notebooks
    cite (``CLAIMS.md``) and the stored runs."""
    files = [Path(ch.notebook) for ch in CHAPTERS.values() if (src / ch.notebook).is_file()]
    files += [Path(CLAIMS)] if (src / CLAIMS).is_file() else []
    runs = src / "stored_runs"
    if runs.is_dir():
        files += sorted(p.relative_to(src) for p in runs.rglob("*.json"))
    return files


def _ask(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _free_backup(path: Path) -> Path:
    """The first of ``NAME.bak``, ``NAME.bak2``, ``NAME.bak3`` ... that does not exist: every earlier copy is kept."""
    n = 1
    while True:
        candidate = path.with_name(path.name + (".bak" if n == 1 else f".bak{n}"))
        if not candidate.exists():
            return candidate
        n += 1


def _chapter_of(rel: Path) -> str:
    """The chapter a shipped file belongs to: ``01_lr_restarts`` for its notebook and its stored runs."""
    return rel.parts[1] if rel.parts[0] == "stored_runs" and len(rel.parts) > 2 else rel.stem


def _summary(chapter: str, events: list[tuple[str, Path, str]]) -> str:
    """One line per chapter: what happened to its notebook (with any detail) and how many stored runs were
    copied / updated / kept (a run you edited is kept)."""
    notebook = [f"{action:<8} {rel}{detail}" for action, rel, detail in events if rel.parts[0] != "stored_runs"]
    counts: dict[str, int] = {}
    for action, rel, _ in events:
        if rel.parts[0] == "stored_runs":
            counts[action] = counts.get(action, 0) + 1
    runs = ", ".join(f"{n} {action}" + (" (edited by you)" if action == "kept" else "") for action, n in counts.items())
    if not notebook:
        return f"{chapter}: stored runs {runs}"
    return notebook[0] + (f"; stored runs: {runs}" if runs else "")


def _inside(dst: Path, rel: Path) -> Path:
    """``dst / rel``, refused when a symbolic link on the way (or the file itself) would send the write elsewhere:
    ``dsopt lab`` writes only inside its folder."""
    path = dst
    for part in rel.parts:
        path = path / part
        if path.is_symlink():
            raise ParameterError("DIR", f"{path} is a symbolic link (to {os.readlink(path)}); dsopt lab writes only "
                                        f"inside {dst} and never through a link: remove the link, or choose another "
                                        f"folder")
    return path


def _read_manifest(path: Path) -> dict:
    """The manifest, or {} when it is absent or unreadable (then every copy that differs counts as yours, so
    nothing is replaced without asking; said once)."""
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
        if isinstance(manifest, dict) and all(isinstance(v, str) for v in manifest.values()):
            return manifest
        problem = "not a map of file names to SHA-256"
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        problem = type(exc).__name__
    print(f"dsopt: {path.name} in {path.parent} is unreadable ({problem}): every notebook that differs from "
          f"dsopt's counts as yours and is kept; it is written again below", file=sys.stderr)
    return {}


def copy_notebooks(folder: str | os.PathLike, *, replace: bool = False, quiet: bool = False) -> Path:
    """Copy the shipped notebooks into ``folder`` without losing an edit; return the folder.

    Prints one line per chapter (its notebook, then a count of its stored runs). A notebook you edited is
    replaced only when asked (or ``replace``); yours is kept as ``NAME.ipynb.bak``, or ``.bak2``, ``.bak3``
    ... when an earlier copy is there, so a second ``--replace`` never overwrites the first one's backup.
    """
    src = notebooks_dir()
    dst = Path(folder).expanduser().resolve()
    if dst.exists() and not dst.is_dir():
        raise ParameterError("DIR", f"{dst} is a file, not a folder: give dsopt lab a folder (new or its own)")
    dst.mkdir(parents=True, exist_ok=True)
    if not os.access(dst, os.W_OK | os.X_OK):
        raise ParameterError("DIR", f"cannot write in {dst} (permission denied): choose a folder you can write")
    manifest_path = _inside(dst, Path(MANIFEST))
    manifest = _read_manifest(manifest_path)
    events: dict[str, list[tuple[str, Path, str]]] = {}
    for rel in _shipped(src):
        new, old = src / rel, _inside(dst, rel)
        new_sha = _sha(new)
        said = events.setdefault(_chapter_of(rel), [])
        if not old.exists():
            old.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(old, new.read_bytes())
            said.append(("copied", rel, ""))
        elif _sha(old) == new_sha:
            pass
        elif manifest.get(str(rel)) == _sha(old):  # untouched since we copied it: update it
            atomic_write_bytes(old, new.read_bytes())
            said.append(("updated", rel, ""))
        elif rel.suffix == ".ipynb" and (replace or _ask(f"{rel} differs from dsopt's version (you edited it). "
                                                          f"Replace it, keeping yours as {_free_backup(old).name}?")):
            backup = _free_backup(old)
            shutil.copy2(old, backup)
            atomic_write_bytes(old, new.read_bytes())
            said.append(("replaced", rel, f" (yours kept as {backup.relative_to(dst)})"))
        else:
            said.append(("kept", rel, " (edited by you; `dsopt lab --replace` takes dsopt's version, keeping yours)"))
            continue
        manifest[str(rel)] = new_sha
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    if not quiet:
        for chapter, happened in events.items():
            if happened:
                print(f"dsopt: {_summary(chapter, happened)}")
        print(f"dsopt: notebooks in {dst}")
    return dst


def lab_command(folder: Path, jupyter_args: list[str] | None = None, *, as_root: bool | None = None
                ) -> tuple[list[str], str]:
    """The ``jupyter lab`` command serving ``folder`` and what to say about it.

    As root (``os.geteuid() == 0``, e.g. in a container) JupyterLab refuses to start without
    ``--allow-root``: it is added then, and the note says so.
    """
    args = [a for a in (jupyter_args or []) if a != "--"]
    if as_root is None:
        geteuid = getattr(os, "geteuid", None)  # not on Windows
        as_root = geteuid is not None and geteuid() == 0
    note = ""
    if as_root and "--allow-root" not in args:
        args.append("--allow-root")
        note = " (running as root: --allow-root added, JupyterLab refuses to start as root without it)"
    return [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}", *args], note


def start_lab(folder: Path, jupyter_args: list[str] | None = None) -> int:
    """Replace this process with ``jupyter lab`` serving ``folder`` (Ctrl-C stops it; nothing is left behind);
    print the command first."""
    argv, note = lab_command(folder, jupyter_args)
    print(f"dsopt: starting JupyterLab: {shlex.join(['python', *argv[1:]])}{note}")
    sys.stdout.flush()
    os.chdir(folder)
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - execv does not return
