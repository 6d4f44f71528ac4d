"""How a chapter run fails, said in a few lines: a cell's error (:class:`ChapterRunError`) or the kernel's fate
(:class:`KernelFailure`: died, did not start, ran past the cell time limit, or the notebook could not be written),
each with the partial notebook's path, without a traceback of papermill's internals."""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["ChapterRunError", "KernelFailure", "display_path", "kernel_failure"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ChapterRunError(RuntimeError):
    """A chapter notebook failed in a cell. ``str()`` is a short summary; ``.notebook`` the partial notebook."""

    def __init__(self, chapter: str, notebook: str, cell: int | None, ename: str, evalue: str, tail: str = ""):
        super().__init__(chapter, notebook, cell, ename, evalue, tail)  # all arguments: picklable
        self.chapter, self.notebook, self.cell = chapter, notebook, cell
        self.ename, self.evalue, self.tail = ename, evalue, tail

    def __str__(self) -> str:
        where = f"cell {self.cell}" if self.cell is not None else "a cell"
        lines = [f"chapter {self.chapter} failed in {where}: {self.ename}: {_shorten(self.evalue)}"]
        if self.tail:
            lines.append(self.tail)
        lines.append(f"partial notebook: {display_path(self.notebook) if self.notebook.startswith('/') else self.notebook}")
        return "\n".join(lines)


def _shorten(text: str, max_lines: int = 12) -> str:
    lines = _ANSI.sub("", str(text)).strip().splitlines()
    return "\n".join(lines[:max_lines] + ([f"... ({len(lines) - max_lines} more lines)"] if len(lines) > max_lines else []))


def traceback_tail(traceback: list[str], n: int = 3) -> str:
    """The last frames' locations of an IPython traceback (where it failed), without colours."""
    text = _ANSI.sub("", "\n".join(traceback or []))
    frames = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(("File ", "Cell In"))]
    return "\n".join(f"  at {f}" for f in frames[-n:])


class KernelFailure(ChapterRunError):
    """The kernel died, did not start, ran past the cell time limit, or the notebook could not be written:
    one line naming the cause and the fix (no traceback of papermill's internals)."""

    def __init__(self, chapter: str, notebook: str | None, cause: str, fix: str):
        ChapterRunError.__init__(self, chapter, notebook or "", None, "", "")
        self.args = (chapter, notebook, cause, fix)
        self.cause, self.fix = cause, fix

    def __str__(self) -> str:
        where = f"; partial notebook: {display_path(self.notebook)}" if self.notebook else ""
        return f"chapter {self.chapter}: {self.cause}{where}; {self.fix}"


def _running_cell(notebook: Path | None) -> str:
    """" in code cell N" for the last code cell papermill started in the partial notebook, else ""."""
    import nbformat

    try:
        cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    except Exception:  # noqa: BLE001 - no (readable) notebook: say less
        return ""
    started = [i for i, c in enumerate(cells, 1) if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    return f" in code cell {started[-1]}" if started else ""


def kernel_failure(chapter: str, notebook: Path | None, exc: Exception, timeout: int | None) -> KernelFailure | None:
    """The :class:`KernelFailure` for an exception papermill/nbclient raised, or None when it is none of these."""
    import errno

    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    kept = str(notebook) if notebook is not None and notebook.is_file() else None
    if isinstance(exc, DeadKernelError):
        said = getattr(exc, "kernel_log", "")
        return KernelFailure(chapter, kept, f"the kernel died{_running_cell(notebook)} (a crash, os._exit, or out of "
                             "memory: the system may have killed it)" + (f"; its last words: {said!r}" if said else ""),
                             "free memory or run a smaller -p scale, then run again")
    if isinstance(exc, CellTimeoutError):
        return KernelFailure(chapter, kept, f"a cell ran past the {timeout} s cell time limit{_running_cell(notebook)}",
                             "give a larger --timeout (or none) or a smaller -p scale")
    if isinstance(exc, RuntimeError) and any(m in str(exc) for m in ("Kernel didn't respond", "Kernel died before")):
        return KernelFailure(chapter, kept, f"the Python kernel did not start ({exc})",
                             "check the python3 kernel (`jupyter kernelspec list`; `python -m ipykernel install "
                             "--user` repairs it) or, on an overloaded machine, run again later")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return KernelFailure(chapter, kept, f"could not write {exc.filename or 'the notebook'}: {exc.strerror} "
                             "(the previous complete copy is kept)",
                             "free disk space or give another --out, then run again")
    return None


def display_path(path: str | os.PathLike, base: str | os.PathLike | None = None) -> str:
    """``path`` relative to ``base`` (default: the current folder) when it lies inside it, else as is."""
    path = Path(path)
    try:
        return str(path.relative_to(Path(base or Path.cwd()).resolve()))
    except ValueError:
        return str(path)
