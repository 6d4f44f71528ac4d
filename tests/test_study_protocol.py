"""Every chapter is one Study with the same verbs (issue #18 item 1): the registry's parameters, its jobs,
its run functions, what its runs depend on, and a live-run factory."""
from __future__ import annotations

import inspect

import pytest

from dsopt.chapters.registry import CHAPTERS
from dsopt.studies.catalog import all_studies, get_study
from dsopt.studies.study import Study



def test_one_study_per_chapter_in_chapter_order():
    studies = all_studies()
    assert [s.id for s in studies] == sorted(CHAPTERS) == ["01", "02", "03", "04", "05", "06", "07"]
    for s in studies:
        assert isinstance(s, Study) and get_study(s.id) is s
        assert s.params is CHAPTERS[s.id].params and s.title == CHAPTERS[s.id].title and s.slug == CHAPTERS[s.id].slug
        for verb in ("grid", "measure", "live"):  # the chapter's own; the others may run on the hooks below
            assert getattr(type(s), verb) is not getattr(Study, verb), f"chapter {s.id} does not implement {verb}"
        for verb, hook in (("summarize", "summarize_runs"), ("table", "format_table"), ("compute", "verdict_of"),
                           ("render", "render_verdict")):
            own = getattr(type(s), verb) is not getattr(Study, verb)
            assert own or getattr(s, hook) is not None, f"chapter {s.id}: {verb} has neither an override nor {hook}"


def test_unknown_chapter_names_the_known_ones():
    with pytest.raises(KeyError, match="01, 02"):
        get_study("08")


@pytest.mark.parametrize("study", all_studies(), ids=lambda s: s.id)
def test_grid_follows_the_parameters(study):
    defaults = study.parameters()
    jobs = study.grid(defaults)
    assert jobs and len(set(map(repr, jobs))) == len(jobs)
    more = study.grid({**defaults, "n_seeds": defaults["n_seeds"] + 1})
    assert len(more) > len(jobs)  # one seed more: more jobs (seeds are what a person buys)
    assert study.seeds({**defaults, "seed": 5}) == list(range(5, 5 + defaults["n_seeds"]))


def test_parameters_are_validated_by_the_registry():
    from dsopt.util.validation import ParameterError

    with pytest.raises(ParameterError, match="n_seeds"):
        get_study("01").parameters({"n_seeds": 0})
    with pytest.raises(ParameterError, match="no parameter"):
        get_study("04").parameters({"nseeds": 3})


def test_runs_are_module_level_functions_of_the_declared_code():
    from dsopt.studies.fingerprint import covered

    for s in all_studies():
        for fn in s.runs:
            assert inspect.isfunction(fn) and "<locals>" not in fn.__qualname__
            assert covered(fn.__module__, s.depends_on), f"{fn.__module__} of chapter {s.id} is not declared"


def test_chapter_01_verbs_end_to_end_on_digits(tmp_path):
    """The five verbs in the notebooks' order, on a small real grid (digits, 2 epochs, 1 task)."""
    study = get_study("01")
    params = {"tasks": "digits", "epochs": 2, "n_seeds": 2, "scale": "tiny"}
    results = study.measure(params, cache_dir=str(tmp_path), progress=False, workers=1)
    assert len(results["runs"]) == len(study.grid(params)) == 4 * 2
    summary = study.summarize(results)
    assert "| digits |" in study.table(summary)
    verdict = study.compute(summary)
    assert set(verdict["claims"]) == {"speed", "accuracy"}
    assert "Claim" in study.render(verdict) or "claim" in study.render(verdict)
    again = study.measure(params, cache_dir=str(tmp_path), progress=False, workers=1)
    assert again["runs"] == results["runs"]  # from the cache, same keys
    trainer = study.live({"scale": "tiny"})(epochs=1)
    assert trainer.status == "idle" and trainer.max_epochs == 1
