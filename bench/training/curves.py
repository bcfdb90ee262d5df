"""Learning curves while a run trains: the loss history kept in the record, and the live logger hook.

The record keeps the training loss every ``train.log_every`` updated steps as the mean over that window,
with the learning rate of the method's first optimiser group (``metrics["loss_history"]``,
docs/records.md#learning-curves). The per-step losses are the floats the loop already reads for its progress
line (``TrainResult.count_step``), so the curve adds no device synchronisation. A non-finite (skipped) batch
is no updated step and never enters a window; a last window shorter than ``log_every`` is not written, so a
run of ``n`` updated steps has ``n // log_every`` entries. Multi-stage methods (XPrompt) keep counting global
steps across stages, and a window may span a stage boundary.

A ``Logger`` receives the same points as they happen (``bench run --log-dir``: TensorBoard event files,
``bench/training/tensorboard_log.py``); the loop calls it only at window ends and evaluations, after the timed part
of the step, so it never enters the step times. ``NullLogger`` is the default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bench.training.trainer import TrainResult


class Logger(Protocol):
    """What the training loop reports while it runs; every method is called between timed steps."""

    def start(self, first_step: int) -> None:
        """Called once before the first step the loop runs (``first_step`` > 1 when resuming)."""

    def log_train(self, step: int, loss: float, lrs: dict[str, float], step_ms: float) -> None:
        """One loss window ending at ``step``: its mean loss, every group's learning rate by group name
        (the rates that step used) and the window's mean step time in ms."""

    def log_eval(self, step: int, metrics: dict[str, float], split: str = "dev") -> None:
        """An evaluation's metrics (×100): dev at each periodic evaluation, test once at the end."""

    def close(self) -> None:
        """Flush and release whatever the logger holds."""


class NullLogger:
    """The default logger: writes nothing."""

    def start(self, first_step: int) -> None:
        pass

    def log_train(self, step: int, loss: float, lrs: dict[str, float], step_ms: float) -> None:
        pass

    def log_eval(self, step: int, metrics: dict[str, float], split: str = "dev") -> None:
        pass

    def close(self) -> None:
        pass


class LossCurve:
    """Closes the loss windows of one run into ``result.loss_history`` and hands each to the logger.

    The open window lives in ``result.loss_window`` (the losses of the updated steps since the last entry) so
    that a checkpoint snapshot carries it and a resumed run continues the same windows (``bench/training/loop_state.py``).
    """

    def __init__(self, every: int, result: TrainResult, logger: Logger) -> None:
        self.every, self.result, self.logger = every, result, logger

    def closes_with_next_update(self) -> bool:
        """True if the next updated step ends a window: the loop then reads the learning rates before it."""
        return len(self.result.loss_window) + 1 >= self.every

    def updated(self, step: int, lrs: dict[str, float] | None) -> None:
        """After an updated step (its loss already in the window): close the window if it is full.

        ``lrs``: every optimiser group's learning rate by name, as read before the step (None unless
        :meth:`closes_with_next_update` said the step would close the window)."""
        window = self.result.loss_window
        if len(window) < self.every or lrs is None:
            return
        n = len(window)
        loss = sum(window) / n
        step_ms = 1000 * sum(self.result.step_times.seconds[-n:]) / n  # one time per updated step
        self.result.loss_history.append({"step": step, "loss": loss, "lr": next(iter(lrs.values()))})
        self.result.loss_window = []
        self.logger.log_train(step, loss, lrs, step_ms)
