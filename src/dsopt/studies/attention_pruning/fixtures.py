"""Trained classifiers on Financial PhraseBank (all-agree) to prune: MiniLM (cached) and a small one.

MiniLM (:func:`trained_minilm_classifier`), fast on CPU and cached.

Two stages: (1) a linear head on frozen, mean-pooled all-MiniLM-L6-v2 features (one forward pass
over the training sentences, then a few hundred full-batch AdamW steps: seconds); (2) ``epochs`` of
fine-tuning the whole model from there with a small learning rate, on length-bucketed batches (less
padding: about twice as fast as shuffled batches). The weights are written atomically to
``cache_dir`` under a key of every setting, so a rerun loads them in a second.

Splits are dsopt's fixed stratified 70/15/15 split; ``tiny`` keeps 240/96/96 sentences (tests).
Validation batches are for choices (head importance, the panel); test batches for the reported
accuracies. Evaluation batches are sorted by length, so each carries little padding.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler

from dsopt.core.device import pick_device
from dsopt.core.seeding import seed_everything
from dsopt.core.trainer import Trainer, evaluate
from dsopt.data.tasks import stratified_subset
from dsopt.studies.jobs import cache_key
from dsopt.util.atomic import atomic_open
from dsopt.util.validation import check_choice, check_number

MAX_LENGTH = {"tiny": 32, "workshop": 64, "full": 128}
TINY_SIZES = {"train": 240, "val": 96, "test": 96}
_CACHE_VERSION = 1


@dataclass
class TrainedClassifier:
    """A trained model with its cached evaluation batches and what it took to get it."""

    model: torch.nn.Module
    val_batches: list
    test_batches: list
    class_names: list[str]
    info: dict = field(default_factory=dict)


def sorted_batches(texts, y, tokenizer, batch_size: int = 64, max_length: int = 64) -> list:
    """``(inputs, targets)`` batches with the texts sorted by token count (little padding), as a list."""
    from dsopt.models import encode_texts, text_loader

    lengths = encode_texts(texts, tokenizer, max_length)["attention_mask"].sum(1)
    order = torch.argsort(lengths, stable=True).tolist()
    y = np.asarray(y)
    return list(text_loader([texts[i] for i in order], y[order], tokenizer, batch_size, max_length=max_length))


class BucketBatchSampler(Sampler):
    """Seeded shuffle, then sort by length inside chunks of ``bucket`` batches; batch order shuffled.

    Batches hold texts of similar length, so trimming each batch to its longest text leaves little
    padding, while the order still changes every epoch (reproducibly from ``seed``).
    """

    def __init__(self, lengths, batch_size: int, bucket: int = 8, seed: int = 0):
        self.lengths = [int(v) for v in lengths]
        self.batch_size = check_number("batch_size", batch_size, low=1, integer=True)
        self.bucket = check_number("bucket", bucket, low=1, integer=True)
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        n, chunk = len(self.lengths), self.batch_size * self.bucket
        perm = torch.randperm(n, generator=self.generator).tolist()
        batches = []
        for i in range(0, n, chunk):
            part = sorted(perm[i:i + chunk], key=lambda j: self.lengths[j])
            batches += [part[k:k + self.batch_size] for k in range(0, len(part), self.batch_size)]
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]

    def __len__(self) -> int:
        n, chunk = len(self.lengths), self.batch_size * self.bucket
        return sum(math.ceil(min(chunk, n - i) / self.batch_size) for i in range(0, n, chunk))


def bucketed_loader(texts, y, tokenizer, batch_size: int = 32, seed: int = 0, max_length: int = 64,
                    bucket: int = 8) -> DataLoader:
    """Training loader over length buckets (see :class:`BucketBatchSampler`)."""
    from dsopt.models import text_loader

    base = text_loader(texts, y, tokenizer, batch_size, max_length=max_length)
    lengths = base.dataset.tensors[1].sum(1)
    return DataLoader(base.dataset, batch_sampler=BucketBatchSampler(lengths, batch_size, bucket, seed),
                      collate_fn=base.collate_fn)


def fpb_split(split: str = "val", scale: str = "workshop") -> tuple[list[str], np.ndarray]:
    """(texts, labels) of one Financial PhraseBank (all-agree) split, as the classifiers here use it."""
    from dsopt.data import load_splits

    check_choice("split", split, tuple(TINY_SIZES))
    check_choice("scale", scale, tuple(MAX_LENGTH))
    ds = getattr(load_splits("financial_phrasebank"), split)
    idx = stratified_subset(np.asarray(ds.y), TINY_SIZES[split]) if scale == "tiny" else np.arange(len(ds.y))
    return [ds.texts[i] for i in idx], np.asarray(ds.y)[idx]


def _cache_file(cache_dir, settings: dict) -> Path | None:
    if not cache_dir:
        return None
    return Path(cache_dir) / f"minilm_fpb_{cache_key('minilm_fpb', settings)}.pt"


@torch.no_grad()
def _features(encoder, batches, device) -> tuple[torch.Tensor, torch.Tensor]:
    from dsopt.core.device import move_to
    from dsopt.core.modes import eval_mode
    from dsopt.models import pool

    xs, ys = [], []
    with eval_mode(encoder):
        for inputs, y in batches:
            inputs = move_to(inputs, device)
            xs.append(pool(encoder(**inputs), inputs["attention_mask"], "mean").cpu())
            ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def _fit_head(head: torch.nn.Linear, X: torch.Tensor, y: torch.Tensor, steps: int = 300) -> None:
    """Full-batch AdamW on frozen features (deterministic; the head is already seeded)."""
    opt = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=1e-4)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(head(X), y).backward()
            opt.step()


def trained_minilm_classifier(*, scale: str = "workshop", seed: int = 0, epochs: int = 1, lr: float = 3e-5,
                              batch_size: int = 32, cache_dir: str | Path | None = None, device: str | None = "cpu",
                              progress: bool = True) -> TrainedClassifier:
    """A :class:`~dsopt.models.MiniLMClassifier` trained on Financial PhraseBank (all-agree).

    ``epochs=0`` keeps the linear probe (stage 1 only). ``info`` holds validation and test accuracy
    after each stage, the training time and whether the weights came from the cache.
    """
    from dsopt.data import load_splits
    from dsopt.models import MiniLMClassifier, load_minilm, load_minilm_tokenizer

    check_choice("scale", scale, tuple(MAX_LENGTH))
    seed = check_number("seed", seed, low=0, integer=True)
    epochs = check_number("epochs", epochs, low=0, integer=True)
    lr = float(check_number("lr", lr, low=0.0, high=1.0, low_inclusive=False))
    dev = pick_device(device)
    class_names = list(load_splits("financial_phrasebank").train.class_names)
    parts = {name: fpb_split(name, scale) for name in ("train", "val", "test")}
    max_length = MAX_LENGTH[scale]
    tok = load_minilm_tokenizer()
    val_batches = sorted_batches(*parts["val"], tok, 64, max_length)
    test_batches = sorted_batches(*parts["test"], tok, 64, max_length)
    settings = {"v": _CACHE_VERSION, "scale": scale, "seed": seed, "epochs": epochs, "lr": lr,
                "batch_size": batch_size, "max_length": max_length, "n_train": len(parts["train"][1])}
    path = _cache_file(cache_dir, settings)
    seed_everything(seed)
    model = MiniLMClassifier(load_minilm(dev), n_classes=len(class_names)).to(dev)
    if path is not None and path.is_file():
        saved = torch.load(path, map_location=dev, weights_only=True)
        missing, unexpected = model.load_state_dict(saved["state"], strict=False)
        if unexpected or (missing and epochs) or any(not k.startswith("encoder.") for k in missing):
            raise RuntimeError(f"cached classifier {path} does not match this model; delete it")
        info = {**saved["info"], "cached": True, "cache_file": str(path)}
        return TrainedClassifier(model.eval(), val_batches, test_batches, class_names, info)
    loss = F.cross_entropy
    t0 = time.perf_counter()
    X, y = _features(model.encoder, sorted_batches(*parts["train"], tok, 64, max_length), dev)
    _fit_head(model.head, X.to(dev), y.to(dev))
    info = {"probe_val_accuracy": evaluate(model, val_batches, loss, dev)["accuracy"]}
    if epochs:
        loader = bucketed_loader(*parts["train"], tok, batch_size, seed, max_length)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        Trainer(model, opt, loss, loader, None, max_epochs=epochs, device=dev, progress=progress).fit()
    model.eval()
    info.update(train_seconds=time.perf_counter() - t0, epochs=epochs, lr=lr, max_length=max_length,
                n_train=len(parts["train"][1]), n_val=len(parts["val"][1]), n_test=len(parts["test"][1]),
                val_accuracy=evaluate(model, val_batches, loss, dev)["accuracy"],
                test_accuracy=evaluate(model, test_batches, loss, dev)["accuracy"])
    if path is not None:
        state = model.state_dict() if epochs else {k: v for k, v in model.state_dict().items() if k.startswith("head.")}
        with atomic_open(path, "wb") as fh:
            torch.save({"state": {k: v.cpu() for k, v in state.items()}, "info": info}, fh)
    info.update(cached=False, cache_file=str(path) if path else None)
    return TrainedClassifier(model, val_batches, test_batches, class_names, info)


def trained_small_classifier(*, scale: str = "workshop", seed: int = 0, epochs: int = 6, lr: float = 1e-3,
                             pooling: str = "cls", progress: bool = False) -> TrainedClassifier:
    """The small :class:`~dsopt.models.TransformerClassifier` of ``make_task("financial_phrasebank")``,
    trained for ``epochs`` with AdamW (seconds at workshop scale), for the live panel.

    ``pooling="cls"`` by default: with mean pooling a bag of token embeddings already classifies
    sentiment, so heads barely matter (measured at workshop scale: 82.4 % validation accuracy with
    every head, 83.2 % with 75 % of them masked); reading the first token makes every bit of context
    travel through attention, which is what a pruning panel should show.
    """
    from dsopt.data.tasks import make_task
    from dsopt.models.encoder import POOLINGS

    check_choice("pooling", pooling, POOLINGS)
    epochs = check_number("epochs", epochs, low=1, integer=True)
    seed_everything(seed)
    task = make_task("financial_phrasebank", scale=scale, seed=seed)
    model = task.make_model()
    model.pooling = pooling
    t0 = time.perf_counter()
    opt = torch.optim.AdamW(model.parameters(), lr=float(check_number("lr", lr, low=0.0, low_inclusive=False)))
    trainer = Trainer(model, opt, F.cross_entropy, task.train_loader, task.val_loader, max_epochs=epochs,
                      progress=progress)
    trainer.fit()
    model.eval()
    val, test = list(task.val_loader), list(task.test_loader)
    dev = trainer.device
    info = {"train_seconds": time.perf_counter() - t0, "epochs": epochs, "pooling": pooling,
            "val_accuracy": evaluate(model, val, F.cross_entropy, dev)["accuracy"],
            "test_accuracy": evaluate(model, test, F.cross_entropy, dev)["accuracy"]}
    return TrainedClassifier(model, val, test, task.class_names, info)
