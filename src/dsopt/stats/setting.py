"""What a claim is about, and what was measured: a :class:`Setting` per side.

A claim from the article is made in one setting ("BERT pre-training on 8 x V100 GPUs"); a chapter
measures in another ("DistilBERT fine-tuning on one CPU"). When the two differ in a field that the
claim states, the local measurement is a fact about the local setting, not a test of the claim:
:func:`dsopt.stats.assess` then gives the status "not testable here" and still reports the estimate.

Only the fields the *claim* states count (None = unspecified/any); a field the measurement leaves
None is "not stated" and is not counted as a difference. ``text`` is a free description and never
counts. ``dataset``, ``model`` and ``hardware`` compare case- and whitespace-insensitively.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from dsopt.util.validation import ParameterError

__all__ = ["Setting"]

_COMPARED = ("device", "workers", "dataset", "model", "hardware")


def _norm(v):
    return " ".join(str(v).lower().split()) if isinstance(v, str) else v


@dataclass(frozen=True)
class Setting:
    """A setting: ``device`` ("cuda", "cpu"), ``workers`` (processes/GPUs), ``dataset``, ``model``,
    ``hardware`` (free text, e.g. "8 x V100") and ``text`` (a free description). None = unspecified."""

    device: str | None = None
    workers: int | None = None
    dataset: str | None = None
    model: str | None = None
    hardware: str | None = None
    text: str | None = None

    def __post_init__(self):
        if self.workers is not None:
            if isinstance(self.workers, bool) or int(self.workers) != self.workers or self.workers < 1:
                raise ParameterError("workers", f"workers must be a positive integer or None; got {self.workers!r}")
            object.__setattr__(self, "workers", int(self.workers))
        for f in ("device", "dataset", "model", "hardware", "text"):
            v = getattr(self, f)
            if v is not None and not isinstance(v, str):
                raise ParameterError(f, f"{f} must be a string or None; got {v!r}")

    def differences(self, measured: "Setting | None") -> list[str]:
        """Each field this (claimed) setting states that ``measured`` states differently:
        ``["device: cuda (claim) vs cpu (measured)", ...]``; empty when nothing differs."""
        if measured is None:
            return []
        out = []
        for f in _COMPARED:
            mine, theirs = getattr(self, f), getattr(measured, f)
            if mine is None or theirs is None:
                continue
            if _norm(mine) != _norm(theirs):
                out.append(f"{f}: {mine} (claim) vs {theirs} (measured)")
        return out

    def describe(self) -> str:
        """"BERT pre-training on 8 x V100 (cuda, 8 workers)" from the fields given; "unspecified" when none."""
        head = self.text or " / ".join(x for x in (self.model, self.dataset) if x) or ""
        if self.hardware:
            head = f"{head} on {self.hardware}" if head else self.hardware
        extra = [x for x in (self.device, f"{self.workers} worker{'s' if self.workers != 1 else ''}"
                             if self.workers is not None else None) if x]
        if self.text and (self.model or self.dataset):
            extra = [x for x in (self.model, self.dataset) if x] + extra
        if extra:
            head = f"{head} ({', '.join(extra)})" if head else ", ".join(extra)
        return head or "unspecified"

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Setting":
        """The setting :meth:`as_dict` wrote (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
