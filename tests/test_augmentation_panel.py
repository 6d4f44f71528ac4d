"""The augmentation panel's logic, without a browser: preview, validation, Try it in the background, Export."""
from __future__ import annotations

import time

import pytest


@pytest.fixture(scope="module")
def study(nltk_data, tmp_path_factory):
    from dsopt.studies.augmentation import setup

    return setup(nltk_data=nltk_data, cache_dir=tmp_path_factory.mktemp("panel"))


@pytest.fixture
def panel(study, monkeypatch):
    from dsopt_widgets.augmentation_panel import AugmentationPanel

    monkeypatch.setenv("DSOPT_FRONTEND", "0")
    p = AugmentationPanel(study, size=1, recipe="embedding_swap", n_aug=2, threshold=0.5, seed=0, epochs=2,
                          scale="tiny", vocabulary_texts=study.splits.train.texts[:200])
    yield p
    p.close()
    if p.baseline is not None:
        p.baseline[0].stop()


def _wait(panel, cond, timeout=600):
    t0 = time.time()
    while not cond():
        panel.refresh()
        if time.time() - t0 > timeout:
            raise TimeoutError("panel did not get there")
        time.sleep(0.2)
    panel.refresh()


def test_preview_highlights_changes_scores_and_filters(panel):
    html = panel.preview.value
    assert "original" in html and "similarity" in html
    assert "<mark" in html  # changed words highlighted
    rows = panel.last_preview
    assert len(rows) == 2 and all(a.similarity is not None for a in rows if a.text)
    pipe = next(iter(panel._pipelines.values()))
    drawn = pipe.generated
    panel.threshold.value = 1.0  # stricter filter: nothing new is drawn, everything is filtered
    assert pipe.generated == drawn
    assert "filtered out" in panel.preview.value and "0 of 2 kept" in panel.message.value
    panel.recipe.value = "wordnet_swap"
    panel.sentence.value = "I have a terrible headache and my neck is stiff."
    assert "[swap]" in panel.preview.value and "terrible headache" in panel.preview.value  # the original line


def test_invalid_values_are_refused_with_a_message(panel):
    before = panel.preview.value
    panel.seed.value = "-3"
    assert "seed must be an integer in [0, 2147483647]; got -3" in panel.message.value
    assert panel.preview.value == before
    panel.seed.value = "0"
    panel.sentence.value = "   "
    assert "sentence must contain at least one word" in panel.message.value
    assert panel.preview.value == before
    panel.sentence.value = "x" * 1200
    assert "at most 1000 characters" in panel.message.value
    panel.sentence.value = panel.sentences[0]
    panel.seed.value = "-1"
    assert panel.try_it() is False and "not started: seed" in panel.message.value


def test_seed_and_epochs_fields_take_what_is_typed(panel):
    """Issue 20 item 3: "2.5" reached the kernel as 25 through IntText; now refused, "1e3" is 1000."""
    import html

    for text, got in (("2.5", "2.5"), ("-1", "-1"), ("abc", "'abc'")):
        panel.seed.value = text
        assert f"seed must be an integer in [0, 2147483647]; got {got}<" in html.unescape(panel.message.value)
        assert panel.try_it() is False
    panel.seed.value = "1e3"
    assert panel.settings()["seed"] == 1000
    panel.seed.value = "0"
    panel.budget.value = "2.5"
    assert panel.try_it() is False
    assert "not started: epochs must be an integer in [1, 500]; got 2.5<" in html.unescape(panel.message.value)


def test_headless_show_trains_both_runs_and_draws_them(panel):
    from dsopt_widgets.frontend import has_frontend

    assert not has_frontend()
    p = panel.prepared
    assert p.n_originals == 24 and len(p.aug_texts) == 24 + p.kept and p.kept <= p.made <= 48
    assert panel.baseline[0].max_epochs == 2 == panel.trainer.max_epochs
    panel.show()
    assert panel.baseline[0].state.step == panel.trainer.state.step > 0  # same budget
    fig = panel.static_figure()
    names = [t.name for t in fig.data]
    assert "try it: no augmentation" in names and "try it: with augmentation" in names
    assert len(fig.data[0].y) == 2 and len(fig.data[1].y) == 2  # one validation point per epoch
    assert len(panel.results["baseline"]) == 1 and panel.results["baseline"][0][0] == 1.0
    assert fig.layout.xaxis.title.text == "epoch" and "macro-F1 (%)" in fig.layout.yaxis.title.text


def test_try_it_runs_in_the_background_and_exports(panel):
    panel.show()
    panel.recipe.value = "wordnet_swap"
    panel.n_aug.value = 1
    panel.budget.value = "2"
    assert panel.try_it() is True
    assert "preparing" in panel.message.value
    _wait(panel, lambda: panel.prepared.settings["recipe"] == "wordnet_swap" and panel.run_state() == "finished"
          and not panel.baseline[0].running)
    _wait(panel, lambda: len(panel.results["augmented"]) == 2)
    assert "done: test macro-F1" in panel.message.value
    assert panel.prepared.settings["n_aug"] == 1 and panel.prepared.made <= 24
    params = panel.export()
    assert params == {"live_size": 1, "live_recipe": "wordnet_swap", "live_pct": 0.1, "live_n_aug": 1,
                      "live_threshold": 0.5, "seed": 0, "live_epochs": 2}
    assert panel.export_area.value.startswith("dsopt run 03 -p live_size 1 -p live_recipe 'wordnet_swap'")
    from dsopt.chapters.registry import get_chapter

    get_chapter("03").validate(params)  # the exported parameters are valid chapter parameters


def test_learning_curves_tick_at_the_sizes_measured():
    """Issue 20 item 8: the log axis read "5 1 2 5 10 2 5"; it now names the training-set sizes."""
    from dsopt.studies.augmentation.measure import FULL  # the size that means the whole train split
    from dsopt_widgets.augmentation_figures import learning_curve_figure, live_figure

    table = [{"learner": "transformer", "arm": arm, "size": size, "f1": [0.5, 0.6], "f1_mean": 0.55}
             for arm in ("no augmentation", "eda x2") for size in (2, 5, 10, FULL)]
    for fig in (learning_curve_figure(table), live_figure(table, learner="transformer")):
        axes = [a for a in fig.layout if a.startswith("xaxis") and fig.layout[a].type == "log"]
        assert axes and all(list(fig.layout[a].ticktext) == ["2", "5", "10", "full"] for a in axes)
