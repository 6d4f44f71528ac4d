"""The learners of chapter 03: a small transformer from scratch, MiniLM as a linear probe, MiniLM fine-tuned.

All three pick their model on the VALIDATION split (best epoch by validation macro-F1, or the
probe's regularisation strength) and report macro-F1 on the TEST split once, for what was picked.

Budget: an "epoch" of the from-scratch learners is a fixed number of optimizer steps set by the size of
the *original* training set (``ceil(n_originals / batch_size)``, at least 4), so training on 48
sentences or on those 48 plus 144 augmentations takes the same number of updates: augmentation changes
what the model sees, not how long it trains. Small sizes get more epochs (a floor on the total number
of steps, :func:`epochs_for`) so that every arm reaches its validation plateau within the budget.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from dsopt.core.recorder import Recorder
from dsopt.core.seeding import seed_everything
from dsopt.core.trainer import Trainer
from dsopt.metrics.per_class import ClassMetricsCallback, class_metrics, predict_proba
from dsopt.util.validation import check_choice, check_number

LEARNERS = ("transformer", "probe", "finetune")
#: Small-transformer size and token budget per scale (the chapter-01 model family).
TRANSFORMER = {
    "tiny": dict(d_model=32, n_layers=1, n_heads=2, d_ff=64),
    "workshop": dict(d_model=64, n_layers=2, n_heads=4, d_ff=128),
    "full": dict(d_model=128, n_layers=2, n_heads=4, d_ff=256),
}
MAX_LENGTH = 64  # Symptom2Disease texts: 95 % are under 60 WordPiece tokens
PROBE_C = (10.0, 100.0, 1000.0)  # unit-norm features: weak regularisation is the useful end


@functools.lru_cache(maxsize=1)
def _tokenizer():
    """MiniLM's WordPiece tokenizer, loaded once per process (a worker runs many jobs)."""
    from dsopt.models import load_minilm_tokenizer

    return load_minilm_tokenizer()


def steps_per_epoch(n_originals: int, batch_size: int, min_steps: int = 4) -> int:
    """Optimizer steps per epoch: one pass over the ORIGINAL examples (at least ``min_steps``)."""
    return max(int(min_steps), math.ceil(int(n_originals) / int(batch_size)))


def epochs_for(n_originals: int, epochs: int, min_steps: int = 0, batch_size: int = 16) -> int:
    """``epochs``, raised so that the run makes at least ``min_steps`` optimizer steps.

    At 2 examples per class an epoch is 4 steps: 20 of them leave the model (and more so the augmented
    arm, which sees more distinct sentences) still improving on validation; a floor on steps lets every
    size reach its plateau, and the best epoch is chosen on validation anyway.
    """
    per = steps_per_epoch(n_originals, batch_size)
    return max(int(epochs), math.ceil(int(min_steps) / per))


def fixed_step_loader(loader: DataLoader, steps: int, batch_size: int, seed: int) -> DataLoader:
    """``steps`` shuffled batches per epoch drawn from ``loader``'s dataset (reshuffled each pass, seeded)."""
    g = torch.Generator().manual_seed(int(seed))
    sampler = RandomSampler(loader.dataset, replacement=False, num_samples=steps * batch_size, generator=g)
    return DataLoader(loader.dataset, batch_size=batch_size, sampler=sampler, collate_fn=loader.collate_fn)


def _remap(loader: DataLoader, table: torch.Tensor) -> None:
    ds = loader.dataset
    ds.tensors = (table[ds.tensors[0]],) + tuple(ds.tensors[1:])


def transformer_trainer(train_texts: Sequence[str], train_y: Sequence[int], val_texts: Sequence[str], val_y, *,
                        n_classes: int, n_originals: int, seed: int, scale: str = "workshop", epochs: int = 20,
                        batch_size: int = 16, lr: float = 1e-3, recorder: Recorder | None = None):
    """The small transformer's run, built and seeded but not started: ``(trainer, metrics_callback, vocab_table)``.

    One function for the study's runs and the panel's "try it" runs. The vocabulary is the WordPiece ids
    of ``train_texts`` (originals and augmentations); validation is evaluated after every epoch
    (``val_macro_f1`` in the Recorder) and the best epoch's weights are kept.
    """
    from dsopt.data.tasks import compact_vocab
    from dsopt.models import TransformerClassifier, text_loader

    check_choice("scale", scale, tuple(TRANSFORMER))
    epochs = check_number("epochs", epochs, low=1, integer=True)
    seed_everything(seed)
    tok = _tokenizer()
    train = text_loader(list(train_texts), np.asarray(train_y), tok, batch_size, max_length=MAX_LENGTH)
    val = text_loader(list(val_texts), np.asarray(val_y), tok, 256, max_length=MAX_LENGTH)
    table = compact_vocab(train.dataset.tensors[0], tok)
    for loader in (train, val):
        _remap(loader, table)
    steps = steps_per_epoch(n_originals, batch_size)
    train = fixed_step_loader(train, steps, batch_size, seed)
    torch.manual_seed(seed)
    model = TransformerClassifier(vocab_size=int(table.max()) + 1, n_tokens_max=MAX_LENGTH,
                                  n_classes=n_classes, **TRANSFORMER[scale])
    metrics = ClassMetricsCallback(val, keep_best="macro_f1")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    trainer = Trainer(model, opt, torch.nn.functional.cross_entropy, train, None, max_epochs=epochs,
                      callbacks=[metrics], recorder=recorder, progress=False)
    return trainer, metrics, table


