"""The training loop's mutable state, and what the loop does around its timed step.

``LoopState`` holds everything the rest of a run depends on (optimiser, schedule, data order, best-dev state,
NaN streak), so resuming from a checkpoint and writing one are two methods here, and the loop in
``bench/training/trainer.py`` reads as the loop it is: batch, step, evaluate, select.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from bench.backbones.base import Backbone
from bench.spec import TrainConfig
from bench.training.optim import load_trainable_state, trainable_state

# TrainResult fields a snapshot keeps (the others are filled after the loop).
RESULT_KEYS = (
    "dev_history",
    "loss_history",
    "loss_window",
    "best_step",
    "steps",
    "real_tokens",
    "processed_positions",
    "virtual_tokens",
    "samples",
    "final_loss",
    "nan_skipped_batches",
)


@dataclass
class LoopState:
    optimizer: torch.optim.Optimizer
    scheduler: Any
    order: torch.Generator  # draws the epoch permutations
    permutation: torch.Tensor  # [n_train] this epoch's example order
    cursor: int = 0
    nan_streak: int = 0
    best_score: float = -math.inf
    best_state: dict[str, torch.Tensor] | None = None
    time_before: float = 0.0  # loop seconds of earlier attempts (resumed runs)

    def next_indices(self, n_train: int, batch_size: int) -> torch.Tensor:
        """The next batch's example indices ``[batch_size]``; a new epoch drops the ragged tail."""
        if self.cursor + batch_size > len(self.permutation):
            self.permutation, self.cursor = torch.randperm(n_train, generator=self.order), 0
        index = self.permutation[self.cursor : self.cursor + batch_size]
        self.cursor += batch_size
        return index

    def update(self, params: list[torch.nn.Parameter], train: TrainConfig) -> None:
        """The optimiser step after a finite loss: clip, step, schedule, clear."""
        self.nan_streak = 0
        if train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def learning_rates(self) -> dict[str, float]:
        """Every optimiser group's current learning rate by group name (the method's groups, then "head")."""
        return {g.get("name", f"group{i}"): g["lr"] for i, g in enumerate(self.optimizer.param_groups)}

    def skip_nonfinite(self, loss: torch.Tensor, step: int, train: TrainConfig) -> None:
        """``nan_policy``: "stop" fails the run here; "skip" drops the batch (no update) unless that makes more
        than ``max_nan_skips`` in a row. The caller counts the skipped batch."""
        self.nan_streak += 1
        if train.nan_policy == "stop" or self.nan_streak > train.max_nan_skips:
            why = "" if train.nan_policy == "stop" else f" ({self.nan_streak} in a row > max_nan_skips)"
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}{why}")
        self.optimizer.zero_grad(set_to_none=True)

    def select(self, score: float, backbone: Backbone) -> bool:
        """Keep the trainable state if ``score`` is the best dev score so far; True if it is."""
        if score > self.best_score:
            self.best_score, self.best_state = score, trainable_state(backbone)
            return True
        return False

    def snapshot(
        self, backbone: Backbone, result, device: torch.device, eval_s: float, loop_s: float
    ) -> dict:
        """Everything the rest of the loop depends on (see ``bench.training.checkpoint``)."""
        return {
            "trainable": trainable_state(backbone),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "order": self.order.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "permutation": self.permutation,
            "cursor": self.cursor,
            "nan_streak": self.nan_streak,
            "best_score": self.best_score,
            "best_state": self.best_state,
            "result": {k: getattr(result, k) for k in RESULT_KEYS},
            "method_state": backbone.method.checkpoint_state(),  # its training counters (router load)
            "step_seconds": list(result.step_times.seconds),
            "eval_time_s": eval_s,
            "loop_time_s": loop_s,
        }

    def restore(self, saved: dict, backbone: Backbone, result, device: torch.device) -> float:
        """Continue from a snapshot: the trainable state, the method's other state, optimiser, schedule, data
        order, RNGs and the result so far; returns the evaluation seconds already spent."""
        load_trainable_state(backbone, saved["trainable"])
        backbone.method.load_checkpoint_state(saved["method_state"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.order.set_state(saved["order"])
        torch.set_rng_state(saved["torch_rng"])
        if device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        self.permutation, self.cursor, self.nan_streak = (
            saved["permutation"],
            saved["cursor"],
            saved["nan_streak"],
        )
        self.best_score, self.best_state = saved["best_score"], saved["best_state"]
        for key, value in saved["result"].items():
            setattr(result, key, value)
        result.step_times.seconds = saved["step_seconds"]
        self.time_before = saved["loop_time_s"]
        return saved["eval_time_s"]
