"""Chapter 05's controlled measurement: fp32 vs bf16 vs fp16 on BERT-style pre-training + fine-tuning.

Closest to the article's "BERT pre-training" that fits 2 CPU cores: masked-language-model pre-training
of the small transformer encoder on SST-2 sentences (MiniLM's WordPiece tokenizer, a compact vocabulary),
then fine-tuning it on Financial PhraseBank. Every precision mode gets the same data, masks, model
initialisation, optimizer (AdamW), number of steps and seeds; only the precision differs. Per run:
final MLM validation loss and masked-token accuracy, fine-tuned validation/test accuracy, skipped steps.
Speed is measured apart, in ONE process with the modes interleaved (:func:`measure_speed`), because runs
timed in parallel workers on a shared machine measure the neighbours; memory is accounted per mode on
the same batches (:func:`measure_memory`). ``scale="full"`` is the same comparison with a BERT-base-sized
encoder (12 x 768, 12 heads) meant for a GPU, where fp16 runs with a GradScaler.
"""
from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from dsopt.precision import MODES, MixedPrecision, collect_gradients, log2_histogram, memory_breakdown, representation
from dsopt.precision.memory import PARTS
from dsopt.studies.jobs import cache_key, run_jobs
from dsopt.util.validation import check_choice, check_number

STUDY_VERSION = 1
SCALES = ("tiny", "workshop", "full")

#: Model, data and budget per scale. ``full`` is BERT-base's encoder shape (meant for a GPU).
CONFIG = {
    "tiny": dict(model=dict(d_model=32, n_layers=1, n_heads=2, d_ff=64), max_len=32, n_pretrain=256, n_val=128,
                 pretrain_epochs=1, finetune_epochs=1, n_finetune=240, batch_size=32, lr=1e-3, finetune_lr=1e-3),
    "workshop": dict(model=dict(d_model=64, n_layers=2, n_heads=4, d_ff=256), max_len=48, n_pretrain=1536, n_val=512,
                     pretrain_epochs=1, finetune_epochs=2, n_finetune=None, batch_size=32, lr=1e-3, finetune_lr=1e-3),
    "full": dict(model=dict(d_model=768, n_layers=12, n_heads=12, d_ff=3072), max_len=128, n_pretrain=20000,
                 n_val=2000, pretrain_epochs=1, finetune_epochs=3, n_finetune=None, batch_size=32, lr=1e-4,
                 finetune_lr=3e-5),
}
MIN_TOKENS = 8  # SST-2's train file holds phrases too; pre-train on sentence-like items (>= 8 WordPieces)
DATA_SEED = 0  # the split, the sentence subset and the masks never depend on the run seed


def config(scale: str) -> dict:
    return CONFIG[check_choice("scale", scale, SCALES)]


# ----------------------------------------------------------------------------- data
@dataclass
class StudyData:
    """Tokenized, vocabulary-compacted tensors for both stages (CPU tensors; built once per process)."""

    vocab_size: int
    mask_id: int
    special_ids: tuple[int, ...]
    n_tokens_max: int
    pretrain: dict  # "train"/"val" -> (masked ids, attention mask, labels)
    finetune: dict  # "train"/"val"/"test" -> (ids, attention mask, y)
    class_names: list


@functools.lru_cache(maxsize=4)
def study_data(scale: str) -> StudyData:
    """SST-2 sentences (masked once, BERT-style) and Financial PhraseBank, one compact WordPiece vocabulary."""
    from dsopt.data import load_splits
    from dsopt.data.tasks import compact_vocab, stratified_subset
    from dsopt.models import encode_texts, load_minilm_tokenizer
    from dsopt.models.masked_lm import mask_tokens

    cfg = config(scale)
    tok = load_minilm_tokenizer()
    sst, fpb = load_splits("sst2", seed=DATA_SEED), load_splits("financial_phrasebank", seed=DATA_SEED)

    def sentences(texts, n):
        out = []
        for i in range(0, len(texts), 4096):  # tokenize in chunks until n sentence-like items are found
            chunk = list(texts[i:i + 4096])
            lens = [len(x) for x in tok(chunk)["input_ids"]]
            out += [t for t, n_tok in zip(chunk, lens) if n_tok >= MIN_TOKENS]
            if len(out) >= n:
                break
        return out[:n]

    pre = {"train": encode_texts(sentences(sst.train.texts, cfg["n_pretrain"]), tok, cfg["max_len"]),
           "val": encode_texts(sentences(sst.val.texts, cfg["n_val"]), tok, cfg["max_len"])}
    fine_rows = {"train": fpb.train, "val": fpb.val, "test": fpb.test}
    if cfg["n_finetune"] is not None:
        keep = stratified_subset(fpb.train.y, cfg["n_finetune"])
        fine_rows["train"] = fpb.train.subset(keep)
    fine = {k: (encode_texts(d.texts, tok, cfg["max_len"]), torch.as_tensor(d.y).long()) for k, d in fine_rows.items()}
    seen = torch.cat([pre["train"]["input_ids"].flatten(), fine["train"][0]["input_ids"].flatten(),
                      torch.tensor([tok.mask_token_id, tok.cls_token_id, tok.sep_token_id])])
    table = compact_vocab(seen, tok)
    vocab_size = int(table.max()) + 1
    mask_id, specials = int(table[tok.mask_token_id]), (int(table[tok.cls_token_id]), int(table[tok.sep_token_id]))
    gen = torch.Generator().manual_seed(DATA_SEED)
    pretrain = {}
    for k, enc in pre.items():
        ids = table[enc["input_ids"]]
        masked, labels = mask_tokens(ids, enc["attention_mask"], mask_id=mask_id, vocab_size=vocab_size,
                                     special_ids=specials, generator=gen, first_random_id=2)
        pretrain[k] = (masked, enc["attention_mask"], labels)
    finetune = {k: (table[enc["input_ids"]], enc["attention_mask"], y) for k, (enc, y) in fine.items()}
    return StudyData(vocab_size, mask_id, specials, cfg["max_len"], pretrain, finetune, list(fpb.train.class_names))


