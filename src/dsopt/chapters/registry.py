"""The chapter registry: each chapter's notebook and its papermill parameters with validators.

The registry is the single source of truth for what ``dsopt run`` and ``dsopt list`` accept: values
are validated here, before a kernel starts, and a test checks that every notebook's tagged
``parameters`` cell declares exactly these names with these defaults.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsopt.util.validation import ParameterError, check_choice, check_number


@dataclass(frozen=True)
class Param:
    """One notebook parameter: default, validator (returns the coerced value or raises), help."""

    default: Any
    validate: Callable[[Any], Any]
    help: str


@dataclass(frozen=True)
class Chapter:
    """A chapter: id ("01"), slug, notebook file name, title, parameters and the datasets they need.

    ``datasets(params) -> names`` gives the datasets a run with the (validated, complete) ``params`` reads;
    ``dsopt run`` checks them before a kernel starts. Default: the names in a ``tasks`` parameter.
    ``imports_transformers``: the notebook's first cell imports transformers (:func:`dsopt.chapters.notebook.start`)
    before any background thread runs. Its first import is not thread-safe: two threads importing it at once in a
    cold kernel (a chapter's background comparison and its live run) failed with "cannot import name
    'AutoTokenizer' from 'transformers'" 4 times in 4 here; after one import in a single thread, 0 in 8.
    """

    id: str
    slug: str
    title: str
    params: dict[str, Param] = field(default_factory=dict)
    datasets: Callable[[dict], list[str]] | None = None
    imports_transformers: bool = True  # every chapter but 06 (digits only) may tokenize text

    def needed_datasets(self, values: dict[str, Any]) -> list[str]:
        """Datasets a run with ``values`` (defaults filled in) needs."""
        full = {**{n: p.default for n, p in self.params.items()}, **values}
        if self.datasets is not None:
            return list(self.datasets(full))
        tasks = full.get("tasks")
        return [t.strip() for t in tasks.split(",") if t.strip()] if isinstance(tasks, str) else []

    @property
    def notebook(self) -> str:
        return f"{self.id}_{self.slug}.ipynb"

    def validate(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check names and values; return the coerced values. Raises ParameterError naming the parameter."""
        out = {}
        for name, value in values.items():
            if name not in self.params:
                allowed = ", ".join(self.params)
                raise ParameterError(name, f"chapter {self.id} has no parameter {name!r}; parameters: {allowed}")
            out[name] = self.params[name].validate(value)
        return out


# -- reusable validators -------------------------------------------------------------------------
def integer(name: str, low: int, high: int | None = None) -> Callable[[Any], int]:
    return lambda v: check_number(name, v, low=low, high=high, integer=True)


def number(name: str, low: float, high: float, low_inclusive: bool = True) -> Callable[[Any], float]:
    return lambda v: float(check_number(name, v, low=low, high=high, low_inclusive=low_inclusive))


def choice(name: str, choices: list) -> Callable[[Any], Any]:
    return lambda v: check_choice(name, v, choices)


def subset(name: str, choices: list[str]) -> Callable[[Any], str]:
    """A comma-separated, non-empty subset of ``choices`` (kept as the string papermill passes)."""

    def check(v):
        if not isinstance(v, str) or not v.strip():
            raise ParameterError(name, f"{name} must be a comma-separated subset of {', '.join(choices)}; got {v!r}")
        for item in v.split(","):
            check_choice(name, item.strip(), choices)
        return ",".join(item.strip() for item in v.split(","))

    return check


def number_list(name: str, low: float, high: float, integer: bool = False) -> Callable[[Any], list]:
    """A non-empty list of numbers in [low, high] (integers when ``integer``), e.g. ``[0.1, 0.2]``."""

    def check(v):
        if not isinstance(v, (list, tuple)) or not v:
            raise ParameterError(name, f"{name} must be a non-empty list of numbers in [{low!r}, {high!r}]; got {v!r}")
        return [check_number(name, x, low=low, high=high, integer=integer) for x in v]

    return check


def per_task_integer(name: str, tasks: list[str], low: int, high: int) -> Callable[[Any], int | dict]:
    """One integer for every task, or a mapping task -> integer (e.g. a per-task epoch budget)."""

    def check(v):
        if isinstance(v, dict):
            unknown = sorted(set(v) - set(tasks))
            if unknown or not v:
                raise ParameterError(name, f"{name} must be an integer in [{low}, {high}] or a non-empty mapping "
                                           f"task -> integer with tasks from {', '.join(tasks)}; got {v!r}")
            return {t: check_number(f"{name}[{t!r}]", e, low=low, high=high, integer=True) for t, e in v.items()}
        return check_number(name, v, low=low, high=high, integer=True)

    return check


def boolean(name: str) -> Callable[[Any], bool]:
    """True or False (``-p NAME true`` / ``false`` on the command line); nothing else, not even 0 or 1."""

    def check(v):
        if isinstance(v, bool):
            return v
        raise ParameterError(name, f"{name} must be true or false; got {v!r}")
    return check


def text(name: str) -> Callable[[Any], str]:
    def check(v):
        if not isinstance(v, str):
            raise ParameterError(name, f"{name} must be a string; got {v!r}")
        return v

    return check


def control_schedule(knobs: Sequence[str] = (), name: str = "control_schedule") -> Callable[[Any], list]:
    """A list of ``[step, knob, value]`` triples exported by a panel (``Controls.as_parameters``).

    ``knobs``: the knob names the chapter's live run defines (tests/test_replay_check.py keeps them equal to the
    library's), so a misspelt knob is refused here, before a kernel starts; ``"stop"`` (a session stopped by hand)
    is always allowed. Values and steps are checked against the run itself once it is built, before it trains
    (:func:`dsopt.studies.replay.check_control_schedule`).
    """

    def check(v):
        ok = isinstance(v, list) and all(
            isinstance(t, (list, tuple)) and len(t) == 3 and isinstance(t[0], int) and not isinstance(t[0], bool)
            and t[0] >= 0 and isinstance(t[1], str)
            for t in v
        )
        if not ok:
            raise ParameterError(name, f"{name} must be a list of [step >= 0, knob name, value] triples; got {v!r}")
        if knobs:
            for step, knob, _ in v:
                if knob != "stop" and knob not in knobs:
                    raise ParameterError(name, f"{name}: no knob {knob!r} (at step {step}); this chapter's live run "
                                               f"has {', '.join(knobs)} (and 'stop')")
        return [list(t) for t in v]

    return check


#: The knobs of each chapter's live run, by chapter (names only: values are checked by the run's own validators).
LIVE_KNOBS = {
    "01": ("base_lr", "T_0", "T_mult", "eta_min", "warmup", "cycle_decay", "cycle_limit"),
    "04": ("scheme", "gamma", "alpha", "beta", "confidence"),
    "05": ("precision", "init_scale", "growth_factor", "backoff_factor", "growth_interval"),
    "07": ("lambda", "L", "k", "h", "label_budget"),
}


COMMON = {
    "seed": Param(0, integer("seed", 0, 2**31 - 1), "base random seed; seeds used are seed, seed+1, ..."),
    "metrics_path": Param("", text("metrics_path"), "where the notebook writes its metrics JSON (set by `dsopt run`)"),
    "stored_runs": Param(True, boolean("stored_runs"), "read the runs stored beside the notebook when they match "
                                                       "the code (false: measure every run on this machine)"),
}

CHAPTERS: dict[str, Chapter] = {}


def register(chapter: Chapter) -> Chapter:
    CHAPTERS[chapter.id] = chapter
    return chapter


register(Chapter("01", "lr_restarts", "Learning-rate warm restarts", {
    "tasks": Param("digits,financial_phrasebank", subset("tasks", ["digits", "financial_phrasebank"]),
                   "tasks of the controlled comparison (digits is embedded and works offline)"),
    "epochs": Param(20, integer("epochs", 2, 500), "epoch budget, the same for every schedule"),
    "n_seeds": Param(3, integer("n_seeds", 1, 20), "seeds per schedule (>= 3 for a verdict)"),
    "base_lr": Param(1e-3, number("base_lr", 0.0, 10.0, low_inclusive=False), "AdamW peak learning rate (the article's 1e-3)"),
    "article_T_0": Param(5, integer("article_T_0", 1, 1000), "the article's T_0"),
    "article_T_mult": Param(2, integer("article_T_mult", 1, 10), "the article's T_mult"),
    "live_epochs": Param(6, integer("live_epochs", 1, 200), "epochs of the live run with the panel"),
    "control_schedule": Param([], control_schedule(LIVE_KNOBS["01"]), "knob changes exported from a panel session, replayed in the live run"),
    "scale": Param("workshop", choice("scale", ["tiny", "workshop", "full"]),
                   "model/data size: tiny (tests), workshop (2 CPU cores, minutes), full (GPU)"),
    **COMMON,
}))


register(Chapter("02", "attention_pruning", "Attention-head pruning", {
    "methods": Param("gradient,entropy,confidence,random",
                     subset("methods", ["gradient", "entropy", "confidence", "random"]),
                     "head-importance methods compared on MiniLM (random draws one ranking per seed)"),
    "fractions": Param([0.1, 0.2, 0.3, 0.4, 0.5], number_list("fractions", 0.0, 1.0),
                       "fractions of all heads removed in the comparison (global ranking)"),
    "n_seeds": Param(3, integer("n_seeds", 1, 20),
                     "independently fine-tuned MiniLM models (seeds), each pruned by every method (>= 3 for a verdict)"),
    "finetune_epochs": Param(1, integer("finetune_epochs", 0, 20),
                             "MiniLM fine-tuning epochs after the linear probe (0 = probe only)"),
    "finetune_lr": Param(3e-5, number("finetune_lr", 0.0, 1.0, low_inclusive=False), "MiniLM fine-tuning learning rate"),
    "article_threshold": Param(0.1, number("article_threshold", 0.0, 1.0), "the article's keep threshold"),
    "latency_batch_sizes": Param([1, 32], number_list("latency_batch_sizes", 1, 4096, integer=True),
                                 "batch sizes of the latency measurement"),
    "latency_lengths": Param([32, 128], number_list("latency_lengths", 2, 512, integer=True),
                             "sequence lengths (tokens) of the latency measurement"),
    "latency_repeats": Param(5, integer("latency_repeats", 1, 1000), "timed repeats per latency (median), after warm-up"),
    "threads": Param(1, integer("threads", 1, 1024), "torch CPU threads for training, evaluation and latency"),
    "live_method": Param("gradient", choice("live_method", ["gradient", "entropy", "confidence", "random", "article"]),
                         "the panel's initial method"),
    "live_fraction": Param(0.25, number("live_fraction", 0.0, 1.0), "the panel's initial fraction of heads removed"),
    "live_epochs": Param(6, integer("live_epochs", 1, 200), "training epochs of the small model behind the panel"),
    "scale": Param("workshop", choice("scale", ["tiny", "workshop", "full"]),
                   "data/model size: tiny (tests), workshop (2 CPU cores, minutes), full (GPU)"),
    **COMMON,
}, datasets=lambda p: ["financial_phrasebank"]))


register(Chapter("03", "augmentation", "Domain text augmentation by training-set size", {
    "dataset": Param("symptom2disease", choice("dataset", ["symptom2disease", "sst2"]),
                     "task of the controlled comparison (Symptom2Disease: 24 classes; SST-2 subsets: binary)"),
    "n_seeds": Param(3, integer("n_seeds", 1, 20), "seeds; each draws its own training subsets (>= 3 for a verdict)"),
    "threshold": Param(0.8, number("threshold", -1.0, 1.0),
                       "similarity filter of the comparison: keep an augmentation if its MiniLM cosine to the original is >= this"),
    "pct_words_to_swap": Param(0.1, number("pct_words_to_swap", 0.0, 1.0, low_inclusive=False),
                               "share of words each augmentation changes (textattack's pct_words_to_swap)"),
    "live_size": Param(5, choice("live_size", [1, 2, 5, 10, 20, "full"]), "the panel's training set: examples per class"),
    "live_recipe": Param("embedding_swap", choice("live_recipe", ["embedding_swap", "wordnet_swap", "synonym_insertion", "eda"]),
                         "the panel's recipe"),
    "live_pct": Param(0.1, number("live_pct", 0.0, 1.0, low_inclusive=False), "the panel's share of words changed"),
    "live_n_aug": Param(3, integer("live_n_aug", 1, 10), "the panel's augmentations per example"),
    "live_threshold": Param(0.8, number("live_threshold", -1.0, 1.0), "the panel's similarity threshold"),
    "live_epochs": Param(10, integer("live_epochs", 1, 500), "epochs of each of the panel's two runs (headless)"),
    "scale": Param("workshop", choice("scale", ["tiny", "workshop", "full"]),
                   "grid: tiny (tests), workshop (2 CPU cores, minutes: 2/5/10 per class, 2 recipes), full (GPU: all)"),
    **COMMON,
}, datasets=lambda p: [p["dataset"]]))


register(Chapter("04", "dynamic_weighting", "Dynamic loss weighting for imbalanced data", {
    "tasks": Param("credit_card_default,sms_spam_collection",
                   subset("tasks", ["credit_card_default", "sms_spam_collection"]),
                   "tasks of the controlled comparison (credit default: tabular MLP; SMS spam: small transformer)"),
    "epochs": Param({"credit_card_default": 12, "sms_spam_collection": 3},
                    per_task_integer("epochs", ["credit_card_default", "sms_spam_collection"], 1, 500),
                    "epoch budget per task (or one number for all), the same for every scheme; the defaults reach "
                    "a validation PR-AUC plateau at workshop scale"),
    "n_seeds": Param(3, integer("n_seeds", 1, 20), "seeds per scheme and setting (>= 3 for a verdict)"),
    "imbalance_ratio": Param(100.0, number("imbalance_ratio", 6.5, 100000.0),
                             "fraud-like majority:minority ratio made by subsampling the minority of the TRAIN split "
                             "(above both natural ratios: credit 3.5:1, SMS 6.5:1)"),
    "live_epochs": Param(3, integer("live_epochs", 1, 200), "epochs of the live run with the panel"),
    "control_schedule": Param([], control_schedule(LIVE_KNOBS["04"]), "knob changes exported from a panel session, replayed in the live run"),
    "scale": Param("workshop", choice("scale", ["tiny", "workshop", "full"]),
                   "model/data size: tiny (tests), workshop (2 CPU cores, minutes), full (GPU)"),
    **COMMON,
}))


register(Chapter("05", "mixed_precision", "Mixed precision you can see", {
    "modes": Param("fp32,bf16,fp16", subset("modes", ["fp32", "bf16", "fp16"]),
                   "precision modes compared (fp32 is the baseline of the verdict)"),
    "n_seeds": Param(3, integer("n_seeds", 1, 20), "seeds per mode (>= 3 for a verdict)"),
    "speed_repeats": Param(5, integer("speed_repeats", 1, 100),
                           "interleaved repeats of the step-time measurement (the pairs of the speed verdict)"),
    "speed_steps": Param(8, integer("speed_steps", 1, 1000), "training steps timed per mode and repeat"),
    "memory_batches": Param(4, integer("memory_batches", 1, 100), "batches whose memory is accounted per mode"),
    "live_precision": Param("fp16", choice("live_precision", ["fp32", "bf16", "fp16"]),
                            "precision of the live run with the panel (fp16 shows the loss scaler)"),
    "live_epochs": Param(1, integer("live_epochs", 1, 200), "epochs of MLM pre-training in the live run"),
    "control_schedule": Param([], control_schedule(LIVE_KNOBS["05"]), "knob changes exported from a panel session, replayed in the live run"),
    "scale": Param("workshop", choice("scale", ["tiny", "workshop", "full"]),
                   "model/data size: tiny (tests), workshop (2 CPU cores, minutes), full (GPU: BERT-base-sized encoder)"),
    **COMMON,
}, datasets=lambda p: ["sst2", "financial_phrasebank"]))


register(Chapter("06", "distributed", "Distributed training from notebook cells (DDP and Horovod)", {
    "workers": Param(2, integer("workers", 2, 1024), "worker processes of the demo cell, the live run and the study "
                     "(2 on a 2-core machine; scale 'full' uses every visible GPU instead)"),
    "backend": Param("ddp", choice("backend", ["ddp", "horovod"]),
                     "backend of the %%distributed demo cell and the live run (the study runs both when Horovod is installed)"),
    "n_seeds": Param(3, integer("n_seeds", 1, 20), "seeds per arm of the scaling study (>= 3 for a verdict)"),
    "epochs": Param(8, integer("epochs", 1, 500), "training epochs per run, the same for every arm"),
    "global_batch": Param(128, integer("global_batch", 2, 65536), "global batch, the same at 1 and N workers (split evenly)"),
    "base_lr": Param(0.05, number("base_lr", 0.0, 10.0, low_inclusive=False),
                     "SGD rate at reference_batch; scaled linearly to the global batch after warmup (Goyal et al.)"),
    "reference_batch": Param(32, integer("reference_batch", 1, 65536), "the batch base_lr belongs to"),
    "warmup_epochs": Param(2.0, number("warmup_epochs", 0.0, 100.0), "linear warmup from base_lr to the scaled rate"),
    "target_accuracy": Param(0.9, number("target_accuracy", 0.0, 1.0, low_inclusive=False),
                             "validation accuracy whose training time is compared"),
    "bucket_cap_mb": Param(25.0, number("bucket_cap_mb", 0.0, 1024.0, low_inclusive=False), "DDP gradient bucket size (MB)"),
    "fusion_threshold_mb": Param(128.0, number("fusion_threshold_mb", 0.0, 1024.0), "Horovod tensor fusion threshold (MB)"),
    "timeout": Param(900.0, number("timeout", 1.0, 86400.0), "seconds before a launch's hung workers are killed"),
    "scale": Param("workshop", choice("scale", ["tiny", "workshop", "full"]),
                   "tiny (tests), workshop (2 CPU cores, minutes), full (nccl on every visible GPU; untested on GPU)"),
    **COMMON,
}, imports_transformers=False))


register(Chapter("07", "monitoring", "Monitoring a model in service", {
    "n_seeds": Param(6, integer("n_seeds", 1, 50), "stream orders per arm (>= 3 for a verdict)"),
    "arl0": Param(100.0, number("arl0", 10.0, 250.0),
                  "in-control ARL (windows) every chart is calibrated to (the Western Electric rules cap it near 255)"),
    "window_size": Param(0, integer("window_size", 0, 10000), "predictions per monitoring window (0 = the scale's: 20)"),
    "label_delay": Param(-1, integer("label_delay", -1, 1000), "windows until labels arrive (-1 = the scale's: 2)"),
    "labels_per_request": Param(0, integer("labels_per_request", 0, 10000),
                                "labels per retraining request (0 = the scale's: 60)"),
    "label_budget": Param(-1, integer("label_budget", -1, 100000),
                          "labels the loop may request over the stream (-1 = the scale's: 180); periodic gets the same"),
    "margin": Param(0.10, number("margin", 0.0, 1.0, low_inclusive=False),
                    "decay: accuracy this far below launch (0.10 = 10 points)"),
    "smooth": Param(10, integer("smooth", 1, 1000), "decay: windows of the trailing mean accuracy"),
    "live_windows": Param(90, integer("live_windows", 1, 100000), "windows of the live replay with the panel"),
    "control_schedule": Param([], control_schedule(LIVE_KNOBS["07"]), "knob changes exported from a panel session, replayed live"),
    "prometheus": Param(True, choice("prometheus", [True, False]),
                        "start a local Prometheus (Debian's package) for the dashboards section"),
    "scale": Param("workshop", choice("scale", ["tiny", "workshop", "full"]),
                   "stream and data size: tiny (tests), workshop (2 CPU cores, minutes), full"),
    **COMMON,
}, datasets=lambda p: ["sst2", "financial_phrasebank"]))


def get_chapter(chapter_id: str) -> Chapter:
    """Look a chapter up by id ("01"), number (1) or slug ("lr_restarts")."""
    key = str(chapter_id)
    for ch in CHAPTERS.values():
        if key in (ch.id, ch.slug, f"{ch.id}_{ch.slug}") or (key.isdigit() and int(key) == int(ch.id)):
            return ch
    raise ParameterError("chapter", f"unknown chapter {chapter_id!r}; chapters: {', '.join(CHAPTERS)}")


def notebooks_dir() -> Path:
    """Folder holding the chapter notebooks.

    ``$DSOPT_NOTEBOOKS`` when set; else, in a checkout (editable install), the checkout's ``notebooks/``;
    else the copy shipped inside the package (``dsopt/chapters/notebooks``, a plain ``pip install``).
    """
    env = os.environ.get("DSOPT_NOTEBOOKS")
    here = Path(__file__).resolve().parent
    checkout = here.parents[2]
    candidates = [Path(env)] if env else [
        *([checkout / "notebooks"] if (checkout / "pyproject.toml").is_file() else []), here / "notebooks"]
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(
        f"chapter notebooks not found at {candidates[0]}; reinstall dsopt (they ship inside the package) "
        "or set DSOPT_NOTEBOOKS to the notebooks/ folder of a dsopt checkout"
    )


def is_checkout(path: Path) -> bool:
    """True when ``path`` is the notebooks/ folder of a source checkout (where --update-notebook may write)."""
    return (path.parent / "pyproject.toml").is_file() and (path.parent / "src" / "dsopt").is_dir()
