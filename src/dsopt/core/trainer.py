"""Trainer: one small training loop with a fixed event list, two run modes and exact resume.

``fit()`` blocks (papermill, tests, scripts); ``start()`` runs the same loop on a worker thread so
JupyterLab stays responsive, with ``pause()``/``resume()``/``stop()`` going through Controls. The
Trainer is a :class:`~dsopt.core.handle.RunHandle` (``status``, ``stop(wait)``, ...), so panels steer it
like any other live run. Knob changes are applied only at step boundaries, where checkpoints are also
taken, so a run stopped at step k and resumed ends with exactly the weights of an uninterrupted run (on CPU).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import warnings
from typing import Any, Callable, Iterable

import torch
from tqdm.auto import tqdm

from dsopt.core.callbacks import Callback, StepHooks, callback_names
from dsopt.core.checkpoint import load_checkpoint, save_checkpoint
from dsopt.core.controls import Controls
from dsopt.core.device import move_to, pick_device
from dsopt.core.modes import eval_mode, module_modes, restore_modes
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
        At most one may be a :class:`~dsopt.core.callbacks.StepHooks` (e.g. mixed precision), which then
        runs forward (in its context), backward and the optimizer step of every batch.
    checkpoint_path: where checkpoints go (atomic writes). Taken every ``checkpoint_every`` steps
        (0 = never), whenever the run is stopped, and at the end.
    progress: a tqdm.auto bar over steps in ``fit()`` (always off on the background thread, where
        widgets must not be touched).

    Train/eval mode: a fresh run puts the whole model in train mode once, before ``fit_start``; the
    Trainer does not touch modes per step or per epoch. So a submodule a callback puts in eval (a frozen
    encoder, dropout held off) at ``fit_start``, ``epoch_start`` or any later event stays in eval until a
    callback changes it back. Evaluation after each epoch restores every module's own mode. A stopped run
    continues with the modes it had when it stopped (kept in checkpoints too), whatever was done to the
    model in between.

    Callback state is saved in checkpoints under each callback's ``name`` (see
    :func:`~dsopt.core.callbacks.callback_names`): a resumed Trainer restores each callback from its own
    entry, starts a callback the checkpoint does not know fresh and ignores entries without a callback,
    warning by name in both cases.

    ``status`` is one of :data:`~dsopt.core.handle.STATUSES`: ``"idle"`` before the first run,
    ``"running"`` (``"paused"`` while paused) during ``fit()`` or a background run, then ``"stopped"``
    (ended by ``stop()``), ``"finished"`` or ``"failed"`` (the loop raised; ``fit_error`` was fired).
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
        callback_names(self.callbacks)  # refuse unusable or colliding names now, not at the first checkpoint
        hooks = [cb for cb in self.callbacks if isinstance(cb, StepHooks)]
        if len(hooks) > 1:
            raise ValueError(f"at most one StepHooks callback may own the training step; got {len(hooks)}")
        self._step_hooks: StepHooks | None = hooks[0] if hooks else None
        self.recorder = recorder if recorder is not None else Recorder()
        self.controls = controls if controls is not None else Controls()
        for cb in self.callbacks:
            for knob in cb.knobs():
                self.controls.define(knob)
            for check in cb.constraints():
                self.controls.add_constraint(check)
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
        #: Where a stopped run stands (batch index, RNG states), so that start()/fit() continue it exactly.
        self._stopped_at: dict | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._status = "idle"  # the last run's outcome or "running"; see the status property
        self.stopped_early = False
        #: Wall-clock seconds per completed epoch (kept out of the Recorder, which stays deterministic).
        self.epoch_times: list[float] = []

    # -- run modes ----------------------------------------------------------------------------
    def fit(self, resume_from: str | os.PathLike | None = None) -> Recorder:
        """Run to the end (or until stopped) on this thread; return the Recorder.

        A run stopped earlier continues at exactly the next step (same batches, same random numbers),
        as if it had never stopped. On the main thread a first Ctrl-C (or JupyterLab's "interrupt
        kernel") stops the run gracefully at the next step boundary, writing a checkpoint when
        ``checkpoint_path`` is set; a second Ctrl-C interrupts at once.
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
        """Run on a background thread and return at once. Use ``wait()`` to join.

        A run stopped earlier continues at exactly the next step. The stop flag is cleared here, on
        the caller's thread, so a ``stop()`` issued right after ``start()`` is never lost.
        """
        if self.running:
            raise RuntimeError("this Trainer is already running")
        self._error = None
        self.controls.clear_stop()  # here, not on the thread: a stop() right after start() must count
        self._status = "running"  # here too: status reads "running" from the moment start() returns

        def target():
            try:
                self._run(resume_from, progress=False)
            except BaseException as exc:  # surfaced by wait()
                self._error = exc

        self._thread = threading.Thread(target=target, name="dsopt-trainer", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> Recorder:
        """Join the background run; re-raise its exception if it failed; return the Recorder."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"training still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self.recorder

    @property
    def running(self) -> bool:
        """True while the background run (``start()``) is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def status(self) -> str:
        """Where the run stands: one of :data:`dsopt.core.handle.STATUSES` (see the class docstring)."""
        if self._status == "running" and self.controls.paused:
            return "paused"
        return self._status

    @property
    def started(self) -> bool:
        """True once ``start()`` was called (the background run may have ended since)."""
        return self._thread is not None

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the background run, if any (``wait()`` re-raises it)."""
        return self._error

    def pause(self) -> None:
        """Hold the run at its next step boundary."""
        self.controls.pause()

    def resume(self) -> None:
        """Continue a paused run."""
        self.controls.resume()

    def stop(self, wait: float | None = None) -> None:
        """Ask the run to stop at its next step boundary (checkpointing first when configured).

        With ``wait``, join the background run for up to that many seconds; this neither raises when
        it is still running then nor re-raises its error (``status`` and ``wait()`` tell).
        """
        self.controls.stop()
        if wait is not None and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait)  # not from the run's own thread (a callback): it cannot join itself

    # -- the loop -------------------------------------------------------------------------------
    def _emit(self, event: str) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self.state)

    def _emit_error(self, exc: BaseException) -> None:
        """Fire ``fit_error`` on every callback; a handler's own exception is a warning, never the error."""
        for cb in self.callbacks:
            try:
                cb.fit_error(self.state, exc)
            except Exception as inner:  # noqa: BLE001 - the run's exception is the one that must surface
                name = getattr(cb, "name", type(cb).__name__)
                warnings.warn(f"callback {name!r} raised {inner!r} in fit_error while the run failed with "
                              f"{exc!r}; the run's error is kept", RuntimeWarning, stacklevel=2)

    def _run(self, resume_from, progress: bool) -> None:
        """The loop plus its outcome: ``status`` and, when it raises, the ``fit_error`` event."""
        self._status = "running"
        try:
            self._loop(resume_from, progress)
        except BaseException as exc:
            self._emit_error(exc)
            self._status = "failed"
            raise
        self._status = "stopped" if self.stopped_early else "finished"

    def _loop(self, resume_from, progress: bool) -> None:
        s = self.state
        self.stopped_early = False
        resume = self._load(resume_from) if resume_from is not None else self._stopped_at
        self._stopped_at = None
        s.knobs = self.controls.values()
        if resume is None:
            self.model.train()  # once per fresh run, so modes callbacks set from here on hold
            self._emit("fit_start")
        else:
            restore_modes(self.model, resume.get("modes"))  # as they were at the stop
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
                        # Continue here on the next start()/fit(): the epoch's RNG states and this batch.
                        self._stopped_at = {"epoch_rng": self._epoch_rng, "batch_index": batch_index,
                                            "rng": rng_state(), "modes": module_modes(self.model)}
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
        """The step boundary: wait while paused, apply knob changes, honour stop, checkpoint. False = stop.

        The pause comes first, so a change made while paused applies to the first step after resume.
        """
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
        self.optimizer.zero_grad(set_to_none=True)
        hooks = self._step_hooks  # None: the plain step; else it owns autocast / backward / optimizer step
        with hooks.forward_context(s) if hooks is not None else contextlib.nullcontext():
            s.outputs = call_model(self.model, s.inputs)
            s.loss = self.loss_fn(s.outputs, s.targets)
        if not torch.isfinite(s.loss):
            raise FloatingPointError(
                f"loss became {s.loss.item()} at step {s.step} (epoch {s.epoch}); lower the learning rate"
            )
        s.loss.backward() if hooks is None else hooks.backward(s)
        self._emit("after_backward")
        self.optimizer.step() if hooks is None else hooks.optimizer_step(s)
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
            "callbacks": {name: cb.state_dict() for name, cb in zip(callback_names(self.callbacks), self.callbacks)},
            "modes": module_modes(self.model),
            "rng": rng_state(),
            "epoch_rng": self._epoch_rng,
        })

    def _load(self, path) -> dict:
        ck = load_checkpoint(path)
        pairs = self._callback_states(path, ck["callbacks"])
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.recorder.restore(ck["recorder"])
        self.controls.load_state_dict(ck["controls"])
        for cb, st in pairs:
            cb.load_state_dict(st)
        s = self.state
        s.epoch, s.batch_index, s.step = ck["epoch"], ck["batch_index"], ck["step"]
        if s.epoch >= self.max_epochs:
            set_rng_state(ck["rng"])
        return ck

    def _callback_states(self, path, saved: dict | list) -> list[tuple[Callback, dict]]:
        """Pair each callback with its saved state by name; warn about callbacks and entries without a partner.

        A list is a checkpoint written before states were keyed by name: it pairs by position and
        needs the same number of callbacks.
        """
        if isinstance(saved, list):
            if len(saved) != len(self.callbacks):
                raise ValueError(
                    f"checkpoint {path} was written with {len(saved)} callbacks (by position, an older format); "
                    f"this Trainer has {len(self.callbacks)}: build the Trainer the same way to resume"
                )
            return list(zip(self.callbacks, saved))
        names = callback_names(self.callbacks)
        for name in sorted(set(saved) - set(names)):
            warnings.warn(f"checkpoint {path} holds state of callback {name!r}, which this Trainer does not have; "
                          f"ignored", RuntimeWarning, stacklevel=5)
        for name in names:
            if name not in saved:
                warnings.warn(f"callback {name!r} is not in checkpoint {path}; it starts fresh", RuntimeWarning,
                              stacklevel=5)
        return [(cb, saved[name]) for name, cb in zip(names, self.callbacks) if name in saved]