def _collate_mlm(rows):
    ids, mask, labels = (torch.stack(c) for c in zip(*rows))
    t = max(int(mask.sum(1).max()), 1)
    ids, mask, labels = ids[:, :t], mask[:, :t], labels[:, :t]
    masked = labels != -100
    return {"input_ids": ids, "attention_mask": mask, "masked": masked}, labels[masked]


def _collate_cls(rows):
    ids, mask, y = (torch.stack(c) for c in zip(*rows))
    t = max(int(mask.sum(1).max()), 1)
    return {"input_ids": ids[:, :t], "attention_mask": mask[:, :t]}, y


def loaders(data: StudyData, stage: str, seed: int, batch_size: int) -> tuple[DataLoader, ...]:
    """``stage="pretrain"``: (train, val) MLM loaders; ``"finetune"``: (train, val, test) classification loaders.
    Only the training loader shuffles, with a generator seeded by ``seed``."""
    parts = data.pretrain if stage == "pretrain" else data.finetune
    collate = _collate_mlm if stage == "pretrain" else _collate_cls
    out = []
    for name, tensors in parts.items():
        train = name == "train"
        gen = torch.Generator().manual_seed(seed) if train else None
        out.append(DataLoader(TensorDataset(*tensors), batch_size=batch_size if train else 256, shuffle=train,
                              generator=gen, collate_fn=collate))
    return tuple(out)


def make_mlm(data: StudyData, scale: str, seed: int):
    from dsopt.models.masked_lm import MaskedLM

    torch.manual_seed(seed)
    return MaskedLM(vocab_size=data.vocab_size, n_tokens_max=data.n_tokens_max, **config(scale)["model"])


def make_classifier(data: StudyData, scale: str, seed: int):
    from dsopt.models import TransformerClassifier

    torch.manual_seed(seed + 10_000)  # the head's init: independent of the encoder's
    return TransformerClassifier(vocab_size=data.vocab_size, n_tokens_max=data.n_tokens_max,
                                 n_classes=len(data.class_names), **config(scale)["model"])


