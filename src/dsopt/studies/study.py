"""A chapter is a Study: the one object that defines a chapter's measurement, read by everything else.

Every chapter notebook calls the same verbs in the same order::

    study = get_study("01")                          # dsopt.studies.catalog
    results = study.measure(params, cache_dir=...)   # the grid of runs, through run_jobs (cached, stored)
    summary = study.summarize(results)               # the comparison table
    verdict = study.compute(summary)                 # a verdict dict from dsopt.stats
    text = study.render(verdict)                     # Markdown
    handle = study.live(params)()                    # a fresh run handle for the panel (core.handle.RunHandle)

and the chapter's declarations are attributes:

- ``id``, ``slug``, ``title`` and ``params``: the chapter's registry entry (:mod:`dsopt.chapters.registry`,
  torch-free so that ``dsopt list`` and ``dsopt run``'s preflight answer without importing the study);
- ``runs``: its module-level run functions (what :func:`~dsopt.studies.jobs.run_jobs` executes);
- ``depends_on``: the dsopt modules and packages whose code can change a run's result. A run's key hashes
  their syntax (:mod:`dsopt.studies.fingerprint`), so a change anywhere else, or a docstring anywhere,
  leaves the chapter's stored runs valid. tests/test_fingerprint.py checks that every module a run really
  imports is declared (or provably cannot change results).

``grid(params)`` lists the jobs ``measure`` runs first (a study whose later rounds depend on earlier results,
such as chapter 02's test round, lists the rounds it can know in advance). The Study is found by
:func:`dsopt.studies.catalog.get_study` (explicit imports, no import strings) and by :func:`dsopt.studies.fingerprint.study_of`
(a ``STUDY`` attribute of the run function's module or package).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar


#: Modules every training run uses: the Trainer and its parts, torch thread settings, validators (they coerce).
#: (core.handle, the run-handle protocol the panels use, is not here: no run calls it.)
TRAINING = ("dsopt.core.__init__", "dsopt.core.callbacks", "dsopt.core.checkpoint", "dsopt.core.controls",
            "dsopt.core.device", "dsopt.core.modes", "dsopt.core.recorder", "dsopt.core.seeding", "dsopt.core.state",
            "dsopt.core.trainer", "dsopt.util.threads", "dsopt.util.validation")
#: The data layer that decides what a run sees: datasets' definitions, parsing, splits, tasks. (Downloading and
#: the verified cache are not here: a file is used only when its published SHA-256 matches.)
DATA = ("dsopt.data.__init__", "dsopt.data.dataset", "dsopt.data.parsers", "dsopt.data.registry", "dsopt.data.splits",
        "dsopt.data.tasks", "dsopt.data.imbalance", "dsopt.data.tabular")


class Study:
    """Base class of the seven chapter studies (see the module docstring for the protocol)."""

    id: ClassVar[str] = ""
    runs: ClassVar[tuple[Callable, ...]] = ()
    depends_on: ClassVar[tuple[str, ...]] = ()

    # -- declarations from the registry ---------------------------------------------------------
    @property
    def chapter(self):
        from dsopt.chapters.registry import CHAPTERS

        return CHAPTERS[self.id]

    @property
    def slug(self) -> str:
        return self.chapter.slug

    @property
    def title(self) -> str:
        return self.chapter.title

    @property
    def params(self) -> dict:
        """The chapter's parameters (name -> registry ``Param``: default, validator, help)."""
        return self.chapter.params

    def parameters(self, values: Mapping[str, Any] | None = None) -> dict:
        """Defaults overlaid with ``values``, validated (ParameterError names a bad one)."""
        full = {n: p.default for n, p in self.params.items()}
        full.update(self.chapter.validate(dict(values or {})))
        return full

    def seeds(self, params: Mapping[str, Any]) -> list[int]:
        """The seeds of the comparison: ``seed, seed + 1, ...`` (``n_seeds`` of them)."""
        return list(range(int(params["seed"]), int(params["seed"]) + int(params["n_seeds"])))

    # -- the verbs --------------------------------------------------------------------------------
    def grid(self, params: Mapping[str, Any]) -> list:
        """The jobs of the comparison (that can be known before it runs)."""
        raise NotImplementedError

    def measure(self, params: Mapping[str, Any], *, cache_dir: str | None = None, progress: bool = True,
                **options: Any) -> dict:
        """Run the grid through ``run_jobs`` (cached, stored runs reused) and return the raw results."""
        raise NotImplementedError

    def measure_with_provenance(self, params: Mapping[str, Any], *, stored_runs: bool = True,
                                **options: Any) -> dict:
        """:meth:`measure`, plus ``results["provenance"]``: how many runs were measured here (and how long they
        took), read from this machine's cache, or read from stored runs, and the CPU, torch build, date and load
        that made the reused ones (:class:`dsopt.studies.jobs.Provenance`). ``stored_runs=False`` measures on this
        machine every run the cache lacks, ignoring the stored runs beside the notebook."""
        from dsopt.studies.jobs import execution, provenance

        with provenance() as prov, execution(stored_runs=stored_runs):
            results = self.measure(params, **options)
        return {**results, "provenance": prov.as_dict()}

    #: The chapter's own functions behind the default verbs below (``staticmethod(...)`` in a subclass): runs ->
    #: table rows, rows -> Markdown, rows -> verdict, verdict -> Markdown. A chapter whose summary is more than a
    #: table (02, 05, 07) overrides the verb instead.
    summarize_runs: ClassVar[Callable | None] = None
    format_table: ClassVar[Callable | None] = None
    verdict_of: ClassVar[Callable | None] = None
    render_verdict: ClassVar[Callable | None] = None

    def summarize(self, results: dict) -> Any:
        """The comparison's table (what the verdict is computed from), with the parameters that made it."""
        return {"table": self._hook("summarize_runs")(results["runs"]), "params": results["params"]}

    def table(self, summary: Any) -> str:
        """The summary as Markdown."""
        return self._hook("format_table")(summary["table"])

    def compute(self, summary: Any) -> dict:
        """The verdict (statuses and estimates from :mod:`dsopt.stats`)."""
        return self._hook("verdict_of")(summary["table"])

    def render(self, verdict: dict) -> str:
        """The verdict as Markdown."""
        return self._hook("render_verdict")(verdict)

    def _hook(self, name: str) -> Callable:
        fn = getattr(self, name)
        if fn is None:
            raise NotImplementedError(f"chapter {self.id}'s Study sets no {name} (or overrides the verb that uses it)")
        return fn

    def claim_verdicts(self, verdict: dict) -> dict:
        """``{claim name: Verdict}`` of a :meth:`compute` result, one entry per claim and setting (what decide
        mode stops on; the names are the rows of the verdict table)."""
        raise NotImplementedError(f"chapter {self.id}'s Study does not list its claims (claim_verdicts)")

    def decide(self, params: Mapping[str, Any] | None = None, *, max_seeds: int = 12, batch: int | None = None,
               alpha: float = 0.05, spending: str = "obrien-fleming", cache_dir: str | None = None,
               workers: int | None = None, progress: Callable | None = None,
               measure_options: Mapping[str, Any] | None = None, compute_options: Mapping[str, Any] | None = None) -> Any:
        """Decide mode: measure the first ``n_seeds`` seeds, then add ``batch`` seeds per look up to
        ``max_seeds`` until every claim is decided (:func:`dsopt.stats.sequential.decide`: alpha spending over
        the planned looks keeps the chance of any false decision at ``alpha``). Every seed's runs go through
        :meth:`measure` (cached in ``cache_dir``; stored runs reused), so a look only computes its new seeds and
        an interrupted decide resumes where it stopped. ``progress(look, n_looks, seeds, open_claims)``;
        ``measure_options``/``compute_options``: the chapter's extra arguments of :meth:`measure` / :meth:`compute`.

        Returns a :class:`~dsopt.stats.sequential.DecideResult`; its ``verdict`` field is the last look's
        :meth:`compute` result (the chapter's full verdict at the seeds spent).
        """
        from dsopt.stats.sequential import SequentialDesign, decide

        p = self.parameters(params)
        start = max(3, int(p["n_seeds"]))
        self.parameters({**p, "n_seeds": max_seeds})  # the chapter's own range for n_seeds names a bad max_seeds
        design = SequentialDesign(alpha=alpha, start=min(start, max_seeds), max_seeds=max_seeds,
                                  batch=batch or start, spending=spending)
        last: dict = {}

        extra = dict(measure_options or {})
        if workers is not None:
            extra["workers"] = workers

        def measure(n: int) -> dict:
            return self.measure({**p, "n_seeds": n}, cache_dir=cache_dir, progress=False, **extra)

        def judge(results: dict, level: float, open_claims) -> dict:
            last["verdict"] = verdict = self.compute(self.summarize(results), alpha=level, **(compute_options or {}))
            return {name: v for name, v in self.claim_verdicts(verdict).items()
                    if open_claims is None or name in open_claims}

        result = decide(design, measure, judge, progress=progress)
        result.verdict = last.get("verdict")
        return result

    def live(self, params: Mapping[str, Any], **context: Any) -> Callable[[], Any]:
        """A factory of fresh live runs for the panel (each call: a new, seeded run handle)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Study {self.id} {type(self).__name__}: {len(self.runs)} run functions, depends on " \
               f"{', '.join(self.depends_on)}>"
