"""The alarm-driven retraining loop and the model store it promotes into.

alarm -> request ``k`` labels (the most recent predictions; a label budget caps the total) -> the
labels arrive ``label_delay`` windows later -> fine-tune a copy of the serving model on part of them
-> compare candidate and serving model on the held-out rest (new-regime data neither has trained
on) -> promote only if the candidate is better, else keep the serving model. Either way the monitor
starts a fresh reference period: the alarm has been handled.

Promotion is crash-safe. :class:`ModelStore` keeps every version as its own checkpoint
(``versions/v000001.pt``, written atomically) and a ``CURRENT`` pointer (JSON, written atomically):
``save`` then ``promote`` then swap the in-memory model. A crash (or a kill) at any point leaves
``CURRENT`` naming a complete checkpoint: the old one before the pointer moved, the new one after.
A service in another process follows ``CURRENT`` (:meth:`ModelStore.current_version`) and keeps its
model until a complete new version is promoted. :meth:`RetrainingLoop.rollback` moves back.
"""
from __future__ import annotations

import copy
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dsopt.core.checkpoint import save_checkpoint
from dsopt.monitor.exporter import Exporter
from dsopt.monitor.signals import ChartRecord
from dsopt.util.atomic import atomic_write_text
from dsopt.util.validation import ParameterError, check_number

_VERSION_FILE = re.compile(r"^v(\d{6})\.pt$")


class StoreError(RuntimeError):
    """A version file the store will not serve: missing, damaged, or not a model checkpoint (message says which)."""


