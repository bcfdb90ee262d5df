"""Multi-stage training for the plain loop: which global step belongs to which stage, what happens between
stages, and per-stage timing. Method-agnostic: a method declares its stages (``Method.training_stages``) and
prepares each later one (``Method.begin_stage``); the trainer never names a method.

A one-stage method (every method but XPrompt) gets one stage of ``train.max_steps`` and the loop behaves
exactly as before: same optimiser, same schedule, same data order, evaluation every ``eval_every`` steps and at
the last step.

Decisions [dec]:

* Global step numbers run through all stages (``dev_history`` and progress use them).
* Dev evaluation and best-checkpoint selection happen in the **final** stage only, every ``eval_every`` steps
  of that stage and at its last step: earlier stages hand their final values to the next (XPrompt rewinds to
  the stage-1 *final* values, docs/methods/xprompt.md), and a checkpoint from an earlier stage would have a different
  trainable set.
* Each stage gets a fresh optimiser and a fresh linear schedule with ``train.warmup_steps`` warm-up.
* The training batch order continues across stages (one generator); the between-stage hook draws its batches
  from a separate generator seeded with the run seed and the stage index, so it never shifts the training
  order.
* Time spent in the between-stage hook (XPrompt's importance scoring) counts as training time: it is part of
  the run's ``train_time_s`` and of its stage's ``train_time_s``, and is also reported as ``prepare_time_s``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch
from transformers import get_linear_schedule_with_warmup

from bench.backbones.base import Backbone, EncodedSplit
from bench.spec import TrainConfig
from bench.training.precision import autocast
from methods.base import StageContext, TrainingStage


class StagePlan:
    """The method's stages laid out on global steps ``1..total_steps``, with per-stage timing."""

    def __init__(self, stages: list[TrainingStage]) -> None:
        if not stages:
            raise ValueError("a method must declare at least one training stage")
        for stage in stages:
            if stage.max_steps < 1:
                raise ValueError(
                    f"training stage {stage.name!r} has max_steps={stage.max_steps}; must be >= 1"
                )
        self.stages = stages
        self.starts = []  # first global step of each stage
        step = 1
        for stage in stages:
            self.starts.append(step)
            step += stage.max_steps
        self.total_steps = step - 1
        self.info: list[dict] = [{"name": s.name, "max_steps": s.max_steps} for s in stages]
        self._stage_start_time: float | None = None
        self._eval_at_start = 0.0

    @property
    def final_start(self) -> int:
        return self.starts[-1]

    def starts_later_stage(self, step: int) -> int | None:
        """The index of the stage that begins at ``step`` if it is not the first, else None."""
        return self.starts.index(step) if step in self.starts[1:] else None

    def evaluates(self, step: int, eval_every: int) -> bool:
        """Dev evaluation: in the final stage, every ``eval_every`` of its steps and at the last step."""
        if step < self.final_start:
            return False
        return (step - self.final_start + 1) % eval_every == 0 or step == self.total_steps

    def stage_began(self, index: int, now: float, eval_total: float, **facts) -> None:
        if index:
            self._close(index - 1, now, eval_total)
        self._stage_start_time, self._eval_at_start = now, eval_total
        self.info[index].update(facts)

    def _close(self, index: int, now: float, eval_total: float) -> None:
        if index < 0 or self._stage_start_time is None:
            return
        wall = now - self._stage_start_time - (eval_total - self._eval_at_start)
        self.info[index]["train_time_s"] = wall
        self.info[index]["steps"] = self.stages[index].max_steps

    def finish(self, now: float, eval_total: float, step_seconds: list[float]) -> list[dict]:
        """Close the last stage and attach per-stage step counts and median step times."""
        self._close(len(self.stages) - 1, now, eval_total)
        for i, start in enumerate(self.starts):
            times = sorted(step_seconds[start - 1 : start - 1 + self.stages[i].max_steps])
            self.info[i]["step_time_ms_median"] = times[len(times) // 2] * 1000 if times else None
        return self.info


def scoring_batches(
    split: EncodedSplit, batch_size: int, seed: int, device: torch.device, trim: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """An endless stream of random training batches (its own generator: the training order is untouched)."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        permutation = torch.randperm(len(split), generator=generator)
        for start in range(0, len(permutation) - batch_size + 1, batch_size):
            index = permutation[start : start + batch_size]
            yield {k: v.to(device, non_blocking=True) for k, v in split.batch(index, trim).items()}


def _under_autocast(loss_fn, train: TrainConfig, device: torch.device):
    """The loss as the training step computes it: under the run's autocast (bench/training/precision.py)."""

    def loss(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast(train.precision, device):
            return loss_fn(batch)

    return loss


def begin_stage(
    plan: StagePlan,
    index: int,
    backbone: Backbone,
    train_split: EncodedSplit,
    train: TrainConfig,
    seed: int,
    device: torch.device,
    eval_total: float,
    build_optimizer,
):
    """Let the method prepare stage ``index`` (>= 1), then a new optimiser and schedule for its parameters."""
    method = backbone.method
    start = time.perf_counter()
    plan.stage_began(index, start, eval_total)
    context = StageContext(
        batches=scoring_batches(
            train_split, train.batch_size, seed * 1000 + index, device, backbone.trims_batches(train.padding)
        ),
        loss=_under_autocast(backbone.loss, train, device),
    )
    backbone.train(False)
    method.begin_stage(index, context)
    backbone.train(True)
    optimizer = build_optimizer(method, backbone, train)
    scheduler = get_linear_schedule_with_warmup(optimizer, train.warmup_steps, plan.stages[index].max_steps)
    plan.info[index].update(
        prepare_time_s=time.perf_counter() - start, trainable_params=method.stage_trainable_params()
    )
    return optimizer, scheduler
