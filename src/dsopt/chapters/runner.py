"""Run a chapter notebook headless through papermill's Python API.

Parameters are validated against the chapter registry and the datasets they need are checked (or
fetched) before a kernel starts. The executed notebook carries no absolute path of this machine: the
kernel runs in the working folder and ``metrics_path`` is injected relative to it, papermill's
input/output paths are dropped, and widget state is not stored (each plotly FigureWidget would add
~5 MB of plotly.js). A failing cell raises :class:`ChapterRunError` with the cell's error in a few
lines and the path of the partial notebook; a dead kernel, a cell past ``timeout``, a kernel that does not
start or a full disk raise :class:`KernelFailure` (one line: cause and fix). How the kernel runs (a private
folder per run, papermill in a worker thread so Ctrl-C/SIGTERM kill the kernel, atomic notebook writes) is
:mod:`dsopt.chapters.kernel`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dsopt.chapters.errors import (  # noqa: F401 - ChapterRunError, KernelFailure, display_path: importable from here
    ChapterRunError, KernelFailure, display_path, kernel_failure, traceback_tail)
from dsopt.chapters.kernel import execute
from dsopt.chapters.registry import get_chapter, is_checkout, notebooks_dir
from dsopt.chapters.results import load_metrics
from dsopt.util.atomic import atomic_write_text
from dsopt.util.validation import ParameterError

#: Environment variables that configure the *tests'* use of stored runs; a user's run never inherits them.
_TEST_ONLY_ENV = ("DSOPT_STORED_RUNS_ONLY", "DSOPT_STORED_RUNS_VERIFY")
#: Name of the file listing a chapter's stored runs (``notebooks/stored_runs/NN_slug/index.json``).
INDEX = "index.json"
def run_chapter(
    chapter: str,
    parameters: dict[str, Any] | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    prepare_only: bool = False,
    progress: bool = True,
    timeout: int | None = None,
    cwd: str | os.PathLike | None = None,
    check_data: bool = True,
    verify: int = 0,
    executor: str | None = None,
) -> dict:
    """Execute chapter ``chapter`` with ``parameters``; return paths and the recorded metrics.

    The kernel runs in ``cwd`` (default: the current folder; run caches go to ``cwd/.dsopt-cache``).
    Writes ``OUT/NN_slug.ipynb`` (executed; default OUT: ``cwd/runs/NN_slug-TIMESTAMP``) and
    ``OUT/metrics.json``. With ``prepare_only`` the notebook is only parameterised (papermill's
    prepare-only), e.g. for opening in JupyterLab. Raises :class:`ChapterRunError` when a cell fails.
    ``verify``: re-execute that many stored runs of each comparison here before using them (``--verify K``); a run
    that does not reproduce fails the run, naming it. ``executor``: where the comparison's runs execute
    (``--executor``: "local", "dask", "dask://HOST:PORT"; :mod:`dsopt.studies.executors`), given to the kernel as
    ``$DSOPT_EXECUTOR`` (the CLI checks the spec first; the kernel's first grid refuses a bad one).
    """
    ch = get_chapter(chapter)
    params = ch.validate(dict(parameters or {}))
    if check_data and not prepare_only:
        from dsopt.data.download import require

        require(ch.needed_datasets(params), progress=progress)  # before any kernel starts (or papermill loads)
    import papermill  # imported late: refusals, `dsopt list` and `dsopt data` should not pay for it
    from papermill.exceptions import PapermillExecutionError
    work = Path(cwd or Path.cwd()).resolve()
    out = Path(out_dir) if out_dir else work / "runs" / f"{ch.id}_{ch.slug}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = out.resolve()
    metrics_path = out / "metrics.json"
    if params.get("metrics_path"):  # the user's own: confined to the run folder, or refused
        metrics_path = (work / params["metrics_path"]).resolve()
        if not metrics_path.is_relative_to(out) or metrics_path == out:
            raise ParameterError("metrics_path", f"metrics_path must name a file inside the run folder "
                                                 f"{display_path(out)} (relative to {display_path(work)}); got "
                                                 f"{params['metrics_path']!r}. dsopt run writes OUT/metrics.json "
                                                 f"itself: choose the folder with --out")
        params["metrics_path"] = os.path.relpath(metrics_path, work)
    elif not prepare_only:
        params["metrics_path"] = os.path.relpath(metrics_path, work)
    out.mkdir(parents=True, exist_ok=True)
    src = notebooks_dir() / ch.notebook
    dst = out / ch.notebook
    env = _headless_env()
    spot_seed = None
    if verify:
        env["DSOPT_STORED_RUNS_VERIFY"] = str(int(verify))
        # which stored runs are re-executed: drawn at random now (nobody can know it in advance), printed so the
        # same pick can be repeated with DSOPT_SPOT_CHECK_SEED=...
        import secrets

        spot_seed = os.environ.get("DSOPT_SPOT_CHECK_SEED") or secrets.token_hex(6)
        env["DSOPT_SPOT_CHECK_SEED"] = spot_seed
    if executor:
        env["DSOPT_EXECUTOR"] = executor.strip()
    beside = _stored_runs_beside(ch, work, env)
    if beside is not None:
        env["DSOPT_STORED_RUNS"] = str(beside)
    try:
        with _patched_environ(env):
            execute(papermill.execute_notebook, str(src), str(dst), parameters=params,
                    kernel_name="python3", prepare_only=prepare_only, progress_bar=progress, cwd=str(work),
                    store_widget_state=False, execution_timeout=timeout)
    except PapermillExecutionError as exc:
        clean_executed(dst)
        raise ChapterRunError(ch.id, str(dst), exc.exec_count, exc.ename, exc.evalue,
                              traceback_tail(exc.traceback)) from None
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (Terminated): the kernel is gone, say where the notebook is
        clean_executed(dst)
        exc.notebook = str(dst) if dst.is_file() else None
        raise
    except Exception as exc:
        failure = kernel_failure(ch.id, dst, exc, timeout)
        if failure is None:
            raise
        clean_executed(dst)
        raise failure from None
    clean_executed(dst)
    result = {"notebook": str(dst), "parameters": params, "notices": run_notices(dst)}
    if spot_seed:
        result["spot_check_seed"] = spot_seed
    if not prepare_only:
        result["metrics_path"] = str(metrics_path)
        result["metrics"] = load_metrics(metrics_path) if metrics_path.is_file() else None
    return result


def update_committed_notebook(chapter: str, *, progress: bool = True, timeout: int | None = None,
                              reuse_stored: bool = False) -> dict:
    """Re-execute the committed notebook of ``chapter`` from nothing with its defaults, and store its runs.

    Runs in a fresh temporary folder with stored runs switched off, so every run of the comparison is
    computed by the current code. Then (atomically, only on success) the executed notebook replaces the
    committed one and the runs it made replace ``notebooks/stored_runs/NN_slug/``: the runs nbval reads.
    No parameters are injected (the committed copy must not carry a machine's paths).

    ``reuse_stored``: the chapter's stored runs whose keys are still current are used instead of computed
    again (a key covers the code that can change a run, :mod:`dsopt.studies.fingerprint`), so a change to a
    verdict, a table or a plot re-renders a chapter in minutes; the new store keeps exactly the stored runs
    the notebook used (``$DSOPT_RUN_LEDGER``) and the runs it computed.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from dsopt.util.atomic import atomic_write_bytes
    from dsopt.util.runfile import RunFileError, read_run

    ch = get_chapter(chapter)
    folder = notebooks_dir()
    if not is_checkout(folder):
        raise FileNotFoundError(f"--update-notebook rewrites the notebooks of a dsopt checkout; {folder} is not one "
                                "(run it from a clone with an editable install, or set DSOPT_NOTEBOOKS)")
    from dsopt.data.download import require

    require(ch.needed_datasets({}), progress=progress)
    src = folder / ch.notebook
    with tempfile.TemporaryDirectory(prefix="dsopt-update-") as tmp:
        work = Path(tmp)
        dst = work / src.name
        env = _headless_env()
        store = folder / "stored_runs" / f"{ch.id}_{ch.slug}"
        ledger = work / "used-runs.txt"
        env["DSOPT_STORED_RUNS"] = str(store) if reuse_stored and store.is_dir() else "0"
        env["DSOPT_RUN_LEDGER"] = str(ledger)
        try:
            with _patched_environ(env):
                execute(papermill.execute_notebook, str(src), str(dst),
                        kernel_name="python3", progress_bar=progress, cwd=str(work), store_widget_state=False,
                        execution_timeout=timeout)
        except PapermillExecutionError as exc:
            raise ChapterRunError(ch.id, "(not kept: the committed notebook is unchanged)", exc.exec_count,
                                  exc.ename, exc.evalue, traceback_tail(exc.traceback)) from None
        except Exception as exc:
            failure = kernel_failure(ch.id, None, exc, timeout)
            if failure is None:
                raise
            raise failure from None
        clean_executed(dst)
        runs = []
        for path in sorted((work / ".dsopt-cache").rglob("*.json")):
            try:
                read_run(path)
            except RunFileError:
                continue  # other caches (a model's weights index, ...) are not runs
            runs.append(path)
        if reuse_stored and ledger.is_file():
            made = {p.stem for p in runs}
            used = dict.fromkeys(ledger.read_text(encoding="utf-8").split())
            runs += [store / f"{k}.json" for k in used if k not in made and (store / f"{k}.json").is_file()]
        staging = store.with_name(store.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for path in runs:
            shutil.copy2(path, staging / path.name)
        # The index says which runs belong to the committed notebook (an executed notebook without one was
        # never updated this way); tests/test_stored_runs.py checks it against the files and the code.
        index = {"chapter": ch.id, "notebook": ch.notebook, "command": f"dsopt run {ch.id} --update-notebook",
                 "keys": sorted(p.stem for p in runs)}
        atomic_write_text(staging / INDEX, json.dumps(index, indent=1))
        old = store.with_name(store.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if store.exists():
            store.rename(old)
        staging.rename(store)
        shutil.rmtree(old, ignore_errors=True)
        atomic_write_bytes(src, dst.read_bytes())
    return {"notebook": str(src), "stored_runs": str(store), "n_runs": len(runs)}


def export_html(notebook: str | os.PathLike) -> str:
    """Write ``NOTEBOOK.html`` beside an executed notebook, figures drawn offline (plotly.js inlined once).

    Uses nbconvert's ``dsopt_html`` exporter (dsopt_widgets.export, found through its entry point).
    """
    import nbformat
    from nbconvert.exporters import get_exporter

    path = Path(notebook)
    body, _ = get_exporter("dsopt_html")().from_notebook_node(nbformat.read(path, as_version=4))
    out = path.with_suffix(".html")
    atomic_write_text(out, body)
    return str(out)


def _stored_runs_beside(ch, work: Path, env: Mapping[str, str]) -> Path | None:
    """The stored runs beside the notebook ``dsopt run`` executes (the shipped ``stored_runs/NN_slug``), for a run
    whose folder has none of its own and whose caller named none (``$DSOPT_STORED_RUNS``).

    The notebook's ``stored_runs`` parameter promises "the runs stored beside this notebook"; the kernel runs in the
    user's folder, so without this a plain ``dsopt run`` measured everything again. Only runs whose key matches
    (same code, parameters, seed) are read, a run made on another machine is spot-checked first
    (:mod:`dsopt.studies.jobs`), the provenance line says how many came from there, and
    ``-p stored_runs False`` measures every run here.
    """
    if "DSOPT_STORED_RUNS" in env or (work / "stored_runs").is_dir():
        return None
    folder = notebooks_dir() / "stored_runs" / f"{ch.id}_{ch.slug}"
    return folder if folder.is_dir() else None


def _headless_env() -> dict:
    """Environment for kernels papermill starts: never mistaken for a live frontend; a user's run measures."""
    env = dict(os.environ)
    env.pop("JPY_SESSION_NAME", None)
    for name in _TEST_ONLY_ENV:
        env.pop(name, None)
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


#: What the library prints on a kernel's stderr that a person at the terminal must see too: a damaged cached or
#: stored run (named, computed again) and stored runs that another machine made and this one does not reproduce.
_NOTICE_PREFIXES = ("dsopt: run file ", "dsopt: stored run ")


def run_notices(path: str | os.PathLike) -> list[str]:
    """The library's notices (:data:`_NOTICE_PREFIXES`) in an executed notebook's stderr outputs, once each."""
    try:
        nb = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    lines = [line.strip() for cell in nb.get("cells", []) for out in cell.get("outputs", [])
             if out.get("output_type") == "stream" and out.get("name") == "stderr"
             for line in "".join(out.get("text", "")).splitlines()]
    return list(dict.fromkeys(line for line in lines if line.startswith(_NOTICE_PREFIXES)))


def clean_executed(path: str | os.PathLike) -> None:
    """Drop what an executed notebook should not carry: widget state and papermill's input/output paths."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        return
    nb = nbformat.read(path, as_version=4)
    changed = nb.metadata.pop("widgets", None) is not None
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        changed |= meta.pop(key, None) is not None
    if changed:
        atomic_write_text(path, nbformat.writes(nb))  # a kill here leaves papermill's complete copy

