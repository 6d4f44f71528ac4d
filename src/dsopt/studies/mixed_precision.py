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
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from dsopt.precision import MODES, MixedPrecision, collect_gradients, log2_histogram, memory_breakdown, representation
from dsopt.precision.memory import PARTS
from dsopt.stats import mean_sd
from dsopt.studies.jobs import cache_key, run_jobs
from dsopt.util.threads import torch_threads
from dsopt.studies.study import DATA, TRAINING, Study
from dsopt.util.validation import check_choice, check_number

STUDY_VERSION = 1
SCALES = ("tiny", "workshop", "full")

#: Model, data and budget per scale. ``full`` is BERT-base's encoder shape (meant for a GPU).
CONFIG = {
    "tiny": dict(model=dict(d_model=32, n_layers=1, n_heads=2, d_ff=64), max_len=32, n_pretrain=256, n_val=128,
                 pretrain_epochs=1, finetune_epochs=1, n_finetune=240, batch_size=32, lr=1e-3, finetune_lr=1e-3),
    "workshop": dict(model=dict(d_model=64, n_layers=2, n_heads=4, d_ff=256), max_len=48, n_pretrain=1536, n_val=512,
                     pretrain_epochs=1, finetune_epochs=1, n_finetune=None, batch_size=32, lr=1e-3, finetune_lr=1e-3),
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


# ----------------------------------------------------------------------------- the live run
#: The live run's GradScaler grows the scale every 20 good steps (torch's default is 2000), so the scale's
#: growth, overflows and back-offs show within minutes.
LIVE_GROWTH_INTERVAL = 20


def live_trainer(scale: str = "workshop", *, precision: str = "fp16", epochs: int, seed: int = 0,
                 control_schedule=(), probe_every: int = 5, device: str | None = None):
    """The live run of the chapter's panel: MLM pre-training in ``precision`` with :class:`MixedPrecision`
    (scaler knobs live) and a :class:`GradientProbe`, replaying ``control_schedule`` (an exported session).

    The panel calls it again (same scale and seed) for Restart; ``dsopt run 05 -p control_schedule ...``
    builds the same run headless.
    """
    from dsopt.core.controls import replay_callback
    from dsopt.core.seeding import seed_everything
    from dsopt.core.trainer import Trainer
    from dsopt.precision import GradientProbe

    cfg = config(scale)
    data = study_data(scale)
    seed_everything(seed)
    train, val = loaders(data, "pretrain", seed, cfg["batch_size"])
    model = make_mlm(data, scale, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.01)
    mp = MixedPrecision(precision, growth_interval=LIVE_GROWTH_INTERVAL)
    probe = GradientProbe(every=probe_every, scale_of=mp)
    return Trainer(model, opt, F.cross_entropy, train, val, max_epochs=epochs, device=device, progress=False,
                   callbacks=[mp, probe, replay_callback(list(control_schedule or []))])


# ----------------------------------------------------------------------------- one run
def run_one(precision: str, *, seed: int, scale: str = "workshop", threads: int | None = 1,
            device: str | None = None, numerics: bool = False) -> dict:
    """Pre-train (MLM) then fine-tune in ``precision``; return losses, accuracies and scaler counts.

    Validation and test are evaluated in fp32 on the master weights, so differences come from training
    in reduced precision. ``numerics``: also return the fp32 gradient magnitudes' log2 histograms and
    fp16 underflow fractions of the pre-trained model. ``threads``: torch CPU threads for the run
    (restored afterwards).
    """
    with torch_threads(threads):
        return _run_one(precision, seed=seed, scale=scale, device=device, numerics=numerics)


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
        "test_accuracy": test["accuracy"], "test_loss": test["loss"], "n_test": len(ftest.dataset),
        "finetune_overflows": int(mp2.skipped),
        "finetune_step_ms": statistics.median(mp2.timings.series("step_time_ms")[1]),
        "wall_s": time.perf_counter() - t0,
    })
    return out


def gradient_numerics(model, batch, loss_fn, *, device=None, scales=(1.0, 2.0**8, 2.0**16)) -> dict:
    """fp32 gradient magnitudes of ``model`` on ``batch``: log2 histograms, fp16/bf16 representation at ``scales``."""
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
        key=lambda job: cache_key("mixed_precision", STUDY_VERSION, job, scale, device or "auto",
                                  job == ("fp32", first)),
        cache_dir=cache_dir, workers=workers, progress=progress, desc="precision runs",
    )
    runs = [done[j] for j in jobs]
    return {"runs": runs, "table": summarize(runs)}


METRICS = ("mlm_val_loss", "mlm_val_accuracy", "test_accuracy", "finetune_val_accuracy")


