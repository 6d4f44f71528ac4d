"""MixedPrecision: the Trainer's precision switch, with the loss scaler's bookkeeping in the Recorder.

It is a :class:`~dsopt.core.callbacks.StepHooks` callback: per batch it wraps forward + loss in
``torch.amp.autocast(device type, dtype)`` and, in fp16 mode, lets a ``torch.amp.GradScaler`` own
backward (on the scaled loss), unscaling, the optimizer step (skipped on overflow) and the scale
update. Everything else about the run (events, knobs, checkpoints) is the ordinary callback contract.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import torch

from dsopt.core.callbacks import Callback, StepHooks
from dsopt.core.controls import Knob
from dsopt.core.recorder import Recorder
from dsopt.precision.amp import MODES, autocast, check_supported, get_mode
from dsopt.precision.numerics import collect_gradients, representation
from dsopt.precision.scaling import DEFAULTS, DOCS, VALIDATORS, scaler_params
from dsopt.util.validation import check_choice, check_number

#: Recorder names written once per optimizer step (at batch_end, beside ``train_loss``).
RECORDS = ("loss_scale", "overflow", "skipped_steps", "grad_norm")


class MixedPrecision(StepHooks):
    """Train in ``precision`` ("fp32", "bf16" or "fp16") with live knobs and per-step records.

    Knobs (Controls, applied at the next step boundary): ``precision`` and the GradScaler's
    ``init_scale``, ``growth_factor``, ``backoff_factor``, ``growth_interval``. A new ``init_scale``
    replaces the current scale (and restarts the growth count); the three others change the rule from
    the next update on. A mode the device cannot run (e.g. fp16 where torch has no fp16 autocast) is
    refused with the reason, never run as fp32.

    Records per step: ``loss_scale`` (the scale this step's backward used; 1 when the mode does not
    scale), ``overflow`` (1 when the scaled gradients held an inf/NaN, so the optimizer step was
    skipped and the scale backed off), ``skipped_steps`` (running total) and ``grad_norm`` (L2 norm of
    the unscaled gradients, inf or NaN on overflow; ``log_grad_norm=False`` turns it off). Wall-clock step
    times go to ``self.timings`` (a separate Recorder, ``step_time_ms``), because the run's Recorder
    stays deterministic.

    Parameters, gradients and optimizer state stay fp32 in every mode (autocast casts on the fly).
    """

    def __init__(self, precision: str = "bf16", *, init_scale: float = DEFAULTS["init_scale"],
                 growth_factor: float = DEFAULTS["growth_factor"], backoff_factor: float = DEFAULTS["backoff_factor"],
                 growth_interval: int = DEFAULTS["growth_interval"], log_grad_norm: bool = True,
                 time_steps: bool = True, device: str | torch.device | None = None):
        self.defaults = {"precision": check_choice("precision", precision, MODES),
                         **scaler_params(init_scale=init_scale, growth_factor=growth_factor,
                                         backoff_factor=backoff_factor, growth_interval=growth_interval)}
        self.log_grad_norm = check_choice("log_grad_norm", log_grad_norm, (True, False))
        self.time_steps = check_choice("time_steps", time_steps, (True, False))
        self.device = None if device is None else torch.device(device)
        if self.device is not None:
            check_supported(precision, self.device)
        self.scaler: torch.amp.GradScaler | None = None
        self.timings = Recorder()
        self.mode = self.defaults["precision"]
        self.skipped = 0
        self._applied_init_scale = self.defaults["init_scale"]
        self._pending_scaler: dict | None = None
        self._step_record: dict[str, float] = {}
        self._t0 = 0.0
        self._checked: tuple | None = None

    # -- knobs --------------------------------------------------------------------------------------
    def knobs(self) -> list[Knob]:
        out = [Knob("precision", self.defaults["precision"], self._check_precision,
                    "fp32 | bf16 (autocast) | fp16 (autocast + dynamic loss scaling)")]
        return out + [Knob(k, self.defaults[k], VALIDATORS[k], DOCS[k]) for k in DEFAULTS]

    def _check_precision(self, value: Any) -> str:
        value = check_choice("precision", value, MODES)
        if self.device is not None:
            check_supported(value, self.device)  # refuse live what this device cannot run
        return value

    def _values(self, state) -> dict:
        return {k: state.knobs.get(k, v) for k, v in self.defaults.items()}

    def _ensure_scaler(self, state, v: dict) -> torch.amp.GradScaler:
        if self.scaler is None:
            self.scaler = torch.amp.GradScaler(state.device.type, init_scale=v["init_scale"],
                                               growth_factor=v["growth_factor"], backoff_factor=v["backoff_factor"],
                                               growth_interval=v["growth_interval"])
            if self._pending_scaler is not None:
                self.scaler.load_state_dict(self._pending_scaler)
                self._pending_scaler = None
        return self.scaler

    def _sync(self, state) -> None:
        """Apply knob values (already validated by Controls) at the step boundary."""
        v = self._values(state)
        self.device = state.device
        if (v["precision"], state.device) != self._checked:  # a new mode, or a run resumed elsewhere
            check_supported(v["precision"], state.device)
            self._checked = (v["precision"], state.device)
        self.mode = v["precision"]
        if not get_mode(self.mode).scaled and self.scaler is None:
            return
        sc = self._ensure_scaler(state, v)
        sc.set_growth_factor(v["growth_factor"])
        sc.set_backoff_factor(v["backoff_factor"])
        sc.set_growth_interval(v["growth_interval"])
        if v["init_scale"] != self._applied_init_scale:  # a live "restart the scale from here"
            sc.load_state_dict({**sc.state_dict(), "scale": v["init_scale"], "_growth_tracker": 0})
            self._applied_init_scale = v["init_scale"]

    # -- events and step hooks ---------------------------------------------------------------------------
    def fit_start(self, state) -> None:
        check_supported(self._values(state)["precision"], state.device)  # fail before the first step

    def batch_start(self, state) -> None:
        self._sync(state)
        if self.time_steps:
            self._t0 = time.perf_counter()

    def forward_context(self, state):
        return autocast(self.mode, state.device)

    def backward(self, state) -> None:
        scaled = get_mode(self.mode).scaled
        if scaled:
            scale = self.scaler.get_scale()
            self.scaler.scale(state.loss).backward()
            self.scaler.unscale_(state.optimizer)  # after_backward callbacks see true gradients
        else:
            scale = 1.0
            state.loss.backward()
        rec = {"loss_scale": scale}
        if self.log_grad_norm:
            grads = [p.grad for g in state.optimizer.param_groups for p in g["params"] if p.grad is not None]
            rec["grad_norm"] = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
        self._step_record = rec

    def optimizer_step(self, state) -> None:
        overflow = False
        if get_mode(self.mode).scaled:
            before = self._step_record["loss_scale"]
            self.scaler.step(state.optimizer)  # skipped when the unscaled gradients hold inf/NaN
            self.scaler.update()
            # GradScaler lowers the scale (backoff_factor < 1) exactly when it found an inf/NaN and skipped.
            overflow = self.scaler.get_scale() < before
        else:
            state.optimizer.step()
        self.skipped += int(overflow)
        self._step_record.update(overflow=float(overflow), skipped_steps=float(self.skipped))

    def batch_end(self, state) -> None:
        for name in RECORDS:
            if name in self._step_record:
                state.log(name, self._step_record[name])
        if self.time_steps:
            if state.device.type == "cuda":
                torch.cuda.synchronize(state.device)
            self.timings.log("step_time_ms", 1000 * (time.perf_counter() - self._t0), step=state.step,
                             epoch=state.epoch)

    # -- checkpoints --------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        scaler = self.scaler.state_dict() if self.scaler is not None else self._pending_scaler
        return {"defaults": dict(self.defaults), "mode": self.mode, "skipped": self.skipped,
                "applied_init_scale": self._applied_init_scale, "scaler": scaler}

    def load_state_dict(self, d: dict) -> None:
        self.defaults.update(d.get("defaults", {}))
        self.mode = d.get("mode", self.mode)
        self.skipped = int(d.get("skipped", 0))
        self._applied_init_scale = d.get("applied_init_scale", self.defaults["init_scale"])
        self._pending_scaler = d.get("scaler")
        if self.scaler is not None and self._pending_scaler is not None:
            self.scaler.load_state_dict(self._pending_scaler)
            self._pending_scaler = None


class GradientProbe(Callback):
    """Every ``every`` steps, the true (fp32) gradient magnitudes of the live model on the current batch.

    At ``batch_start`` (on the training thread, at a step boundary) it runs one extra fp32 forward and
    backward in eval mode (no dropout: no random number drawn, the run itself is unchanged) and keeps a
    seeded sample of at most ``max_values`` activation and weight gradient magnitudes, for a panel to
    read with :meth:`latest` (a copy; the panel never touches the model). It also logs
    ``fp16_underflow`` (the fraction of non-zero activation gradients that fp16 would flush to zero at the
    run's current loss scale; 1 when the mode does not scale) and ``fp16_underflow_unscaled`` (at scale 1).
    """

    order = 10  # after MixedPrecision's batch_start, so the knobs of this step are applied

    def __init__(self, every: int = 10, max_values: int = 20_000, scale_of: Any = None):
        self.every = check_number("every", every, low=1, integer=True)
        self.max_values = check_number("max_values", max_values, low=1, integer=True)
        self.scale_of = scale_of  # a MixedPrecision, for the current scale
        self._lock = threading.Lock()
        self._latest: dict | None = None

    def batch_start(self, state) -> None:
        if state.step % self.every:
            return
        g = collect_gradients(state.model, (state.inputs, state.targets), state.loss_fn, device=state.device,
                              max_values=self.max_values, seed=state.step)
        scale = 1.0
        mp = self.scale_of
        if mp is not None and mp.scaler is not None and get_mode(mp.mode).scaled:
            scale = mp.scaler.get_scale()
        state.log("fp16_underflow", representation(g["activations"], "fp16", scale)["underflow"])
        state.log("fp16_underflow_unscaled", representation(g["activations"], "fp16", 1.0)["underflow"])
        with self._lock:
            self._latest = {"step": state.step, "scale": scale, **g}

    def latest(self) -> dict | None:
        """The newest snapshot ``{"step", "scale", "activations", "weights", "loss"}`` (None before the first)."""
        with self._lock:
            return None if self._latest is None else dict(self._latest)