def test_loader(texts: Sequence[str], y, table: torch.Tensor) -> DataLoader:
    """Test batches in the vocabulary ``table`` of a :func:`transformer_trainer` run."""
    from dsopt.models import text_loader

    loader = text_loader(list(texts), np.asarray(y), _tokenizer(), 256, max_length=MAX_LENGTH)
    _remap(loader, table)
    return loader


def train_transformer(train_texts: Sequence[str], train_y: Sequence[int], val_texts: Sequence[str], val_y,
                      test_texts: Sequence[str], test_y, *, n_classes: int, n_originals: int, seed: int,
                      scale: str = "workshop", epochs: int = 20, batch_size: int = 16, lr: float = 1e-3,
                      threads: int | None = 1) -> dict:
    """Train the small transformer from scratch; pick the epoch by validation macro-F1; test it once.

    Returns ``{"val_macro_f1": [per epoch], "best_epoch", "test_macro_f1", "test_accuracy", "steps"}``.
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        trainer, metrics, table = transformer_trainer(
            train_texts, train_y, val_texts, val_y, n_classes=n_classes, n_originals=n_originals, seed=seed,
            scale=scale, epochs=epochs, batch_size=batch_size, lr=lr)
        trainer.fit()
        return finish(trainer, metrics, test_loader(test_texts, test_y, table))
    finally:
        torch.set_num_threads(previous)


def finish(trainer: Trainer, metrics: ClassMetricsCallback, test_batches) -> dict:
    """Restore the best-validation weights, evaluate the test split once, collect the curve."""
    best = metrics.restore_best(trainer.model)
    y, probs = predict_proba(trainer.model, test_batches, trainer.device)
    m = class_metrics(y, probs)
    return {
        "val_macro_f1": [float(v) for v in trainer.recorder.series("val_macro_f1")[1]],
        "best_epoch": None if best is None else int(best) + 1,
        "test_macro_f1": m["macro_f1"],
        "test_accuracy": float(np.mean(probs.argmax(1) == y)),
        "steps": int(trainer.state.step),
    }


def probe(train_x: np.ndarray, train_y, val_x: np.ndarray, val_y, test_x: np.ndarray, test_y,
          Cs: Sequence[float] = PROBE_C) -> dict:
    """Logistic regression on frozen MiniLM embeddings; C picked by validation macro-F1; test once.

    One model walks the C path from the strongest regularisation up, each fit warm-started from the last
    (the same optimum, far fewer lbfgs iterations); the weights at every C are kept, so the chosen one is
    tested without refitting. Ties go to the strongest regularisation.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    clf = LogisticRegression(max_iter=3000, warm_start=True)
    scores, weights = [], []
    for C in sorted(Cs):
        clf.set_params(C=C)
        with warnings.catch_warnings():  # one example per class: sklearn wonders whether y is a regression target
            warnings.filterwarnings("ignore", message="The number of unique classes", category=UserWarning)
            clf.fit(train_x, np.asarray(train_y))
        scores.append(float(f1_score(val_y, clf.predict(val_x), average="macro", zero_division=0)))
        weights.append((clf.coef_.copy(), clf.intercept_.copy()))
    best = int(np.argmax(scores))
    clf.coef_, clf.intercept_ = weights[best]
    pred = clf.predict(test_x)
    return {"val_macro_f1": scores, "best_C": float(sorted(Cs)[best]),
            "test_macro_f1": float(f1_score(test_y, pred, average="macro", zero_division=0)),
            "test_accuracy": float(np.mean(pred == np.asarray(test_y)))}


def finetune_minilm(train_texts, train_y, val_texts, val_y, test_texts, test_y, *, n_classes: int, n_originals: int,
                    seed: int, epochs: int = 10, batch_size: int = 16, lr: float = 5e-5, head_lr: float = 1e-2,
                    threads: int | None = None, device: str | None = None) -> dict:
    """Fine-tune all of MiniLM (mean pooling + linear head); best epoch by validation macro-F1; test once.

    The new head starts from zero knowledge with a few dozen steps at small sizes, so it gets its own,
    larger learning rate (``head_lr``); the pretrained encoder gets ``lr``.
    """
    from dsopt.models import MiniLMClassifier, load_minilm, text_loader

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        seed_everything(seed)
        tok = _tokenizer()
        train = text_loader(list(train_texts), np.asarray(train_y), tok, batch_size, max_length=MAX_LENGTH)
        val = text_loader(list(val_texts), np.asarray(val_y), tok, 64, max_length=MAX_LENGTH)
        test = text_loader(list(test_texts), np.asarray(test_y), tok, 64, max_length=MAX_LENGTH)
        steps = steps_per_epoch(n_originals, batch_size)
        train = fixed_step_loader(train, steps, batch_size, seed)
        torch.manual_seed(seed)
        model = MiniLMClassifier(load_minilm(), n_classes)
        metrics = ClassMetricsCallback(val, keep_best="macro_f1")
        opt = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": lr},
                                 {"params": model.head.parameters(), "lr": head_lr}], weight_decay=0.01)
        trainer = Trainer(model, opt, torch.nn.functional.cross_entropy, train, None, max_epochs=epochs,
                          callbacks=[metrics], device=device, progress=False)
        trainer.fit()
        return finish(trainer, metrics, test)
    finally:
        torch.set_num_threads(previous)