def summarize(runs: list[dict]) -> list[dict]:
    """One row per mode: mean and sd over seeds of the quality metrics (and the per-seed values, from
    which the verdict is computed), and the skipped steps of the loss scaler."""
    rows = []
    for mode in dict.fromkeys(r["precision"] for r in runs):
        sel = [r for r in runs if r["precision"] == mode]
        row = {"precision": mode, "n_seeds": len(sel), "device": sel[0]["device"], "per_seed": {}}
        for m in METRICS:
            row[m], row[m + "_sd"] = mean_sd([r[m] for r in sel])
            row["per_seed"][m] = {str(r["seed"]): r[m] for r in sel}
        row["skipped_steps"] = sum(r["pretrain_overflows"] + r["finetune_overflows"] for r in sel)
        row["steps"] = sel[0]["pretrain_steps"]
        row["n_test"] = sel[0].get("n_test")  # the test accuracy's resolution is 1 / n_test
        rows.append(row)
    return rows


def chapter_comparison(modes: Sequence[str] = MODES, seeds: Sequence[int] = (0, 1, 2), *, scale: str = "workshop",
                       speed_repeats: int = 5, speed_steps: int = 8, cache_dir: str | Path | None = None,
                       workers: int | None = None, progress: bool = True) -> dict:
    """The chapter's whole measurement after the live run: the runs per mode and seed, then the interleaved
    speed measurement. Returns ``{"runs", "table", "numerics", "speed"}`` (``numerics``: the gradient
    magnitudes of the first seed's fp32 pre-trained model)."""
    result = compare_precisions(modes, seeds, scale=scale, cache_dir=cache_dir, workers=workers, progress=progress)
    result["numerics"] = next((r["numerics"] for r in result["runs"] if "numerics" in r), None)
    result["speed"] = measure_speed(modes, scale=scale, repeats=speed_repeats, steps=speed_steps, cache_dir=cache_dir,
                                    progress=progress)
    return result


# ----------------------------------------------------------------------------- speed and memory
def _timing_batches(data: StudyData, n: int, batch_size: int) -> list:
    train, _ = loaders(data, "pretrain", DATA_SEED, batch_size)
    it = iter(train)
    return [next(it) for _ in range(min(n, len(train)))]


def speed_run(modes: Sequence[str], *, scale: str, repeats: int, steps: int, threads: int | None = 1,
              device: str | None = None) -> dict:
    """Median training-step time per mode, the modes interleaved in one process (one stored run).

    Each repeat runs ``steps`` pre-training steps of every mode in a rotating order (the same batches, one
    model per mode, each warmed up first), so load drifts on a shared machine hit all modes alike; the
    ratio ``time(fp32) / time(mode)`` is paired within each repeat. Returns per mode the per-repeat
    medians (``step_ms``) and the 1-minute load average before and after (``load``).
    """
    import os

    from dsopt.core.trainer import Trainer

    with torch_threads(threads):
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        data = study_data(scale)
        batches = _timing_batches(data, steps, config(scale)["batch_size"])
        arms = {}
        for m in modes:
            model = make_mlm(data, scale, 0)
            arms[m] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))

        def timed(m):
            model, opt = arms[m]
            mp = MixedPrecision(m)
            t = Trainer(model, opt, F.cross_entropy, batches, max_epochs=1, callbacks=[mp], device=device,
                        progress=False)
            t.fit()
            return statistics.median(mp.timings.series("step_time_ms")[1]), str(t.device)

        for m in modes:
            timed(m)  # warm-up: allocator, kernels, autocast caches
        per = {m: [] for m in modes}
        for r in range(repeats):
            for m in modes[r % len(modes):] + modes[:r % len(modes)]:
                ms, dev = timed(m)
                per[m].append(ms)
        return {"scale": scale, "steps": len(batches), "repeats": repeats, "threads": torch.get_num_threads(),
                "device": dev, "step_ms": per, "load_before": load_before,
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "load_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def measure_speed(modes: Sequence[str] = MODES, *, scale: str = "workshop", repeats: int = 5, steps: int = 8,
                  threads: int | None = 1, device: str | None = None, cache_dir: str | Path | None = None,
                  progress: bool = False) -> dict:
    """:func:`speed_run` through the run cache / stored runs (``verify=False``: it times this machine)."""
    modes = [check_choice("modes", m, MODES) for m in modes]
    repeats = check_number("repeats", repeats, low=1, integer=True)
    steps = check_number("steps", steps, low=1, integer=True)
    job = ("speed", tuple(modes), scale, repeats, steps, threads, device)
    done = run_jobs([job], speed_run, lambda j: ((list(modes),), dict(scale=scale, repeats=repeats, steps=steps,
                                                                     threads=threads, device=device)),
                    key=lambda j: cache_key("mixed_precision_speed", STUDY_VERSION, j), cache_dir=cache_dir,
                    workers=1, progress=progress, desc="speed", verify=False)
    return done[job]


