"""``dsopt run NN --decide``: add seeds to a chapter's comparison until each claim is decided (or the budget ends).

Runs in this process through the chapter's :class:`~dsopt.studies.study.Study` (no notebook): the first look
measures the chapter's ``n_seeds`` seeds, each later look adds ``batch`` seeds up to ``max_seeds``, and the
sequential design of :mod:`dsopt.stats.sequential` (alpha spending over the planned looks) decides when a claim
may stop. Every run is cached in ``cwd/.dsopt-cache/NN`` (the folder ``dsopt run NN`` uses), so a second call,
or one after Ctrl-C, continues from the seeds already measured. The result is written atomically to
``OUT/decide.json``; the terminal gets one progress line per look and the verdict table as plain text.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from dsopt.chapters.registry import get_chapter
from dsopt.util.atomic import atomic_write_text
from dsopt.util.validation import ParameterError, check_number

#: The default budget, in seeds (the chapter's own n_seeds range bounds it too).
DEFAULT_MAX_SEEDS = 12


def run_decide(chapter: str, parameters: dict[str, Any] | None = None, out_dir: str | os.PathLike | None = None, *,
               max_seeds: int = DEFAULT_MAX_SEEDS, batch: int | None = None, cwd: str | os.PathLike | None = None,
               workers: int | None = None, echo: Callable[[str], None] | None = None,
               executor: Any = None) -> dict:
    """Decide mode for chapter ``chapter`` with ``parameters``; returns ``{"result", "path", "text"}``.

    ``max_seeds``: the budget (at least the chapter's ``n_seeds`` and 3); ``batch``: seeds added per look
    (default: the first look's size). ``echo`` receives the progress lines (default: stderr). ``executor``: where
    the runs execute (``--executor``; default ``$DSOPT_EXECUTOR``, else local processes).
    """
    from dsopt.studies.catalog import get_study
    from dsopt.studies.executors import parse_executor
    from dsopt.studies.jobs import execution, provenance

    ch = get_chapter(chapter)
    params = ch.validate(dict(parameters or {}))
    if executor is not None:
        parse_executor(executor, name="--executor")
    max_seeds = check_number("--max-seeds", max_seeds, low=max(3, int(params.get("n_seeds", 3))), integer=True)
    try:
        ch.params["n_seeds"].validate(max_seeds)  # the chapter's own upper bound on seeds
    except ParameterError as exc:
        raise ParameterError("--max-seeds", f"--max-seeds is a number of seeds: {exc}") from None
    if batch is not None:
        batch = check_number("--batch", batch, low=1, high=max_seeds, integer=True)
    echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    from dsopt.data.download import require

    require(ch.needed_datasets({**params, "n_seeds": max_seeds}), progress=True)
    work = Path(cwd or Path.cwd()).resolve()
    out = Path(out_dir) if out_dir else work / "runs" / f"{ch.id}_{ch.slug}-decide-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    study = get_study(ch.id)
    t0 = time.monotonic()

    def progress(look: int, n_looks: int, seeds: int, open_claims) -> None:
        echo(f"dsopt decide {ch.id}: look {look}/{n_looks} done, {seeds} seeds spent, "
             f"{len(open_claims)} claim{'s' if len(open_claims) != 1 else ''} open, {time.monotonic() - t0:.0f} s")

    with provenance() as prov, execution(executor=executor):
        result = study.decide(params, max_seeds=max_seeds, batch=batch, cache_dir=str(work / ".dsopt-cache" / ch.id),
                              workers=workers, progress=progress)
    record = {"chapter": ch.id, "parameters": params, "max_seeds": max_seeds, "seconds": round(time.monotonic() - t0, 1),
              "provenance": prov.as_dict(), **result.as_dict()}
    path = out / "decide.json"
    atomic_write_text(path, json.dumps(record, indent=1, default=repr))
    return {"result": result, "record": record, "path": str(path), "text": render_decide(result, fmt="text")}


def render_decide(result, *, fmt: str = "text") -> str:
    """The decide-mode outcome: one row per claim (status, decided at which look and seeds), then the summary."""
    rows = [(name, o.label, "-" if o.look is None else str(o.look), "-" if o.seeds is None else str(o.seeds))
            for name, o in result.outcomes.items()]
    head = ("claim", "status", "look", "seeds")
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|---|---|---|---|"] + ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n\n" + result.summary()
    if fmt != "text":
        raise ParameterError("fmt", f"fmt must be 'text' or 'markdown'; got {fmt!r}")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)] if rows else [len(h) for h in head]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + "\n" + result.summary()
