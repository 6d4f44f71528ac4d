"""``load(name, variant=None)``: a verified, parsed dataset as a small :class:`Dataset`.

Labels are always class indices (``y``, int64) into a fixed, documented ``class_names`` order,
so that a confusion matrix or a per-class metric means the same thing in every notebook:
Financial PhraseBank ``negative, neutral, positive``; SMS ``ham, spam``; SST-2 ``negative,
positive``; credit ``no_default, default`` (0, 1 as in the file); digits ``0..9``;
Symptom2Disease the 24 diagnoses sorted case-insensitively.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from dsopt.data import parsers
from dsopt.data.download import ensure_files
from dsopt.data.registry import get_info, resolve_variant
from dsopt.util.validation import check_number


@dataclass
class Dataset:
    """One labelled dataset (or split of one).

    Text datasets fill ``texts`` (``list[str]``); tabular/image ones fill ``X``
    (``float32`` array, one row per example) and ``feature_names``. ``y`` is an ``int64`` array
    of indices into ``class_names``. ``meta`` holds task, licence, citation and the source path.
    """

    name: str
    variant: str | None
    class_names: list[str]
    y: np.ndarray
    texts: list[str] | None = None
    X: np.ndarray | None = None
    feature_names: list[str] | None = None
    meta: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def modality(self) -> str:
        """``"text"`` when ``texts`` is set, else ``"tabular"`` (``X``)."""
        return "text" if self.texts is not None else "tabular"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> dict[str, int]:
        """Examples per class name, in ``class_names`` order."""
        counts = np.bincount(self.y, minlength=len(self.class_names))
        return {c: int(n) for c, n in zip(self.class_names, counts)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> "Dataset":
        """A new Dataset with the rows ``indices`` (in that order); arrays are copies."""
        idx = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            y=self.y[idx].copy(),
            texts=[self.texts[i] for i in idx] if self.texts is not None else None,
            X=self.X[idx].copy() if self.X is not None else None,
        )


def _encode(labels: Sequence, class_names: Sequence) -> np.ndarray:
    index = {c: i for i, c in enumerate(class_names)}
    return np.fromiter((index[v] for v in labels), dtype=np.int64, count=len(labels))


def load(name: str, variant: str | None = None, *, timeout: float | None = None,
         progress: bool = True) -> Dataset:
    """Load dataset ``name`` (see :func:`dsopt.data.list_datasets`), verifying its files first.

    ``variant``: Financial PhraseBank ``allagree`` (default), ``75``, ``66``, ``50``; SST-2
    ``train`` (default) or ``dev``; others have none. Missing files are downloaded (unless
    ``DSOPT_OFFLINE=1``); a corrupt file raises :class:`CorruptFileError`; nothing is written
    when the files are present and valid.
    """
    info = get_info(name)
    variant = resolve_variant(info, variant)
    meta = {"task": info.task, "licence": info.licence, "citation": info.citation}
    if info.name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        names = list(getattr(d, "feature_names", None) or [f"pixel_{i}" for i in range(d.data.shape[1])])
        return Dataset(info.name, variant, list(info.class_names), d.target.astype(np.int64),
                       X=d.data.astype(np.float32), feature_names=names, meta=meta)
    kwargs = {"progress": progress}
    if timeout is not None:
        kwargs["timeout"] = check_number("timeout", timeout, low=0, low_inclusive=False)
    (path,) = ensure_files(info, info.variants[variant], **kwargs)
    meta["path"] = str(path)
    if info.name == "credit_card_default":
        X, y, feature_names = parsers.parse_credit_card_default(path)
        return Dataset(info.name, variant, list(info.class_names), y, X=X,
                       feature_names=feature_names, meta=meta)
    if info.name == "financial_phrasebank":
        texts, labels = parsers.parse_financial_phrasebank(path)
        class_names = list(info.class_names)
    elif info.name == "sms_spam_collection":
        texts, labels = parsers.parse_sms_spam(path)
        class_names = list(info.class_names)
    elif info.name == "sst2":
        texts, ints = parsers.parse_sst2(path)
        return Dataset(info.name, variant, list(info.class_names), np.asarray(ints, dtype=np.int64),
                       texts=texts, meta=meta)
    elif info.name == "symptom2disease":
        texts, labels = parsers.parse_symptom2disease(path)
        class_names = sorted(set(labels), key=lambda s: (s.casefold(), s))
    else:  # pragma: no cover - registry and loader out of sync
        raise NotImplementedError(f"no loader for dataset {info.name!r}")
    return Dataset(info.name, variant, class_names, _encode(labels, class_names), texts=texts, meta=meta)
