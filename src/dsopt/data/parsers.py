"""Parsers for each stored file, one per format quirk documented in shared/data/README.md.

They take a path and return plain Python/NumPy values (no class-index mapping: that is the
loader's job), read only the standard library + NumPy, and fail loudly on a malformed line
rather than skipping it, because a silently dropped row changes every reported number.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from dsopt.data.errors import DataError


def _lines(text: str) -> list[str]:
    """Split on LF only and drop a trailing CR; ``str.splitlines`` would also split on
    U+0085/U+2028, which latin-1 mojibake or message texts may contain."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def parse_financial_phrasebank(path: str | Path) -> tuple[list[str], list[str]]:
    """``sentence@label`` per line; latin-1 (not valid UTF-8), CRLF; split on the **last** ``@``."""
    texts, labels = [], []
    for no, line in enumerate(_lines(Path(path).read_bytes().decode("latin-1")), 1):
        if not line:
            continue
        sentence, sep, label = line.rpartition("@")
        if not sep or label not in ("negative", "neutral", "positive"):
            raise DataError(f"{path}:{no}: expected 'sentence@label', got {line[:80]!r}")
        texts.append(sentence)
        labels.append(label)
    return texts, labels


def parse_sms_spam(path: str | Path) -> tuple[list[str], list[str]]:
    """``label<TAB>text`` per line, UTF-8, no header; quotes are literal (quoting disabled),
    otherwise lines containing ``"`` merge and 5,574 rows become 5,572."""
    texts, labels = [], []
    for no, line in enumerate(_lines(Path(path).read_text(encoding="utf-8")), 1):
        if not line:
            continue
        label, sep, text = line.partition("\t")
        if not sep or label not in ("ham", "spam"):
            raise DataError(f"{path}:{no}: expected 'ham|spam<TAB>text', got {line[:80]!r}")
        texts.append(text)
        labels.append(label)
    return texts, labels


def parse_sst2(path: str | Path) -> tuple[list[str], list[int]]:
    """GLUE SST-2 train/dev TSV: header ``sentence<TAB>label``; sentences end with a stray
    space before the tab, so they are stripped. (test.tsv has no labels and is not parsed.)"""
    lines = _lines(Path(path).read_text(encoding="utf-8"))
    if not lines or lines[0].split("\t") != ["sentence", "label"]:
        raise DataError(f"{path}: expected header 'sentence<TAB>label', got {lines[0][:80] if lines else ''!r}")
    texts, labels = [], []
    for no, line in enumerate(lines[1:], 2):
        if not line:
            continue
        sentence, sep, label = line.rpartition("\t")
        if not sep or label not in ("0", "1"):
            raise DataError(f"{path}:{no}: expected 'sentence<TAB>0|1', got {line[:80]!r}")
        texts.append(sentence.strip())
        labels.append(int(label))
    return texts, labels


def parse_symptom2disease(path: str | Path) -> tuple[list[str], list[str]]:
    """pandas-written CSV ``,label,text``: the unnamed first column is a non-unique index
    (0-299, restarting) and is dropped; fields are quoted when needed, so use :mod:`csv`."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0] != ["", "label", "text"]:
        raise DataError(f"{path}: expected header ',label,text', got {rows[0] if rows else []!r}")
    texts, labels = [], []
    for no, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != 3:
            raise DataError(f"{path}:{no}: expected 3 fields, got {len(row)}")
        labels.append(row[1])
        texts.append(row[2])
    return texts, labels


CREDIT_TARGET = "default.payment.next.month"


def parse_credit_card_default(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """R ``write.csv`` output: quoted header, unquoted numbers, some in scientific notation
    (``2e+05``), so every cell is parsed as float then checked to be a whole number.
    Returns ``(X float32 without ID and target, y int64, feature_names)``."""
    with open(path, encoding="ascii", newline="") as fh:
        reader = csv.reader(io.StringIO(fh.read()))
        header = next(reader)
        try:
            values = np.array([[float(v) for v in row] for row in reader if row], dtype=np.float64)
        except ValueError as exc:
            raise DataError(f"{path}: non-numeric cell ({exc})") from exc
    if CREDIT_TARGET not in header or "ID" not in header:
        raise DataError(f"{path}: expected columns 'ID' and {CREDIT_TARGET!r}, got {header!r}")
    if values.ndim != 2 or values.shape[1] != len(header):
        raise DataError(f"{path}: rows do not all have {len(header)} columns")
    if not np.array_equal(values, np.round(values)):
        raise DataError(f"{path}: expected whole numbers only")
    t = header.index(CREDIT_TARGET)
    keep = [i for i, c in enumerate(header) if c not in ("ID", CREDIT_TARGET)]
    y = values[:, t].astype(np.int64)
    if not set(np.unique(y)) <= {0, 1}:
        raise DataError(f"{path}: target {CREDIT_TARGET!r} must be 0/1")
    return values[:, keep].astype(np.float32), y, [header[i] for i in keep]