# ----------------------------------------------------------------------------- one run
def run_one(precision: str, *, seed: int, scale: str = "workshop", threads: int | None = 1,
            device: str | None = None, numerics: bool = False) -> dict:
    """Pre-train (MLM) then fine-tune in ``precision``; return losses, accuracies and scaler counts.

    Validation and test are evaluated in fp32 on the master weights, so differences come from training
    in reduced precision. ``numerics``: also return the fp32 gradient magnitudes' log2 histograms and
    fp16 underflow fractions of the pre-trained model. ``threads``: torch CPU threads for the run
    (restored afterwards).
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run_one(precision, seed=seed, scale=scale, device=device, numerics=numerics)
    finally:
        torch.set_num_threads(previous)


def _train(model, loader, val_loader, loss_fn, *, precision, epochs, lr, device):
    from dsopt.core.trainer import Trainer

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    mp = MixedPrecision(precision, growth_interval=100)
    trainer = Trainer(model, opt, loss_fn, loader, val_loader, max_epochs=epochs, callbacks=[mp], device=device,
                      progress=False)
    rec = trainer.fit()
    return trainer, rec, mp


def _run_one(precision, *, seed, scale, device, numerics) -> dict:
    from dsopt.core.seeding import seed_everything
    from dsopt.core.trainer import evaluate
    from dsopt.models.masked_lm import transfer_encoder

    check_choice("precision", precision, MODES)
    cfg = config(scale)
    t0 = time.perf_counter()
    seed_everything(seed)
    data = study_data(scale)
    train, val = loaders(data, "pretrain", seed, cfg["batch_size"])
    mlm = make_mlm(data, scale, seed)
    tr, rec, mp = _train(mlm, train, val, F.cross_entropy, precision=precision, epochs=cfg["pretrain_epochs"],
                         lr=cfg["lr"], device=device)
    out = {
        "precision": precision, "seed": seed, "scale": scale, "device": str(tr.device),
        "mlm_train_loss": rec.series("train_loss")[1],
        "mlm_val_loss": rec.last("val_loss"), "mlm_val_accuracy": rec.last("val_accuracy"),
        "pretrain_overflows": int(mp.skipped), "pretrain_final_scale": rec.last("loss_scale"),
        "pretrain_step_ms": statistics.median(mp.timings.series("step_time_ms")[1]),
        "pretrain_steps": tr.state.step,
    }
    if numerics:
        out["numerics"] = gradient_numerics(tr.model, next(iter(val)), F.cross_entropy, device=tr.device)
    seed_everything(seed)
    ftrain, fval, ftest = loaders(data, "finetune", seed, cfg["batch_size"])
    clf = transfer_encoder(tr.model.cpu(), make_classifier(data, scale, seed))
    tr2, rec2, mp2 = _train(clf, ftrain, fval, F.cross_entropy, precision=precision, epochs=cfg["finetune_epochs"],
                            lr=cfg["finetune_lr"], device=device)
    test = evaluate(tr2.model, ftest, F.cross_entropy, tr2.device)
    out.update({
        "finetune_val_accuracy": rec2.last("val_accuracy"), "finetune_val_loss": rec2.last("val_loss"),
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
        "finetune_overflows": int(mp2.skipped), "finetune_step_ms": statistics.median(mp2.timings.series("step_time_ms")[1]),
        "wall_s": time.perf_counter() - t0,
    })
    return out


def gradient_numerics(model, batch, loss_fn, *, device=None, scales=(1.0, 2.0**8, 2.0**16)) -> dict:
    """fp32 gradient magnitudes of ``model`` on ``batch``: log2 histograms and fp16/bf16 representation at ``scales``."""
    g = collect_gradients(model, batch, loss_fn, device=device)
    out = {"loss": g["loss"]}
    for kind in ("activations", "weights"):
        h = log2_histogram(g[kind])
        out[kind] = {"edges": h["edges"].tolist(), "counts": h["counts"].tolist(), "zeros": h["zeros"],
                     "fp16": [representation(g[kind], "fp16", s) for s in scales],
                     "bf16": representation(g[kind], "bf16")}
    return out


# ----------------------------------------------------------------------------- the comparison
def compare_precisions(modes: Sequence[str] = MODES, seeds: Sequence[int] = (0, 1, 2), *, scale: str = "workshop",
                       cache_dir: str | Path | None = None, workers: int | None = None, progress: bool = True,
                       device: str | None = None) -> dict:
    """Run every (mode, seed) through the cached, resumable runner; return ``{"runs", "table"}``.

    Runs are independent (``workers`` spawned processes, one torch thread each); results do not depend
    on ``workers``. The first seed's fp32 run also records the gradient numerics.
    """
    modes = [check_choice("modes", m, MODES) for m in modes]
    seeds = [check_number("seeds", s, low=0, integer=True) for s in seeds]
    jobs = [(m, s) for m in modes for s in seeds]
    first = seeds[0]
    done = run_jobs(
        jobs, run_one,
        lambda job: ((job[0],), dict(seed=job[1], scale=scale, device=device,
                                     numerics=job == ("fp32", first))),
        key=lambda job: cache_key("mixed_precision", STUDY_VERSION, job, scale, device or "auto", job == ("fp32", first)),
        cache_dir=cache_dir, workers=workers, progress=progress, desc="precision runs",
    )
    runs = [done[j] for j in jobs]
    return {"runs": runs, "table": summarize(runs)}


def _mean_sd(values) -> tuple[float, float]:
    a = np.asarray([v for v in values if v is not None], dtype=float)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else math.nan


METRICS = ("mlm_val_loss", "mlm_val_accuracy", "test_accuracy", "finetune_val_accuracy")


def summarize(runs: list[dict]) -> list[dict]:
    """One row per mode: mean and sd over seeds of the quality metrics, and the scaler's skipped steps."""
    rows = []
    for mode in dict.fromkeys(r["precision"] for r in runs):
        sel = [r for r in runs if r["precision"] == mode]
        row = {"precision": mode, "n_seeds": len(sel), "device": sel[0]["device"]}
        for m in METRICS:
            row[m], row[m + "_sd"] = _mean_sd(r[m] for r in sel)
        row["skipped_steps"] = sum(r["pretrain_overflows"] + r["finetune_overflows"] for r in sel)
        row["steps"] = sel[0]["pretrain_steps"]
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- speed and memory
def _timing_batches(data: StudyData, n: int, batch_size: int) -> list:
    train, _ = loaders(data, "pretrain", DATA_SEED, batch_size)
    it = iter(train)
    return [next(it) for _ in range(min(n, len(train)))]


