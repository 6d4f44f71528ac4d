"""WeightingCallback: the scheme and its parameters as live Trainer knobs, weight statistics per class."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dsopt.core.callbacks import Callback
from dsopt.core.controls import Knob
from dsopt.util.validation import ParameterError, check_choice
from dsopt.weighting.checks import _check_counts
from dsopt.weighting.loss import WeightedLoss
from dsopt.weighting.schemes import SCHEMES, make_scheme

_KNOB_PARAMS = ("gamma", "alpha", "beta", "confidence")
_QUANTILES = (("q10", 0.1), ("q50", 0.5), ("q90", 0.9))


class WeightingCallback(Callback):
    """Live knobs ``scheme``, ``gamma``, ``alpha``, ``beta``, ``confidence`` for a :class:`WeightedLoss`, and
    per-class weight statistics.

    At ``batch_start`` (knob changes already applied by the Trainer) the loss's scheme is rebuilt if the
    knobs changed, so a new scheme takes effect from that step's loss on. At ``batch_end`` the batch's
    ``last_weights`` are collected by target class and each class's mean in the batch is logged as
    ``weight_batch/class_<c>`` at the step the batch started from (the step an applied change is
    recorded at, so a live plot shows a switch exactly there); at
    ``epoch_end`` the per-class mean and 10/50/90 % quantiles are logged as ``weight_mean/class_<c>``,
    ``weight_q10/class_<c>``, ... ``switches`` lists
    ``(step, scheme name, params)`` for every scheme in force. ``class_counts`` (training-set examples per
    class) are handed to the loss, for the class-balanced and inverse-frequency schemes.
    """

    def __init__(self, weighted_loss: WeightedLoss, class_counts: Any, scheme: str = "none", **params: Any):
        bad = set(params) - set(_KNOB_PARAMS)
        if bad:
            key = sorted(bad)[0]
            raise ParameterError(key, f"{key} is not a weighting knob; allowed: {', '.join(_KNOB_PARAMS)}")
        self.loss = weighted_loss
        self.class_counts = weighted_loss.class_counts = _check_counts(class_counts)  # the loss uses these
        specs = {p.name: p for s in SCHEMES.values() for p in s.params}
        self.defaults = {"scheme": check_choice("scheme", scheme, SCHEMES)}
        self.defaults.update({k: specs[k].validate(params.get(k, specs[k].default)) for k in _KNOB_PARAMS})
        self._specs = specs
        self.switches: list[tuple[int, str, dict]] = []
        self._current: tuple | None = None
        self._by_class: dict[int, list[np.ndarray]] = {}

    def knobs(self) -> list:
        docs = {"scheme": f"loss weighting scheme: {', '.join(SCHEMES)}"}
        out = [Knob("scheme", self.defaults["scheme"], lambda v: check_choice("scheme", v, SCHEMES), docs["scheme"])]
        out += [Knob(k, self.defaults[k], self._specs[k].validate, self._specs[k].doc) for k in _KNOB_PARAMS]
        return out

    def _sync(self, state) -> None:
        values = {**self.defaults, **{k: v for k, v in (state.knobs or {}).items() if k in self.defaults}}
        name = values["scheme"]
        params = {p.name: values[p.name] for p in SCHEMES[name].params if p.name in values}
        key = (name, tuple(sorted(params.items())))
        if key != self._current:
            self.loss.scheme = make_scheme(name, **params)
            self._current = key
            if not self.switches or (self.switches[-1][1], self.switches[-1][2]) != (name, params):
                self.switches.append((int(state.step), name, params))

    def fit_start(self, state) -> None:
        self._sync(state)

    def epoch_start(self, state) -> None:
        self._by_class = {}

    def batch_start(self, state) -> None:
        self._sync(state)

    def batch_end(self, state) -> None:
        w, t = self.loss.last_weights, state.targets
        if w is None or t is None:
            return
        w, t = w.detach().float().cpu().numpy(), torch.as_tensor(t).detach().cpu().numpy()
        if w.shape != t.shape:
            raise RuntimeError(f"WeightingCallback: last_weights {w.shape} do not match targets {t.shape}; "
                               "is the Trainer's loss_fn this callback's WeightedLoss?")
        for c in np.unique(t):
            wc = w[t == c]
            self._by_class.setdefault(int(c), []).append(wc)
            # logged at the step the batch started from, like ``lr`` and ``knob/...`` (the step a change applies at)
            state.recorder.log(f"weight_batch/class_{int(c)}", float(wc.mean()), step=state.step - 1, epoch=state.epoch)

    def epoch_end(self, state) -> None:
        for c in sorted(self._by_class):
            w = np.concatenate(self._by_class[c])
            state.recorder.log(f"weight_mean/class_{c}", float(w.mean()), step=state.step, epoch=state.epoch)
            for label, q in _QUANTILES:
                state.recorder.log(f"weight_{label}/class_{c}", float(np.quantile(w, q)), step=state.step, epoch=state.epoch)
        self._by_class = {}

    def state_dict(self) -> dict:
        # the epoch's partial weights travel too, so a run resumed mid-epoch logs the same statistics
        partial = {c: np.concatenate(ws) for c, ws in self._by_class.items()}
        return {"defaults": dict(self.defaults), "switches": [list(s) for s in self.switches], "partial": partial}

    def load_state_dict(self, d: dict) -> None:
        self.defaults.update(d.get("defaults", {}))
        self.switches = [tuple(s) for s in d.get("switches", [])]
        self._by_class = {int(c): [np.asarray(w)] for c, w in d.get("partial", {}).items()}
        self._current = None  # the loss's scheme is rebuilt from the restored knobs at the next batch_start
