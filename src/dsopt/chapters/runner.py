"""Run a chapter notebook headless through papermill's Python API.

Parameters are validated against the chapter registry before a kernel starts. Widget state is
not stored (each plotly FigureWidget would add ~5 MB of plotly.js to the output notebook).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import nbformat

from dsopt.chapters.registry import get_chapter, notebooks_dir
from dsopt.chapters.results import load_metrics


def run_chapter(
    chapter: str,
    parameters: dict[str, Any] | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    prepare_only: bool = False,
    progress: bool = True,
    timeout: int | None = None,
) -> dict:
    """Execute chapter ``chapter`` with ``parameters``; return paths and the recorded metrics.

    Writes ``OUT/NN_slug.ipynb`` (executed) and ``OUT/metrics.json``. With ``prepare_only`` the
    notebook is only parameterised (papermill's prepare-only), e.g. for opening in JupyterLab.
    """
    import papermill  # imported late: `dsopt list` and `dsopt data` should not pay for it

    ch = get_chapter(chapter)
    params = ch.validate(dict(parameters or {}))
    out = Path(out_dir) if out_dir else Path("runs") / f"{ch.id}_{ch.slug}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    metrics_path = out / "metrics.json"
    if not prepare_only:
        params.setdefault("metrics_path", str(metrics_path))
    src = notebooks_dir() / ch.notebook
    dst = out / ch.notebook
    with _patched_environ(_headless_env()):
        papermill.execute_notebook(
            str(src), str(dst), parameters=params, kernel_name="python3", prepare_only=prepare_only,
            progress_bar=progress, cwd=str(src.parent), store_widget_state=False, execution_timeout=timeout,
        )
    strip_widget_state(dst)
    result = {"notebook": str(dst), "parameters": params}
    if not prepare_only:
        result["metrics_path"] = str(metrics_path)
        result["metrics"] = load_metrics(metrics_path) if metrics_path.is_file() else None
    return result


def update_committed_notebook(chapter: str, *, progress: bool = True, timeout: int | None = None) -> str:
    """Re-execute the committed notebook of ``chapter`` in place with its defaults (maintainers).

    No parameters are injected (the committed copy must not carry a machine's paths) and widget
    state is not stored. Written atomically: a failed run leaves the committed notebook unchanged.
    """
    import tempfile

    import papermill

    from dsopt.util.atomic import atomic_write_bytes

    src = notebooks_dir() / get_chapter(chapter).notebook
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / src.name
        env = _headless_env()
        with _patched_environ(env):
            papermill.execute_notebook(str(src), str(dst), kernel_name="python3", progress_bar=progress,
                                       cwd=str(src.parent), store_widget_state=False, execution_timeout=timeout)
        strip_widget_state(dst)
        strip_machine_paths(dst)
        atomic_write_bytes(src, dst.read_bytes())
    return str(src)


def _headless_env() -> dict:
    """Environment for kernels papermill starts: never mistaken for a live frontend."""
    env = dict(os.environ)
    env.pop("JPY_SESSION_NAME", None)
    env["DSOPT_FRONTEND"] = "0"
    return env


class _patched_environ:
    """Temporarily replace ``os.environ`` (papermill's kernels inherit it)."""

    def __init__(self, env: dict):
        self.env = env

    def __enter__(self):
        self.saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)

    def __exit__(self, *exc):
        os.environ.clear()
        os.environ.update(self.saved)


def strip_widget_state(path: str | os.PathLike) -> None:
    """Remove ``metadata.widgets`` from a notebook file in place (belt and braces)."""
    nb = nbformat.read(path, as_version=4)
    if nb.metadata.pop("widgets", None) is not None:
        nbformat.write(nb, path)


def strip_machine_paths(path: str | os.PathLike) -> None:
    """Drop papermill's ``input_path``/``output_path`` (this machine's folders) from a notebook in place."""
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("papermill", {})
    removed = [meta.pop(key, None) for key in ("input_path", "output_path")]
    if any(v is not None for v in removed):
        nbformat.write(nb, path)
