"""Trainer: one small training loop with a fixed event list, two run modes and exact resume.

``fit()`` blocks (papermill, tests, scripts); ``start()`` runs the same loop on a worker thread so
JupyterLab stays responsive, with ``pause()``/``resume()``/``stop()`` going through Controls.
Knob changes are applied only at step boundaries, where checkpoints are also taken, so a run
stopped at step k and resumed ends with exactly the weights of an uninterrupted run (on CPU).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable

import torch
from tqdm.auto import tqdm

from dsopt.core.callbacks import Callback
from dsopt.core.checkpoint import load_checkpoint, save_checkpoint
from dsopt.core.controls import Controls
from dsopt.core.device import move_to, pick_device
from dsopt.core.modes import eval_mode
from dsopt.core.recorder import Recorder
from dsopt.core.seeding import rng_state, set_rng_state
from dsopt.core.state import State
from dsopt.util.validation import check_number


def call_model(model: torch.nn.Module, inputs: Any) -> Any:
    """Call ``model`` on a batch's inputs: Tensor -> model(x), tuple -> model(*x), dict -> model(**x)."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def batch_size_of(targets: Any) -> int:
    return int(targets.shape[0]) if isinstance(targets, torch.Tensor) else len(targets)


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Iterable, loss_fn: Callable, device: torch.device) -> dict:
    """Mean loss and, for class-index targets, accuracy of ``model`` over ``loader`` (eval mode)."""
    total, loss_sum, correct = 0, 0.0, 0
    classify = True
    with eval_mode(model):
        for inputs, targets in loader:
            inputs, targets = move_to(inputs, device), move_to(targets, device)
            outputs = call_model(model, inputs)
            n = batch_size_of(targets)
            loss_sum += float(loss_fn(outputs, targets)) * n
            if classify and isinstance(outputs, torch.Tensor) and outputs.dim() == 2 and targets.dtype == torch.long:
                correct += int((outputs.argmax(dim=1) == targets).sum())
            else:
                classify = False
            total += n
    out = {"loss": loss_sum / max(total, 1)}
    if classify and total:
        out["accuracy"] = correct / total
    return out


