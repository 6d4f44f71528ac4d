"""The augmentation panel: preview textattack augmentations of a sentence, then "try it" on a training set.

Pick one of the dataset's sentences or type one; choose the recipe, the share of words changed, the
number of augmentations per example, the similarity threshold and the seed. The preview redraws at
once: each augmentation with its changed words highlighted, its MiniLM cosine similarity to the original
and whether the filter keeps it (augmentations are cached on disk, so revisiting a setting is instant).
**Try it** trains the small transformer on the chosen number of examples per class twice, from the same
initial weights and seed -- first on the originals, then with the kept augmentations -- in the background,
and draws both validation curves; when both end, their test macro-F1 joins the learning curve on the
right (one point per size you tried). The two runs go one after the other, not side by side: they would
share torch's global RNG (dropout) and their results would depend on thread timing; one after the other
they are exactly what the headless replay (Export) computes. The run controls act on the run in
progress (Stop also cancels the one waiting); Restart is Try it. Invalid values (an empty sentence, a seed out of range) are refused with a message naming the
parameter. Headless, the panel trains both runs to the end and renders one static figure.
"""
from __future__ import annotations

import threading
from typing import Sequence

import ipywidgets as W
import plotly.graph_objects as go

from dsopt.augment.recipes import RECIPES, Recipe
from dsopt.studies.augmentation.learners import finish
from dsopt.studies.augmentation.live import SIZES, check_settings, live_trainers, prepare
from dsopt.studies.augmentation.measure import FULL, Setup
from dsopt.util.validation import ParameterError
from dsopt_widgets.augmentation_figures import live_figure, preview_html
from dsopt_widgets.base import RunPanel
from dsopt_widgets.fields import read_whole, whole_field
from dsopt_widgets.live import RecorderFeed

MAX_CHARS = 1000
STYLE = {"description_width": "190px"}  # "augmentations / example" in full at JupyterLab's font
SLIDER_WIDTH = "520px"


def check_sentence(text) -> str:
    """A sentence to augment: a non-empty string of at most MAX_CHARS characters with a word in it."""
    if not isinstance(text, str) or not text.strip() or not any(c.isalpha() for c in text):
        raise ParameterError("sentence", "sentence must contain at least one word; got an empty sentence")
    if len(text) > MAX_CHARS:
        raise ParameterError("sentence", f"sentence must have at most {MAX_CHARS} characters; got {len(text)}")
    return " ".join(text.split())


