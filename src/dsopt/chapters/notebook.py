"""The one call that opens every chapter notebook's first code cell.

``params = start("01", globals())`` takes the chapter's parameters from the notebook's namespace (the
tagged ``parameters`` cell, possibly overridden by papermill), validates them against the registry
(a bad value is refused with the parameter's name and allowed range, as ``dsopt run`` does before a
kernel starts), sets torch's CPU threads (one thread below ``scale="full"``: the models are small,
one thread is fastest and leaves a core to the browser; a ``threads`` parameter wins), tells the
run cache which chapter it serves (for the "regenerate with" hint of missing stored runs), checks that the
datasets the run reads are here (downloading them, or refusing at once with what to do: papermill run on
the notebook directly used to fail half a minute later with a raw traceback) and imports transformers
(chapters that tokenize text) while only this thread runs: its first import is not thread-safe, and a cold
Run All of chapter 07 failed on it when its background comparison and live replay both started.
"""
from __future__ import annotations

import os
from typing import Any

from dsopt.chapters.registry import get_chapter
from dsopt.data.download import require
from dsopt.util.threads import set_torch_threads
from dsopt.util.validation import ParameterError


def start(chapter: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Validate chapter ``chapter``'s parameters found in ``namespace``; set threads; return the coerced values."""
    ch = get_chapter(chapter)
    missing = [name for name in ch.params if name not in namespace]
    if missing:
        raise ParameterError(missing[0], f"the parameters cell of chapter {ch.id} does not define "
                                         f"{', '.join(missing)}; expected: {', '.join(ch.params)}")
    params = ch.validate({name: namespace[name] for name in ch.params})
    threads = params.get("threads") or (None if params.get("scale") == "full" else 1)
    set_torch_threads(threads)
    os.environ["DSOPT_CHAPTER"] = ch.id
    require(ch.needed_datasets(params), progress=True)  # memoised hash check when present: ~1 ms
    if ch.imports_transformers:
        preload_transformers()
    return params


def preload_transformers() -> bool:
    """Import transformers if it is installed (when not, the chapter gives its own install hint later, where
    it needs it); True if imported. Its first import is not thread-safe; once done, later imports are."""
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True