class Trainer:
    """Train ``model`` with ``optimizer`` on ``train_loader`` for ``max_epochs``.

    Parameters
    ----------
    loss_fn: ``loss_fn(outputs, targets) -> scalar tensor``.
    val_loader: evaluated after every epoch (``val_loss``, ``val_accuracy`` records).
    callbacks: :class:`~dsopt.core.callbacks.Callback` objects; their knobs are defined in ``controls``.
    checkpoint_path: where checkpoints go (atomic writes). Taken every ``checkpoint_every`` steps
        (0 = never), whenever the run is stopped, and at the end.
    progress: a tqdm.auto bar over steps in ``fit()`` (always off on the background thread, where
        widgets must not be touched).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable,
        train_loader: Iterable,
        val_loader: Iterable | None = None,
        *,
        max_epochs: int,
        callbacks: Iterable[Callback] = (),
        recorder: Recorder | None = None,
        controls: Controls | None = None,
        device: str | torch.device | None = None,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 0,
        progress: bool = True,
    ):
        self.max_epochs = check_number("max_epochs", max_epochs, low=1, integer=True)
        self.checkpoint_every = check_number("checkpoint_every", checkpoint_every, low=0, integer=True)
        if checkpoint_every and checkpoint_path is None:
            raise ValueError("checkpoint_every > 0 needs a checkpoint_path")
        self.device = pick_device(device)
        self.model = model.to(self.device)
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.callbacks = sorted(callbacks, key=lambda c: c.order)
        self.recorder = recorder if recorder is not None else Recorder()
        self.controls = controls if controls is not None else Controls()
        for cb in self.callbacks:
            for knob in cb.knobs():
                self.controls.define(knob)
        self.checkpoint_path = checkpoint_path
        self.progress = progress
        try:
            n = len(train_loader)  # type: ignore[arg-type]
        except TypeError as exc:
            raise TypeError("train_loader must have a length (batches per epoch)") from exc
        if n < 1:
            raise ValueError("train_loader yields no batches; check the dataset size and batch_size")
        self.state = State(
            model=self.model, optimizer=optimizer, loss_fn=loss_fn, device=self.device,
            recorder=self.recorder, controls=self.controls, max_epochs=self.max_epochs,
            batches_per_epoch=n, knobs=self.controls.values(),
        )
        self._epoch_rng: dict | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.stopped_early = False
        #: Wall-clock seconds per completed epoch (kept out of the Recorder, which stays deterministic).
        self.epoch_times: list[float] = []

    # -- run modes ----------------------------------------------------------------------------
    def fit(self, resume_from: str | os.PathLike | None = None) -> Recorder:
        """Run to the end (or until stopped) on this thread; return the Recorder.

        On the main thread a first Ctrl-C (or JupyterLab's "interrupt kernel") stops the run
        gracefully at the next step boundary, writing a checkpoint when ``checkpoint_path`` is set;
        a second Ctrl-C interrupts at once.
        """
        self.controls.clear_stop()
        with self._graceful_interrupt():
            self._run(resume_from, progress=self.progress)
        return self.recorder

    @contextlib.contextmanager
    def _graceful_interrupt(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.controls.stop_requested:  # second interrupt: give up at once
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            print(f"dsopt: interrupt received; stopping at the next step boundary"
                  f"{' and writing ' + str(self.checkpoint_path) if self.checkpoint_path else ''} "
                  f"(interrupt again to stop at once)", file=sys.stderr)
            self.controls.stop()

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def start(self, resume_from: str | os.PathLike | None = None) -> "Trainer":
        """Run on a background thread and return at once. Use ``wait()`` to join."""
        if self.running:
            raise RuntimeError("this Trainer is already running")
        self._error = None
        self.controls.clear_stop()  # here, not on the thread: a stop() right after start() must count

        def target():
            try:
                self._run(resume_from, progress=False)
            except BaseException as exc:  # surfaced by wait()
                self._error = exc

        self._thread = threading.Thread(target=target, name="dsopt-trainer", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> Recorder:
        """Join the background run; re-raise its exception if it failed."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"training still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self.recorder

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def started(self) -> bool:
        """True once ``start()`` was called (the background run may have ended since)."""
        return self._thread is not None

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the background run, if any (``wait()`` re-raises it)."""
        return self._error

    def pause(self) -> None:
        self.controls.pause()

    def resume(self) -> None:
        self.controls.resume()

    def stop(self) -> None:
        self.controls.stop()

    # -- the loop -------------------------------------------------------------------------------
    def _emit(self, event: str) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self.state)

    def _run(self, resume_from, progress: bool) -> None:
        s = self.state
        self.stopped_early = False
        resume = self._load(resume_from) if resume_from is not None else None
        s.knobs = self.controls.values()
        if resume is None:
            self._emit("fit_start")
        bar = tqdm(total=s.total_steps, initial=s.step, desc="train", unit="step", disable=not progress,
                   leave=False)
        try:
            for epoch in range(s.epoch, self.max_epochs):
                s.epoch = epoch
                first = 0
                if resume is not None and resume["epoch_rng"] is not None:  # resumed inside this epoch
                    first = resume["batch_index"]
                    set_rng_state(resume["epoch_rng"]["global"])
                    self._set_loader_rng(resume["epoch_rng"]["loader"])
                    self._epoch_rng = resume["epoch_rng"]
                else:
                    self._emit("epoch_start")
                    self._epoch_rng = {"global": rng_state(), "loader": self._loader_rng()}
                batches = self._batches(first)
                if resume is not None:
                    set_rng_state(resume["rng"])
                    resume = None
                t0 = time.perf_counter()
                for batch_index, (inputs, targets) in batches:
                    s.batch_index = batch_index
                    if not self._boundary():
                        self.stopped_early = True
                        return
                    self._train_step(inputs, targets)
                    bar.update(1)
                    if bar.n % 10 == 0 or bar.n == s.total_steps:
                        bar.set_postfix(loss=f"{s.loss.item():.4f}", refresh=False)
                s.batch_index = s.batches_per_epoch
                self.epoch_times.append(time.perf_counter() - t0)  # wall time stays out of the Recorder
                if self.val_loader is not None:
                    for name, value in evaluate(self.model, self.val_loader, self.loss_fn, self.device).items():
                        s.log(f"val_{name}", value)
                self._emit("epoch_end")
            s.epoch, s.batch_index = self.max_epochs, 0
            self._emit("fit_end")
            if self.checkpoint_path is not None:
                self.save_checkpoint(self.checkpoint_path)
        finally:
            bar.close()

    def _batches(self, first: int):
        """Enumerate the epoch's batches from ``first`` on; batches before it are drawn and dropped.

        The first kept batch is fetched eagerly so that the sampler draws its permutation from
        the RNG state of the epoch start in both a fresh and a resumed run.
        """
        it = iter(self.train_loader)
        for _ in range(first):
            next(it)
        try:
            head = [(first, next(it))]
        except StopIteration:
            head = []

        def gen():
            yield from head
            yield from enumerate(it, start=first + 1)

        return gen()

    def _boundary(self) -> bool:
        """The step boundary: apply knob changes, honour pause/stop, checkpoint. False = stop."""
        s = self.state
        self.controls.wait_while_paused()  # first: a change made while paused applies to the next step
        for name, value in self.controls.apply_pending(s.step).items():
            s.log(f"knob/{name}", value)  # every applied change, with the step it took effect at
        s.knobs = self.controls.values()
        if self.controls.stop_requested:
            if self.checkpoint_path is not None:
                self.save_checkpoint(self.checkpoint_path)
            return False
        if self.checkpoint_every and s.step and s.step % self.checkpoint_every == 0:
            self.save_checkpoint(self.checkpoint_path)
        return True

    def _train_step(self, inputs, targets) -> None:
        s = self.state
        s.inputs, s.targets = move_to(inputs, self.device), move_to(targets, self.device)
        self._emit("batch_start")
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        s.outputs = call_model(self.model, s.inputs)
        s.loss = self.loss_fn(s.outputs, s.targets)
        if not torch.isfinite(s.loss):
            raise FloatingPointError(
                f"loss became {s.loss.item()} at step {s.step} (epoch {s.epoch}); lower the learning rate"
            )
        s.loss.backward()
        self._emit("after_backward")
        self.optimizer.step()
        s.step += 1
        s.log("train_loss", s.loss.detach())
        self._emit("batch_end")

    # -- checkpoints ------------------------------------------------------------------------------
    def _loader_rng(self):
        g = getattr(self.train_loader, "generator", None)
        return g.get_state() if isinstance(g, torch.Generator) else None

    def _set_loader_rng(self, state) -> None:
        g = getattr(self.train_loader, "generator", None)
        if state is not None and isinstance(g, torch.Generator):
            g.set_state(state)

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Save the run at the current step boundary (atomic)."""
        s = self.state
        save_checkpoint(path, {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": s.epoch, "batch_index": s.batch_index, "step": s.step,
            "recorder": self.recorder.to_list(),
            "controls": self.controls.state_dict(),
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "rng": rng_state(),
            "epoch_rng": self._epoch_rng,
        })

    def _load(self, path) -> dict:
        ck = load_checkpoint(path)
        if len(ck["callbacks"]) != len(self.callbacks):
            raise ValueError(
                f"checkpoint {path} was written with {len(ck['callbacks'])} callbacks; this Trainer has "
                f"{len(self.callbacks)}: build the Trainer the same way to resume"
            )
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.recorder.restore(ck["recorder"])
        self.controls.load_state_dict(ck["controls"])
        for cb, st in zip(self.callbacks, ck["callbacks"]):
            cb.load_state_dict(st)
        s = self.state
        s.epoch, s.batch_index, s.step = ck["epoch"], ck["batch_index"], ck["step"]
        if s.epoch >= self.max_epochs:
            set_rng_state(ck["rng"])
        return ck
