"""Chapter 07's data: an SST-2 sentiment model meets Financial PhraseBank news.

**Pools** (fixed, seed-independent; every seed only reorders them):

* SST-2 (GLUE train file): movie-review sentences and phrases with binary sentiment. We keep items
  of at least 8 words (sentence-like; the file also holds every short sub-phrase of the treebank)
  and split them, after one fixed shuffle, into *launch training* (the model's training data),
  *launch reference* (held out: fits the embedding drift score and gives the launch accuracy) and
  the *SST-2 stream pool* (what the service sees before the shift).
* Financial PhraseBank (sentences with >= 75 % annotator agreement): financial news labelled
  positive / negative / neutral **for the company's outlook**. The label map: negative -> 0,
  positive -> 1, neutral sentences left out. SST-2 has no neutral class, so a binary model can be
  neither right nor wrong on them; what remains (420 negative, 887 positive) is the *new regime*:
  same label space, different vocabulary, style and class balance.

**Model**: the sentence embedding of all-MiniLM-L6-v2 (frozen; mean pooling, L2-normalised), then a
linear head trained on the launch data. Retraining fine-tunes the head only; the embedding also feeds
the drift score. Embeddings are computed once per text and cached on disk (atomic ``.npy`` files).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dsopt.monitor.loop import finetune_classifier
from dsopt.util.atomic import atomic_open
from dsopt.util.validation import check_choice

CLASS_NAMES = ("negative", "positive")
FPB_VARIANT = "75"
FPB_LABEL_MAP = {"negative": 0, "positive": 1}  # neutral: left out (see the module docstring)
MIN_WORDS = 8
#: items per pool at each scale: launch training, launch reference, SST-2 stream pool, FPB stream pool
POOL_SIZES = {
    "tiny": dict(train=300, reference=150, sst_stream=300, fpb_stream=260),
    "workshop": dict(train=1500, reference=400, sst_stream=1100, fpb_stream=1100),
    "full": dict(train=5000, reference=1000, sst_stream=2200, fpb_stream=1307),
}
EMBED_MAX_LENGTH = 64
_DATA_VERSION = 1


@dataclass
class Pools:
    """Texts and labels of the four pools (labels 0 = negative, 1 = positive)."""

    train_texts: list[str]
    train_y: np.ndarray
    reference_texts: list[str]
    reference_y: np.ndarray
    sst_texts: list[str]
    sst_y: np.ndarray
    fpb_texts: list[str]
    fpb_y: np.ndarray
    fpb_counts: dict

    def all_texts(self) -> list[str]:
        return self.train_texts + self.reference_texts + self.sst_texts + self.fpb_texts


def load_pools(scale: str = "workshop") -> Pools:
    """The pools at ``scale`` (deterministic: the same texts on every machine and for every seed)."""
    from dsopt.data import load

    sizes = POOL_SIZES[check_choice("scale", scale, tuple(POOL_SIZES))]
    sst = load("sst2", "train", progress=False)
    keep = np.array([i for i, t in enumerate(sst.texts) if len(t.split()) >= MIN_WORDS])
    keep = keep[np.random.default_rng(0).permutation(keep.size)]
    a, b, c = sizes["train"], sizes["train"] + sizes["reference"], sizes["train"] + sizes["reference"] + sizes["sst_stream"]
    part = {"train": keep[:a], "reference": keep[a:b], "sst": keep[b:c]}
    fpb = load("financial_phrasebank", FPB_VARIANT, progress=False)
    names = fpb.class_names
    polar = np.array([i for i, y in enumerate(fpb.y) if names[y] in FPB_LABEL_MAP])
    polar = polar[np.random.default_rng(0).permutation(polar.size)][: sizes["fpb_stream"]]
    fpb_y = np.array([FPB_LABEL_MAP[names[fpb.y[i]]] for i in polar], dtype=np.int64)
    return Pools(
        [sst.texts[i] for i in part["train"]], sst.y[part["train"]].astype(np.int64),
        [sst.texts[i] for i in part["reference"]], sst.y[part["reference"]].astype(np.int64),
        [sst.texts[i] for i in part["sst"]], sst.y[part["sst"]].astype(np.int64),
        [fpb.texts[i] for i in polar], fpb_y,
        {"negative": int((fpb_y == 0).sum()), "positive": int((fpb_y == 1).sum()),
         "neutral_left_out": int(sum(names[y] == "neutral" for y in fpb.y))},
    )


def _texts_key(texts: list[str]) -> str:
    h = hashlib.sha256(json.dumps([_DATA_VERSION, EMBED_MAX_LENGTH, "all-MiniLM-L6-v2"]).encode())
    for t in texts:
        h.update(t.encode() + b"\0")
    return h.hexdigest()[:16]


def embed_texts(texts: list[str], *, cache_dir: str | Path | None = None, batch_size: int = 64,
                progress: bool = True) -> np.ndarray:
    """MiniLM sentence embeddings [N, 384] (float32), cached as one ``.npy`` per list of texts."""
    path = Path(cache_dir) / f"minilm-{_texts_key(texts)}.npy" if cache_dir else None
    if path is not None and path.is_file():
        out = np.load(path)
        if out.shape == (len(texts), 384):
            return out
    from tqdm.auto import tqdm

    from dsopt.models.minilm import load_minilm, minilm_embed
    from dsopt.models.tokenize import load_minilm_tokenizer

    encoder, tokenizer = load_minilm(), load_minilm_tokenizer()
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths per batch: less padding
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for i in tqdm(range(0, len(texts), batch_size), desc="MiniLM embeddings", unit="batch", disable=not progress,
                  leave=False):
        idx = order[i:i + batch_size]
        out[idx] = minilm_embed([texts[j] for j in idx], batch_size, encoder=encoder, tokenizer=tokenizer,
                                max_length=EMBED_MAX_LENGTH).numpy()
    if path is not None:
        with atomic_open(path, "wb") as fh:
            np.save(fh, out)
    return out


@dataclass
class Features:
    """Pools with their embeddings: what every run of the study starts from."""

    pools: Pools
    train: np.ndarray
    reference: np.ndarray
    sst: np.ndarray
    fpb: np.ndarray


def load_features(scale: str = "workshop", *, cache_dir: str | Path | None = None, progress: bool = True) -> Features:
    """Pools and their MiniLM embeddings (computed once, then read from ``cache_dir``)."""
    pools = load_pools(scale)
    emb = embed_texts(pools.all_texts(), cache_dir=cache_dir, progress=progress)
    a = len(pools.train_texts)
    b = a + len(pools.reference_texts)
    c = b + len(pools.sst_texts)
    return Features(pools, emb[:a], emb[a:b], emb[b:c], emb[c:])


def make_head(seed: int = 0) -> torch.nn.Module:
    """The retrainable part of the served model: a linear layer on the 384-d embedding."""
    torch.manual_seed(seed)
    return torch.nn.Linear(384, len(CLASS_NAMES))


def launch_model(features: Features, *, steps: int = 100, lr: float = 2e-2, seed: int = 0) -> torch.nn.Module:
    """The model at launch: the head trained on the launch training pool (full-batch AdamW)."""
    return finetune_classifier(make_head(seed), features.train, features.pools.train_y, steps=steps, lr=lr,
                               weight_decay=1e-2, seed=seed)


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((model(torch.as_tensor(x)).argmax(1).numpy() == y).mean())