def memory_run(modes: Sequence[str], *, scale: str, n_batches: int, device: str | None = None) -> dict:
    """:func:`dsopt.precision.memory_breakdown` of the MLM model per mode on the same ``n_batches`` batches.

    Returns ``{"batches": [{mode: breakdown}, ...], "mean": {mode: {part: bytes}}, "device"}``.
    """
    data = study_data(scale)
    batches = _timing_batches(data, n_batches, config(scale)["batch_size"])
    model = make_mlm(data, scale, 0)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    per = [{m: memory_breakdown(model, b, F.cross_entropy, m, device=dev) for m in modes} for b in batches]
    mean = {m: {k: float(np.mean([p[m][k] for p in per])) for k in (*PARTS, "total")} for m in modes}
    return {"batches": per, "mean": mean, "device": dev}


def measure_memory(modes: Sequence[str] = MODES, *, scale: str = "workshop", n_batches: int = 4,
                   device: str | None = None, cache_dir: str | Path | None = None, progress: bool = False) -> dict:
    """:func:`memory_run` through the run cache / stored runs (bytes are deterministic: spot-checkable)."""
    modes = [check_choice("modes", m, MODES) for m in modes]
    n_batches = check_number("n_batches", n_batches, low=1, integer=True)
    job = ("memory", tuple(modes), scale, n_batches, device)
    done = run_jobs([job], memory_run,
                    lambda j: ((list(modes),), dict(scale=scale, n_batches=n_batches, device=device)),
                    key=lambda j: cache_key("mixed_precision_memory", STUDY_VERSION, j), cache_dir=cache_dir,
                    workers=1, progress=progress, desc="memory")
    return done[job]


def memory_summary(memory: dict) -> dict:
    """What the verdict needs of :func:`measure_memory`'s result (totals and device peaks per batch, the means),
    small enough for a metrics JSON: ``compute(table, speed, memory_summary(memory))`` gives the same verdict."""
    return {"device": memory.get("device"), "mean": memory["mean"],
            "batches": [{m: {"total": b[m]["total"], "device_peak": b[m]["device_peak"]} for m in b}
                        for b in memory["batches"]]}


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


# ----------------------------------------------------------------------------- the chapter as a Study
class MixedPrecisionStudy(Study):
    """Chapter 05: fp32 / bf16 / fp16 (loss scaling): quality over seeds, interleaved step times, memory."""

    id = "05"
    runs = (run_one, speed_run, memory_run)
    depends_on = (*TRAINING, *DATA, "dsopt.models", "dsopt.metrics", "dsopt.precision", "dsopt.studies.mixed_precision")

    def device(self) -> str:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def grid(self, params: Mapping[str, Any]) -> list:
        p = self.parameters(params)
        return [(m, s) for m in p["modes"].split(",") for s in self.seeds(p)]

    def memory(self, params: Mapping[str, Any], *, cache_dir=None) -> dict:
        """The memory accounting per mode (deterministic bytes; cached and stored like every run)."""
        p = self.parameters(params)
        return measure_memory(p["modes"].split(","), scale=p["scale"], n_batches=p["memory_batches"],
                              device=self.device(), cache_dir=cache_dir)

    def measure(self, params: Mapping[str, Any], *, cache_dir=None, progress: bool = True, workers=None,
                memory: dict | None = None) -> dict:
        p = self.parameters(params)
        out = chapter_comparison(p["modes"].split(","), self.seeds(p), scale=p["scale"],
                                 speed_repeats=p["speed_repeats"], speed_steps=p["speed_steps"], cache_dir=cache_dir,
                                 workers=workers, progress=progress)
        memory = memory if memory is not None else self.memory(p, cache_dir=cache_dir)
        return {**out, "memory": memory_summary(memory), "params": p}

    def summarize(self, results: dict) -> dict:
        return {"table": summarize(results["runs"]), "speed": results["speed"], "memory": results["memory"],
                "params": results["params"]}

    format_table = staticmethod(format_table)

    def compute(self, summary: dict, *, alpha: float = 0.05) -> dict:
        from dsopt.studies.mixed_precision_verdict import compute

        return compute(summary["table"], summary["speed"], summary["memory"], alpha=alpha)

    def render(self, verdict: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
        from dsopt.studies.mixed_precision_verdict import render

        return render(verdict, provenance=provenance, fmt=fmt)

    def claim_verdicts(self, verdict: dict) -> dict:
        from dsopt.studies.mixed_precision_verdict import claim_verdicts

        return claim_verdicts(verdict)

    def live(self, params: Mapping[str, Any]):
        """Fresh seeded MLM runs in the panel's precision (fp16 shows the loss scaler)."""
        p = self.parameters(params)
        return functools.partial(live_trainer, p["scale"], precision=p["live_precision"], seed=p["seed"],
                                 device=self.device())


STUDY = MixedPrecisionStudy()