class AugmentationPanel(RunPanel):
    """Preview + "try it" panel for chapter 03.

    Parameters
    ----------
    setup: the study's :class:`~dsopt.studies.augmentation.measure.Setup` (split, NLTK data, caches).
    sentences: sentences offered in the picker (default: the first 12 of the train split, one per class first).
    size, recipe, pct_words_to_swap, n_aug, threshold, seed: the starting settings of the run and preview.
    epochs: the headless budget of each run; interactive_epochs: the budget knob's start with a frontend.
    vocabulary_texts: texts whose words make the preview's domain embedding (default: the train split);
    embedding: a ready :class:`~dsopt.augment.embedding.DomainEmbedding` for the preview instead.
    """

    def __init__(self, setup: Setup, *, sentences: Sequence[str] | None = None, size=5, recipe: str = "embedding_swap",
                 pct_words_to_swap: float = 0.1, n_aug: int = 3, threshold: float = 0.8, seed: int = 0,
                 epochs: int = 10, interactive_epochs: int | None = 20, scale: str = "workshop",
                 vocabulary_texts: Sequence[str] | None = None, embedding=None, export_command: str = "dsopt run 03"):
        self.setup = setup
        self.scale = scale
        self._settings = check_settings(recipe, pct_words_to_swap, n_aug, threshold, seed, size)
        self.baseline = self.augmented = None
        self._queued_next = False
        self.prepared = None
        self.results: dict[str, list[tuple[float, float]]] = {"baseline": [], "augmented": []}
        self._tests = None
        self._tested = False
        self._ready = None
        self._preparing: threading.Thread | None = None
        self._prep_error: BaseException | None = None
        self._pipelines: dict[str, object] = {}
        self._embedding = embedding
        self._vocab_texts = list(vocabulary_texts if vocabulary_texts is not None else setup.splits.train.texts)
        super().__init__(None, factory=self._factory, epochs=epochs, interactive_epochs=interactive_epochs,
                         export_command=export_command, epochs_parameter="live_epochs",
                         max_epochs=500)  # chapter 03's live_epochs range
        train = setup.splits.train
        if sentences is None:
            first = {}
            for t, y in zip(train.texts, train.y):
                first.setdefault(int(y), t)
            sentences = list(first.values())[:12]
        self.sentences = list(sentences)
        v = self._settings
        self.picker = W.Dropdown(options=[(s if len(s) <= 90 else s[:87] + "...", s) for s in self.sentences],
                                 value=self.sentences[0], description="pick a sentence", style=STYLE,
                                 layout=W.Layout(width="100%"))
        self.sentence = W.Textarea(value=self.sentences[0], description="or type one", style=STYLE,
                                   layout=W.Layout(width="100%", height="4.2em"), continuous_update=False)
        self.recipe = W.Dropdown(options=list(RECIPES), value=v["recipe"], description="recipe", style=STYLE)
        self.pct = W.FloatSlider(value=v["pct_words_to_swap"], min=0.05, max=0.5, step=0.05, description="share of words changed",
                                 style=STYLE, layout=W.Layout(width=SLIDER_WIDTH), readout_format=".2f", continuous_update=False)
        self.n_aug = W.IntSlider(value=v["n_aug"], min=1, max=5, description="augmentations / example", style=STYLE,
                                 layout=W.Layout(width=SLIDER_WIDTH), continuous_update=False)
        self.threshold = W.FloatSlider(value=v["threshold"], min=0.0, max=1.0, step=0.01, description="similarity threshold",
                                       style=STYLE, layout=W.Layout(width=SLIDER_WIDTH), readout_format=".2f", continuous_update=False)
        self.seed = whole_field(v["seed"], "seed", style=STYLE, layout=W.Layout(width="260px"))
        self.size = W.Dropdown(options=[(f"{s} per class" if s != FULL else "full train split", s) for s in SIZES],
                               value=v["size"], description="training set", style=STYLE)
        self.try_button = W.Button(description="Try it", button_style="primary",
                                   tooltip="train the small model with and without these augmentations (background)")
        self.try_button.on_click(lambda _: self.try_it())
        self.preview = W.HTML(layout=W.Layout(min_height="7em"))
        self.live = self.live_figure(live_figure())
        self.live_names = ()  # both runs' traces are fed by refresh() below, from their own Recorders
        self._feeds = {}
        self._bind_runs()
        self.picker.observe(lambda ch: setattr(self.sentence, "value", ch["new"]), names="value")
        for w in (self.sentence, self.recipe, self.pct, self.n_aug, self.threshold, self.seed):
            w.observe(lambda _: self.update_preview(), names="value")
        self.update_preview()

    # -- settings ---------------------------------------------------------------------------------------
    def settings(self) -> dict:
        """The widgets' settings, validated (ParameterError names the parameter)."""
        return check_settings(self.recipe.value, self.pct.value, self.n_aug.value, self.threshold.value,
                              read_whole(self.seed, "seed", low=0, high=2**31 - 1), self.size.value)

    def knob_values(self) -> dict:
        return {}  # nothing to steer inside a run: a new setting is a new run (Try it)

    def describe(self, values: dict) -> str:
        return (f"{values['recipe']} x{values['n_aug']}, {100 * values['pct_words_to_swap']:g} % of words, similarity >= "
                f"{values['threshold']:.2f}, {values['size']}{' per class' if values['size'] != FULL else ''}, seed {values['seed']}")

    # -- preview ----------------------------------------------------------------------------------------
    def _pipeline(self, recipe: Recipe):
        from dsopt.augment.embedding import DomainEmbedding
        from dsopt.augment.pipeline import AugmentationPipeline, SimilarityFilter
        from dsopt.studies.augmentation.measure import stopwords, vectors_for

        key = recipe.key(self._embedding.fingerprint_ if (recipe.needs_embedding and self._embedding) else "-")
        if key not in self._pipelines:
            vectors = vectors_for(self.setup.sub("vectors"))
            if recipe.needs_embedding and self._embedding is None:
                self._embedding = DomainEmbedding.from_texts(self._vocab_texts, vectors.words,
                                                             k=recipe.max_candidates,
                                                             stopwords=stopwords(self.setup.nltk_data))
            self._pipelines[key] = AugmentationPipeline(
                recipe, nltk_data=str(self.setup.nltk_data), embedding=self._embedding if recipe.needs_embedding else None,
                filter=SimilarityFilter(vectors, -1.0), cache_dir=self.setup.sub("augment"))
        return self._pipelines[key]

    def update_preview(self) -> list | None:
        """Augment the sentence with the current settings; show them highlighted. None when refused."""
        try:
            text = check_sentence(self.sentence.value)
            v = self.settings()
            recipe = Recipe(v["recipe"], pct_words_to_swap=v["pct_words_to_swap"])
            rows = self._pipeline(recipe).augment([text], v["n_aug"], v["seed"])[0]
        except ParameterError as exc:
            self._say(f"not changed: {exc}", error=True)
            return None
        except Exception as exc:  # noqa: BLE001 - e.g. WordNet missing: the message says how to install it
            self._say(f"{type(exc).__name__}: {exc}", error=True)
            return None
        for a in rows:
            a.kept = a.text is not None and a.similarity >= v["threshold"]
        self.preview.value = preview_html(text, rows, v["threshold"])
        kept = sum(a.kept for a in rows)
        self._say(f"preview: {self.describe(v)} -> {kept} of {len(rows)} kept. Press Try it to train with these settings.")
        self.last_preview = rows
        return rows

    # -- the runs ------------------------------------------------------------------------------------------
    def _factory(self, *, epochs: int, control_schedule=()):
        """Both runs with the current settings (synchronous: the panel's first run and headless use)."""
        self.prepared = prepare(self.setup, **self._settings_for_prepare(self._settings))
        runs = live_trainers(self.setup, self.prepared, epochs=epochs, scale=self.scale)
        self.baseline = runs["baseline"]
        self.augmented = runs["augmented"]
        self._tests = runs
        self._tested = False
        self._queued_next = True  # the augmented run starts when the baseline has finished
        return runs["baseline"][0]

    @staticmethod
    def _settings_for_prepare(v: dict) -> dict:
        return {"size": v["size"], "seed": v["seed"], "recipe": v["recipe"], "pct_words_to_swap": v["pct_words_to_swap"],
                "n_aug": v["n_aug"], "threshold": v["threshold"]}

    def _bind_runs(self) -> None:
        self._feeds = {"baseline": RecorderFeed(self.baseline[0].recorder),
                       "augmented": RecorderFeed(self.augmented[0].recorder)}
        with self.live.batch_update():
            for i in range(4):
                self.live.data[i].x, self.live.data[i].y = (), ()
        self._draw_results()

    def try_it(self) -> bool:
        """Stop the runs; prepare and start a fresh pair with the current settings (in the background)."""
        try:
            v = self.settings()
            epochs = self.budget_value()
        except ParameterError as exc:
            self._say(f"not started: {exc}", error=True)
            return False
        if self._preparing is not None and self._preparing.is_alive():
            self._say("still preparing the previous Try it: wait for it to start", error=True)
            return False
        self.stop(wait=30.0)
        self._settings = v
        self._say(f"preparing: augmenting {v['size']}{' per class' if v['size'] != FULL else ''} with {self.describe(v)} ...")

        def work():
            try:
                prepared = prepare(self.setup, **self._settings_for_prepare(v))
                self._ready = (prepared, live_trainers(self.setup, prepared, epochs=epochs, scale=self.scale))
            except BaseException as exc:  # shown by refresh() on the main thread
                self._prep_error = exc

        self._preparing = threading.Thread(target=work, name="dsopt-augment-try-it", daemon=True)
        self._preparing.start()
        return True

    def restart(self) -> bool:
        return self.try_it()

    def _start_ready(self) -> None:
        prepared, runs = self._ready
        self._ready = None
        self.prepared, self._tests, self._tested = prepared, runs, False
        self.baseline, self.augmented = runs["baseline"], runs["augmented"]
        self._bind(self.baseline[0])
        self._bind_runs()
        self._queued_next = True
        self.trainer.start()
        p = prepared
        self._say(f"training both runs: {p.n_originals} originals, {p.kept} of {p.made} augmentations kept "
                  f"({self.describe(p.settings)}), {self.trainer.max_epochs} epochs of "
                  f"{self.trainer.state.batches_per_epoch} steps each; no augmentation first")
        self._update_status()

    def _next_run(self) -> None:
        """When the baseline run has finished, start the augmented one (same seed, same budget)."""
        if self._queued_next and self.trainer is self.baseline[0] and self.run_state() == "finished":
            self._queued_next = False
            self._bind(self.augmented[0])
            self.trainer.start()
            self._update_status()

    def stop(self, wait: float | None = None) -> None:
        self._queued_next = False  # Stop ends the pair: the waiting run does not start
        super().stop(wait)

    def export(self) -> dict:
        """Notebook parameters replaying this panel's last run (``dsopt run 03 -p live_... ``)."""
        v = self._settings
        params = {"live_size": v["size"], "live_recipe": v["recipe"], "live_pct": v["pct_words_to_swap"],
                  "live_n_aug": v["n_aug"], "live_threshold": v["threshold"], "seed": v["seed"],
                  "live_epochs": self.trainer.max_epochs if self.trainer is not None else None}
        if self.export_area is not None:
            self.export_area.value = self.export_command + "".join(
                f" -p {k} {val!r}" if isinstance(val, str) else f" -p {k} {val}" for k, val in params.items())
        return params

    # -- drawing ---------------------------------------------------------------------------------------
    def _test_results(self) -> dict | None:
        """Test macro-F1 of both runs (best validation epoch), once both have finished."""
        if self._tests is None or self._tested:
            return None
        (b, bm, bl), (a, am, al) = self._tests["baseline"], self._tests["augmented"]
        if b.running or a.running or not (b.state.step and a.state.step):
            return None
        self._tested = True
        rb, ra = finish(b, bm, bl), finish(a, am, al)
        x = 35.0 if self.prepared.size == FULL else float(self.prepared.size)
        self.results["baseline"].append((x, 100 * rb["test_macro_f1"]))
        self.results["augmented"].append((x, 100 * ra["test_macro_f1"]))
        self.last_result = {"baseline": rb, "augmented": ra}
        return self.last_result

    def _draw_results(self) -> None:
        with self.live.batch_update(force=True):
            for i, key in ((2, "baseline"), (3, "augmented")):
                pts = sorted(self.results[key])
                self.live.data[i].x = [p[0] for p in pts]
                self.live.data[i].y = [p[1] for p in pts]

    def _feed_curves(self) -> None:
        """Append the runs' new validation points to the live figure (redrawn at most every ``redraw_interval``
        s while a run trains: each drawing re-sends the whole figure; at once when both have ended)."""
        running = self.baseline[0].running or self.augmented[0].running
        new = {key: feed.new().get("val_macro_f1") for key, feed in self._feeds.items()}
        if any(new.values()):
            with self.live.batch_update(force=not running):
                for i, (key, pts) in enumerate(new.items()):
                    if pts:
                        trainer = self.baseline[0] if key == "baseline" else self.augmented[0]
                        steps, values = pts
                        tr = self.live.data[i]
                        tr.x = tuple(tr.x or ()) + tuple(s / trainer.state.batches_per_epoch for s in steps)
                        tr.y = tuple(tr.y or ()) + tuple(100 * float(v) for v in values)
        elif self.live.stale:
            self.live.redraw(force=not running)  # what the throttle held back, once due

    def refresh(self) -> bool:
        if self._closed:
            return False
        if self._prep_error is not None:
            exc, self._prep_error = self._prep_error, None
            self._say(f"Try it failed: {type(exc).__name__}: {exc}", error=True)
        if self._ready is not None:
            self._start_ready()
        self._next_run()
        keep = super().refresh()
        self._feed_curves()
        done = self._test_results()
        if done is not None:
            self._draw_results()
            self._say(f"done: test macro-F1 {100 * done['baseline']['test_macro_f1']:.1f} % without, "
                      f"{100 * done['augmented']['test_macro_f1']:.1f} % with augmentation "
                      f"({self.describe(self._settings)}; best validation epoch of each run)")
        return keep

    def close(self) -> None:
        super().close()

    # -- display --------------------------------------------------------------------------------------
    def widget(self) -> W.Widget:
        knobs = W.VBox([self.picker, self.sentence,
                        W.HBox([W.VBox([self.recipe, self.pct, self.n_aug]), W.VBox([self.threshold, self.seed])],
                               layout=W.Layout(flex_flow="row wrap"))])
        run = W.HBox([self.size, self.try_button], layout=W.Layout(align_items="center"))
        return W.VBox([knobs, self.message, self.preview, run, self.run_box(), self.live.widget, self.export_box()],
                      layout=W.Layout(width="100%"))

    def show(self):
        from dsopt_widgets.frontend import has_frontend

        if not has_frontend() and self.run_state() == "not started":
            self.baseline[0].fit()  # then the augmented run: fitted by the base's show()
            self._queued_next = False
            self._bind(self.augmented[0])
        return super().show()

    def static_figure(self) -> go.Figure:
        """Both runs' validation curves and test macro-F1 (what the live figure shows), for headless runs."""
        self._feed_curves()
        if self._test_results() is not None:
            self._draw_results()
        return go.Figure(self.live)
