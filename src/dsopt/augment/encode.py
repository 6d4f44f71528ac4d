"""all-MiniLM-L6-v2 vectors for augmentation: sentence embeddings and context-free word vectors, cached.

One :class:`MiniLMVectors` object serves the similarity filter (sentence embeddings of originals and
augmentations), the linear probe (the same embeddings) and the domain word embedding (word vectors),
so each text is encoded once per machine: vectors are kept by text in :class:`~dsopt.augment.store.
VectorStore` folders. Encoding is batched (``batch_size`` texts per forward pass) and runs under
``torch.no_grad`` on dsopt's own BERT implementation of MiniLM (:mod:`dsopt.models.minilm`).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dsopt.augment.store import VectorStore
from dsopt.util.validation import check_number

#: Identifies the vectors' source in cache keys (the model file's SHA-256 prefix and the pooling).
MODEL_ID = "all-MiniLM-L6-v2:53aa5117:mean"


class MiniLMVectors:
    """Batched, cached MiniLM vectors. ``cache_dir=None`` keeps them in memory only.

    ``sentences(texts)`` -> [N, 384] L2-normalised mean-pooled embeddings (all-MiniLM's recipe, as
    :func:`dsopt.models.minilm_embed`). ``words(words)`` -> [N, 384] L2-normalised means of the word's
    WordPiece tokens only ([CLS]/[SEP] left out, so short words are not dominated by them).
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, batch_size: int = 64,
                 max_length: int = 128, encoder=None, tokenizer=None):
        self.batch_size = check_number("batch_size", batch_size, low=1, integer=True)
        self.max_length = check_number("max_length", max_length, low=4, high=512, integer=True)
        root = Path(cache_dir) if cache_dir is not None else None
        self._sent = VectorStore(root / "sentences" if root else None, dim=384)
        self._word = VectorStore(root / "words" if root else None, dim=384)
        self._encoder, self._tokenizer = encoder, tokenizer
        self.encoded = 0  # texts actually run through the model (cache misses)

    # -- model ----------------------------------------------------------------------------------
    def _model(self):
        if self._encoder is None:
            from dsopt.models.minilm import load_minilm

            self._encoder = load_minilm()
        if self._tokenizer is None:
            from dsopt.models.tokenize import load_minilm_tokenizer

            self._tokenizer = load_minilm_tokenizer()
        return self._encoder.eval(), self._tokenizer

    @torch.no_grad()
    def _encode(self, texts: Sequence[str], *, words: bool) -> np.ndarray:
        from dsopt.models.encoder import pool
        from dsopt.models.tokenize import encode_texts

        encoder, tok = self._model()
        # batches of similar length carry little padding: encode in length order, return in input order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        texts = [texts[i] for i in order]
        out = []
        for i in range(0, len(texts), self.batch_size):
            enc = encode_texts(texts[i:i + self.batch_size], tok, self.max_length)
            ids, mask = enc["input_ids"], enc["attention_mask"]
            h = encoder(ids, mask)
            if words:  # drop [CLS] (first) and [SEP] (last real token) from the mean
                mask = mask.clone()
                mask[:, 0] = 0
                mask[torch.arange(len(mask)), enc["attention_mask"].sum(1) - 1] = 0
            out.append(F.normalize(pool(h, mask, "mean"), dim=-1).numpy())
        self.encoded += len(texts)
        if not out:
            return np.zeros((0, 384), np.float32)
        vecs = np.concatenate(out)
        back = np.empty_like(vecs)
        back[order] = vecs
        return back

    def _cached(self, store: VectorStore, texts: Sequence[str], *, words: bool) -> np.ndarray:
        keys = [_key(t) for t in texts]
        have = store.get_many(keys)
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in have))
        if todo:
            vecs = self._encode(todo, words=words)
            new_keys = [_key(t) for t in todo]
            store.put_many(new_keys, vecs)
            have.update(zip(new_keys, vecs))
        return np.stack([have[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, 384), np.float32)

    def sentences(self, texts: Sequence[str]) -> np.ndarray:
        """Sentence embeddings [N, 384] (unit norm), from the cache where possible."""
        return self._cached(self._sent, list(texts), words=False)

    def words(self, words: Sequence[str]) -> np.ndarray:
        """Context-free word vectors [N, 384] (unit norm), from the cache where possible."""
        return self._cached(self._word, list(words), words=True)


def _key(text: str) -> str:
    return hashlib.sha256(f"{MODEL_ID}\0{text}".encode()).hexdigest()