def measure_speed(modes: Sequence[str] = MODES, *, scale: str = "workshop", repeats: int = 5, steps: int = 8,
                  threads: int | None = 1, device: str | None = None, progress: bool = False) -> dict:
    """Median training-step time per mode, the modes interleaved in one process.

    Each repeat runs ``steps`` pre-training steps of every mode in a rotating order (the same batches, one
    model per mode, each warmed up first), so machine load drifts hit all modes alike; the ratio
    ``time(mode) / time(fp32)`` is paired within each repeat. Returns per mode the per-repeat medians
    (ms) and the per-repeat ratios to fp32.
    """
    from dsopt.core.trainer import Trainer

    modes = [check_choice("modes", m, MODES) for m in modes]
    repeats = check_number("repeats", repeats, low=1, integer=True)
    steps = check_number("steps", steps, low=1, integer=True)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        data = study_data(scale)
        batches = _timing_batches(data, steps, config(scale)["batch_size"])
        arms = {}
        for m in modes:
            model = make_mlm(data, scale, 0)
            arms[m] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))

        def timed(m):
            model, opt = arms[m]
            mp = MixedPrecision(m)
            Trainer(model, opt, F.cross_entropy, batches, max_epochs=1, callbacks=[mp], device=device,
                    progress=False).fit()
            return statistics.median(mp.timings.series("step_time_ms")[1])

        for m in modes:
            timed(m)  # warm-up: allocator, kernels, autocast caches
        per = {m: [] for m in modes}
        for r in range(repeats):
            order = modes[r % len(modes):] + modes[:r % len(modes)]
            for m in order:
                per[m].append(timed(m))
        base = per.get("fp32")
        out = {"scale": scale, "steps": len(batches), "repeats": repeats, "threads": torch.get_num_threads(),
               "device": str(torch.device(device) if device else ("cuda" if torch.cuda.is_available() else "cpu")),
               "step_ms": per}
        if base is not None:
            out["ratio_to_fp32"] = {m: [a / b for a, b in zip(per[m], base)] for m in modes}
        return out
    finally:
        torch.set_num_threads(previous)


def measure_memory(modes: Sequence[str] = MODES, *, scale: str = "workshop", n_batches: int = 4,
                   device: str | None = None) -> dict:
    """:func:`dsopt.precision.memory_breakdown` of the MLM model per mode on the same ``n_batches`` batches.

    Returns ``{"batches": [{mode: breakdown}, ...], "mean": {mode: {part: bytes}}}``.
    """
    modes = [check_choice("modes", m, MODES) for m in modes]
    data = study_data(scale)
    batches = _timing_batches(data, n_batches, config(scale)["batch_size"])
    model = make_mlm(data, scale, 0)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    per = [{m: memory_breakdown(model, b, F.cross_entropy, m, device=dev) for m in modes} for b in batches]
    mean = {m: {k: float(np.mean([p[m][k] for p in per])) for k in (*PARTS, "total")} for m in modes}
    return {"batches": per, "mean": mean, "device": dev}


def format_table(rows: list[dict]) -> str:
    """The quality table as Markdown (mean +- sd over seeds)."""
    out = ["| precision | seeds | MLM val loss | masked-token acc. (%) | FPB val acc. (%) | FPB test acc. (%) | "
           "skipped steps |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['precision']} | {r['n_seeds']} | {r['mlm_val_loss']:.3f} +- {r['mlm_val_loss_sd']:.3f} | "
                   f"{100 * r['mlm_val_accuracy']:.1f} +- {100 * r['mlm_val_accuracy_sd']:.1f} | "
                   f"{100 * r['finetune_val_accuracy']:.1f} +- {100 * r['finetune_val_accuracy_sd']:.1f} | "
                   f"{100 * r['test_accuracy']:.1f} +- {100 * r['test_accuracy_sd']:.1f} | {r['skipped_steps']} |")
    return "\n".join(out)