class ModelStore:
    """Versioned model checkpoints under ``root`` with an atomically moved ``CURRENT`` pointer.

    What it reads it does not trust: a version is loaded with ``torch.load(weights_only=True)`` (a model checkpoint is
    tensors and plain values; a crafted pickle is refused, never run), a version is checked to load before
    ``CURRENT`` moves to it (promote and rollback), an unreadable ``CURRENT`` falls back to the newest version that
    loads (with a warning), temporary files of writers that died are removed when the store opens, and at most
    ``keep`` versions are kept (never the current one or the one a rollback would serve).
    """

    #: While another process writes (it holds the store's writer lock), only temporary files older than this are
    #: taken for a dead writer's (a live save takes seconds); with the lock free, every one is.
    STALE_PART_SECONDS = 600.0

    def __init__(self, root: str | os.PathLike, *, keep: int | None = 20):
        self.root = Path(root)
        self.keep = None if keep is None else check_number("keep", keep, low=2, high=10**6, integer=True)
        (self.root / "versions").mkdir(parents=True, exist_ok=True)
        self.removed_parts = self._remove_dead_parts()

    def _writer_lock(self, blocking: bool = True):
        """The store's writer lock (``flock`` on ``root/.writer.lock``), held while a version is written; returns
        the open file holding it, or None when ``blocking`` is False and another process holds it."""
        import fcntl

        fh = open(self.root / ".writer.lock", "a+b")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.close()
            return None
        return fh

    def _remove_dead_parts(self) -> int:
        """Remove the ``.part`` files of writes cut off by a kill: all of them when no process is writing (the writer
        lock is free: a killed writer's lock died with it), else those older than :attr:`STALE_PART_SECONDS`."""
        lock = self._writer_lock(blocking=False)
        n, now = 0, time.time()
        try:
            for p in (self.root / "versions").glob(".*.part"):
                try:
                    if lock is not None or now - p.stat().st_mtime > self.STALE_PART_SECONDS:
                        p.unlink()
                        n += 1
                except FileNotFoundError:  # another process removed or finished it
                    pass
        finally:
            if lock is not None:
                lock.close()
        return n

    @property
    def pointer(self) -> Path:
        return self.root / "CURRENT"

    def path(self, version: int) -> Path:
        return self.root / "versions" / f"v{int(version):06d}.pt"

    def versions(self) -> list[int]:
        """Complete checkpoints (temporary ``.part`` files of an interrupted write are not versions)."""
        out = []
        for p in (self.root / "versions").iterdir():
            m = _VERSION_FILE.match(p.name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def save(self, model: torch.nn.Module, meta: dict | None = None) -> int:
        """Write ``model``'s weights as the next version (atomic); return its number. Not yet served."""
        meta = json.loads(json.dumps(dict(meta or {}), default=repr))  # plain values: loadable with weights_only
        lock = self._writer_lock()
        try:
            version = (self.versions() or [0])[-1] + 1
            save_checkpoint(self.path(version), {"state_dict": model.state_dict(), "meta": meta, "version": version})
        finally:
            lock.close()
        return version

    def _read_pointer(self) -> dict:
        if not self.pointer.is_file():
            return {"version": None, "history": []}
        try:
            state = json.loads(self.pointer.read_text())
            if not (isinstance(state, dict) and isinstance(state.get("history"), list)
                    and (state.get("version") is None or isinstance(state["version"], int))):
                raise ValueError("not a {version, history} record")
            return state
        except (ValueError, UnicodeDecodeError) as exc:
            return self._fallback(f"{self.pointer} is unreadable ({exc})")

    def _fallback(self, why: str) -> dict:
        """The newest version that loads, when ``CURRENT`` cannot be read (said as a warning)."""
        import warnings

        for version in reversed(self.versions()):
            try:
                self.load(version)
            except (StoreError, FileNotFoundError):
                continue
            warnings.warn(f"dsopt: {why}; serving version {version}, the newest that loads", RuntimeWarning,
                          stacklevel=3)
            return {"version": version, "history": [version]}
        raise StoreError(f"{why}, and no version in {self.root / 'versions'} loads")

    def current_version(self) -> int | None:
        """The version in service (None before the first promotion)."""
        return self._read_pointer()["version"]

    def history(self) -> list[int]:
        """Versions promoted so far, oldest first (rollbacks remove the last)."""
        return list(self._read_pointer()["history"])

    def promote(self, version: int) -> None:
        """Make ``version`` current. It must be a complete, loadable checkpoint."""
        self.load(version)  # refuse a missing, damaged or crafted file before the pointer moves
        state = self._read_pointer()
        atomic_write_text(self.pointer, json.dumps({"version": int(version),
                                                    "history": state["history"] + [int(version)]}))
        self._prune()

    def rollback(self) -> int:
        """Serve the previously promoted version again; return it. The pointer moves only once that version is
        known to load (a damaged or missing previous version raises and changes nothing)."""
        state = self._read_pointer()
        if len(state["history"]) < 2:
            raise ParameterError("version", "nothing to roll back to: fewer than two versions were promoted")
        history = state["history"][:-1]
        self.load(history[-1])
        atomic_write_text(self.pointer, json.dumps({"version": history[-1], "history": history}))
        return history[-1]

    def _prune(self) -> None:
        """Keep the newest ``keep`` versions, and always the current one and the one a rollback would serve."""
        if self.keep is None:
            return
        history = self.history()
        protected = set(history[-2:])
        old = [v for v in self.versions() if v not in protected]
        for version in old[: max(0, len(self.versions()) - self.keep)]:
            try:
                self.path(version).unlink()
            except FileNotFoundError:
                pass

    def load(self, version: int | None = None) -> dict:
        """``{"state_dict", "meta", "version"}`` of ``version`` (default: the current one), read with
        ``weights_only=True``; :class:`StoreError` names a damaged or non-model file, FileNotFoundError a missing
        one."""
        version = self.current_version() if version is None else version
        if version is None:
            raise FileNotFoundError(f"no model has been promoted in {self.root}")
        path = self.path(version)
        if not path.is_file():
            raise FileNotFoundError(f"version {version} of {self.root} is missing ({path})")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a crafted pickle (refused by weights_only), a cut-off or garbage file
            raise StoreError(f"version {version} ({path}) is not a model checkpoint this store serves: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        if not (isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict)
                and payload.get("version") == version):
            raise StoreError(f"version {version} ({path}) is not a model checkpoint: no state_dict for version "
                             f"{version}")
        return payload

    def load_model(self, make_model: Callable[[], torch.nn.Module], version: int | None = None
                   ) -> tuple[torch.nn.Module, int]:
        """A fresh model from ``make_model()`` with the weights of ``version`` (default: current)."""
        ck = self.load(version)
        model = make_model()
        model.load_state_dict(ck["state_dict"])
        return model.eval(), int(ck["version"])


@dataclass
class LoopEvent:
    """Something the loop did at ``window``: alarm, labels_requested, labels_arrived, candidate_trained,
    promoted, rejected, promotion_failed, rolled_back, budget_exhausted."""

    window: int
    event: str
    info: dict = field(default_factory=dict)


@dataclass
class _Request:
    window: int
    arrives: int
    ids: list
    reason: str


class RetrainingLoop:
    """Alarm -> labels -> candidate -> validation -> promotion (or not), on a label budget.

    Parameters
    ----------
    service: the :class:`~dsopt.monitor.service.ModelService` in service (it keeps the features of
        recent predictions, which the candidate trains on).
    store: where promoted versions go (crash-safe).
    finetune: ``finetune(model, features, labels) -> model``: trains the copy it is given.
    oracle: ``oracle(ids) -> labels``: who answers label requests (a person; the study's ground truth).
    budget: total labels the loop may request; ``k``: labels per request.
    label_delay: windows between a request and its labels.
    val_fraction: share of each request's labels held out to compare candidate and serving model.
    min_gain: the candidate must beat the serving model's held-out accuracy by more than this.
    triggers: ``(signal, chart)`` pairs whose alarms start a request (None = any alarm).
    """

    def __init__(self, service, store: ModelStore, finetune: Callable, oracle: Callable[[Sequence], Sequence[int]], *,
                 budget: int, k: int, label_delay: int = 0, val_fraction: float = 0.3, min_gain: float = 0.0,
                 triggers: set[tuple[str, str]] | None = None, seed: int = 0, exporter: Exporter | None = None):
        self.service, self.store, self.finetune, self.oracle = service, store, finetune, oracle
        self.budget = check_number("budget", budget, low=0, integer=True)
        self.k = check_number("k", k, low=2, integer=True)
        self.label_delay = check_number("label_delay", label_delay, low=0, integer=True)
        self.val_fraction = float(check_number("val_fraction", val_fraction, low=0.0, high=1.0,
                                               low_inclusive=False, high_inclusive=False))
        self.min_gain = float(check_number("min_gain", min_gain, low=0.0, high=1.0))
        self.triggers = None if triggers is None else {tuple(t) for t in triggers}
        self.rng = np.random.default_rng(seed)
        self.exporter = exporter if exporter is not None else getattr(service, "exporter", None)
        self.spent = 0
        self.compute_seconds = 0.0
        self.pending: list[_Request] = []
        self.events: list[LoopEvent] = []
        self.labelled_ids: set = set()
        if store.current_version() is None:  # the launch model is version 1
            store.promote(store.save(service.model, {"reason": "launch"}))
        service.swap_model(service.model, store.current_version())

    # -- events ------------------------------------------------------------------------------------
    def _event(self, window: int, event: str, **info) -> LoopEvent:
        e = LoopEvent(int(window), event, info)
        self.events.append(e)
        if self.exporter is not None and event in ("alarm", "labels_requested", "candidate_trained", "promoted",
                                                    "rejected", "rolled_back", "promotion_failed"):
            self.exporter.metric("dsopt_retrain_events_total").labels(event=event).inc()
        return e

    @property
    def remaining(self) -> int:
        return self.budget - self.spent

    # -- the loop ----------------------------------------------------------------------------------
    def on_records(self, window: int, records: Sequence[ChartRecord]) -> None:
        """Feed the chart points of a window; an alarm of a trigger chart starts a label request."""
        alarms = [r for r in records if r.alarm and (self.triggers is None or (r.signal, r.chart) in self.triggers)]
        if not alarms:
            return
        self._event(window, "alarm", signals=sorted({f"{r.signal}/{r.chart}" for r in alarms}))
        if not self.pending:
            self.request(window, reason="alarm")

    def request(self, window: int, reason: str = "schedule") -> bool:
        """Ask for ``k`` labels of the most recent predictions (False when the budget cannot pay)."""
        if self.remaining < self.k:
            self._event(window, "budget_exhausted", remaining=self.remaining)
            return False
        ids = [i for i in self.service.recent_ids() if i not in self.labelled_ids][-self.k:]
        if len(ids) < self.k:
            return False
        self.spent += len(ids)
        self.labelled_ids.update(ids)
        self.pending.append(_Request(int(window), int(window) + self.label_delay, ids, reason))
        if self.exporter is not None:
            self.exporter.metric("dsopt_labels_requested_total").inc(len(ids))
        self._event(window, "labels_requested", k=len(ids), reason=reason, arrives=int(window) + self.label_delay)
        return True

    def tick(self, window: int) -> list[LoopEvent]:
        """Handle every request whose labels have arrived by ``window``; return this tick's events."""
        start = len(self.events)
        due = [r for r in self.pending if r.arrives <= window]
        self.pending = [r for r in self.pending if r.arrives > window]
        for req in due:
            self._retrain(window, req)
        return self.events[start:]

    def _retrain(self, window: int, req: _Request) -> None:
        labels = np.asarray(self.oracle(req.ids), dtype=np.int64)
        feats = self.service.features_of(req.ids)
        self._event(window, "labels_arrived", k=len(req.ids))
        order = self.rng.permutation(len(req.ids))
        n_val = max(1, round(self.val_fraction * len(order)))
        val, train = order[:n_val], order[n_val:]
        serving = self.service.model
        t0 = time.process_time()
        candidate = self.finetune(copy.deepcopy(serving), feats[train], labels[train])
        seconds = time.process_time() - t0
        self.compute_seconds += seconds
        if self.exporter is not None:
            self.exporter.metric("dsopt_retrain_compute_seconds_total").inc(seconds)
        acc_c, acc_s = _accuracy(candidate, feats[val], labels[val]), _accuracy(serving, feats[val], labels[val])
        self._event(window, "candidate_trained", candidate_accuracy=acc_c, serving_accuracy=acc_s,
                    n_train=len(train), n_val=len(val), cpu_seconds=seconds)
        if self.exporter is not None:
            self.exporter.metric("dsopt_candidate_validation_accuracy").labels(model="candidate").set(acc_c)
            self.exporter.metric("dsopt_candidate_validation_accuracy").labels(model="serving").set(acc_s)
        if acc_c > acc_s + self.min_gain:
            self.promote(window, candidate, {"reason": req.reason, "window": window,
                                             "candidate_accuracy": acc_c, "serving_accuracy": acc_s})
        else:
            self._event(window, "rejected", candidate_accuracy=acc_c, serving_accuracy=acc_s)
        if self.service.monitor is not None:
            self.service.monitor.rebaseline()  # the alarm is handled: learn what normal looks like now

    def promote(self, window: int, model: torch.nn.Module, meta: dict | None = None) -> bool:
        """Checkpoint ``model`` (atomic), move CURRENT to it, then serve it. On any failure the
        service keeps its model and the pointer stays where it was (event ``promotion_failed``)."""
        try:
            version = self.store.save(model, meta)
            self.store.promote(version)
        except Exception as exc:  # disk full, killed writer, unreadable file...
            self._event(window, "promotion_failed", error=repr(exc))
            return False
        self.service.swap_model(model, version)
        self._event(window, "promoted", version=version)
        return True

    def rollback(self, window: int, make_model: Callable[[], torch.nn.Module]) -> int:
        """Serve the previously promoted version again (store pointer first, then the service)."""
        version = self.store.rollback()
        model, version = self.store.load_model(make_model, version)
        self.service.swap_model(model, version)
        self._event(window, "rolled_back", version=version)
        return version

    def summary(self) -> dict:
        count = {}
        for e in self.events:
            count[e.event] = count.get(e.event, 0) + 1
        return {"labels_spent": self.spent, "compute_seconds": self.compute_seconds, "events": count,
                "version": self.service.version}


@torch.no_grad()
def _accuracy(model: torch.nn.Module, feats: np.ndarray, labels: np.ndarray) -> float:
    was = model.training
    model.eval()
    pred = model(torch.as_tensor(np.asarray(feats, dtype=np.float32))).argmax(1).numpy()
    model.train(was)
    return float((pred == labels).mean())


def finetune_classifier(model: torch.nn.Module, feats: np.ndarray, labels: np.ndarray, *, steps: int = 200,
                        lr: float = 1e-2, weight_decay: float = 1e-3, seed: int = 0,
                        replay: tuple[np.ndarray, np.ndarray] | None = None) -> torch.nn.Module:
    """Fine-tune ``model`` (features -> logits) on a few labelled examples: full-batch AdamW, ``steps`` steps.

    A few dozen examples fit in one batch, so every step sees all of them and the result is
    deterministic. ``replay``: (features, labels) of launch data mixed in, as many as the new labels
    (drawn with ``seed``), so a few new labels move the model without erasing what it knew.
    """
    steps = check_number("steps", steps, low=1, integer=True)
    lr = float(check_number("lr", lr, low=0.0, high=10.0, low_inclusive=False))
    x, y = np.asarray(feats, dtype=np.float32), np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        raise ParameterError("labels", "fine-tuning needs at least one labelled example")
    if replay is not None and len(replay[1]):
        pick = np.random.default_rng(seed).choice(len(replay[1]), size=min(len(y), len(replay[1])), replace=False)
        x = np.concatenate([x, np.asarray(replay[0], dtype=np.float32)[pick]])
        y = np.concatenate([y, np.asarray(replay[1], dtype=np.int64)[pick]])
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(X), Y).backward()
            opt.step()
    return model.eval()
