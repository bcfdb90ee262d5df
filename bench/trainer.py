"""The plain PyTorch training loop (no HF Trainer, so timing stays under our control).

One optimiser over the method's parameter groups (each with its own learning rate) plus the task head's group,
linear warm-up then linear decay, gradient clipping, evaluation on dev every ``eval_every`` steps, the best-dev
state kept in memory, and the test split evaluated once at the end with that state (METHODS.md §5.4).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bench import faults
from bench.backbones import Backbone, EncodedSplit
from bench.checkpoint import Checkpointer
from bench.measure import GpuMemory, RssSampler, StepTimes, Stopwatch, sync
from bench.optim import (
    build_optimizer,
    build_scheduler,
    load_trainable_state,
    trainable_parameters,
    trainable_state,
)
from bench.spec import TrainConfig
from bench.stages import StagePlan, begin_stage

ProgressFn = Callable[[int, float], None]
EvaluateFn = Callable[[int, dict[str, float]], None]  # (step, dev metrics); may raise StopTraining


class StopTraining(Exception):
    """Raised by an ``on_evaluate`` hook to end the loop early (e.g. a pruned search trial)."""


@dataclass
class TrainResult:
    dev_history: list[dict] = field(default_factory=list)  # [{"step", "metrics", "loss"}]
    best_step: int | None = None
    dev_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    steps: int = 0
    step_times: StepTimes | None = None
    real_tokens: int = 0
    processed_positions: int = 0
    virtual_tokens: int = 0
    samples: int = 0
    final_loss: float | None = None
    nan_skipped_batches: int = 0
    stopped: str | None = None  # why an on_evaluate hook ended the loop early, else None
    peak_rss_train_bytes: int | None = None
    gpu: dict = field(default_factory=dict)
    method_record_init: dict = field(default_factory=dict)
    method_record_best: dict = field(default_factory=dict)
    stages: list[dict] = field(default_factory=list)  # per training stage (bench/stages.py)
    test_predictions: list[str] = field(default_factory=list)  # per test example, for paired bootstraps
    test_references: list[str] = field(default_factory=list)


def evaluate(
    backbone: Backbone,
    split: EncodedSplit,
    task,
    train: TrainConfig,
    device: torch.device,
    keep: list[str] | None = None,
) -> dict[str, float]:
    """Predict a split in fixed-size batches and score it with the task's metric; the predicted strings
    are appended to ``keep`` when given (the test split's, stored for per-example bootstraps)."""
    backbone.train(False)
    predictions: list[str] = []
    trim = backbone.trims_batches(train.padding)
    with torch.inference_mode():
        for start in range(0, len(split), train.eval_batch_size):
            rows = slice(start, start + train.eval_batch_size)
            batch = {k: v.to(device) for k, v in split.batch(rows, trim).items()}
            predictions += backbone.predict(batch, train.eval_mode, task.label_strings())
    backbone.train(True)
    if keep is not None:
        keep.extend(predictions)
    return task.compute_metrics(predictions, split.references)


def train_and_evaluate(
    backbone: Backbone,
    task,
    train_split: EncodedSplit,
    dev_split: EncodedSplit,
    test_split: EncodedSplit | None,
    train: TrainConfig,
    seed: int,
    device: torch.device,
    progress: ProgressFn | None = None,
    checkpoint: Checkpointer | None = None,
    on_evaluate: EvaluateFn | None = None,
) -> TrainResult:
    """Train, select on dev, evaluate test.

    An exception leaving the loop carries how far the run got as ``exc.partial_result`` (this
    ``TrainResult``: steps, last loss, dev history), so the worker can write it into the failed record.
    With ``checkpoint``, the loop resumes from its saved state and saves every ``checkpoint.every`` steps.
    ``on_evaluate(step, dev_metrics)`` runs after each dev evaluation and may raise ``StopTraining`` (a search
    trial's pruner): the loop then ends early and ``result.stopped`` says why. ``test_split=None`` (search
    trials) never evaluates test.
    """
    result = TrainResult(step_times=StepTimes(train.timing_warmup_steps))
    try:
        return _train(
            result,
            backbone,
            task,
            train_split,
            dev_split,
            test_split,
            train,
            seed,
            device,
            progress,
            checkpoint,
            on_evaluate,
        )
    except BaseException as exc:
        exc.partial_result = result
        raise


def _train(
    result: TrainResult,
    backbone: Backbone,
    task,
    train_split: EncodedSplit,
    dev_split: EncodedSplit,
    test_split: EncodedSplit,
    train: TrainConfig,
    seed: int,
    device: torch.device,
    progress: ProgressFn | None,
    checkpoint: Checkpointer | None,
    on_evaluate: EvaluateFn | None,
) -> TrainResult:
    """Train, keep the best-dev state, evaluate dev and (unless ``test_split`` is None) test with it.

    ``on_evaluate(step, dev_metrics)`` runs after each periodic dev evaluation; raising ``StopTraining`` ends
    the loop there (the result keeps what was done, ``stopped`` says why). A search passes no test split, so
    the test data is never evaluated.
    """
    method = backbone.method
    result.method_record_init = method.record()
    plan = StagePlan(method.training_stages(train.max_steps))  # one stage of max_steps unless multi-stage
    if len(plan.stages) > 1 and checkpoint is not None:
        checkpoint = None  # resuming inside a later stage (pruned masks, rebuilt optimiser) is not supported
    params = trainable_parameters(backbone)
    optimizer = build_optimizer(method, backbone, train)
    scheduler = build_scheduler(optimizer, train, plan.stages[0].max_steps)
    order = torch.Generator().manual_seed(seed)
    injected = faults.active(seed)  # test-only fault injection; empty in real runs
    gpu = GpuMemory(device)
    gpu.reset()  # after load/wrap/move: peaks are over this baseline
    eval_watch = Stopwatch(device)
    best_score, best_state = -math.inf, None
    permutation, cursor = torch.randperm(len(train_split), generator=order), 0
    first_step, nan_streak, time_before = 1, 0, 0.0
    saved = checkpoint.load() if checkpoint else None
    if saved is not None:
        load_trainable_state(backbone, saved["trainable"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        order.set_state(saved["order"])
        torch.set_rng_state(saved["torch_rng"])
        if device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        permutation, cursor, nan_streak = saved["permutation"], saved["cursor"], saved["nan_streak"]
        best_score, best_state = saved["best_score"], saved["best_state"]
        for key, value in saved["result"].items():
            setattr(result, key, value)
        result.step_times.seconds = saved["step_seconds"]
        eval_watch.total, time_before = saved["eval_time_s"], saved["loop_time_s"]
        first_step = result.steps + 1
    backbone.train(True)

    def snapshot(loop_time_s: float) -> dict:
        """Everything the rest of the loop depends on (see ``bench.checkpoint``)."""
        keep = ("dev_history", "best_step", "steps", "real_tokens", "processed_positions", "virtual_tokens")
        keep += ("samples", "final_loss", "nan_skipped_batches")
        return {
            "trainable": trainable_state(backbone),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "order": order.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "permutation": permutation,
            "cursor": cursor,
            "nan_streak": nan_streak,
            "best_score": best_score,
            "best_state": best_state,
            "result": {k: getattr(result, k) for k in keep},
            "step_seconds": list(result.step_times.seconds),
            "eval_time_s": eval_watch.total,
            "loop_time_s": loop_time_s,
        }

    trim = backbone.trims_batches(train.padding)
    sync(device)
    loop_start = time.perf_counter()
    plan.stage_began(0, loop_start, 0.0, trainable_params=method.counts().trainable_params)
    with RssSampler() as rss:
        for step in range(first_step, plan.total_steps + 1):
            if (stage := plan.starts_later_stage(step)) is not None:  # the trainable set may change
                args = (backbone, train_split, train, seed, device, eval_watch.total, build_optimizer)
                optimizer, scheduler = begin_stage(plan, stage, *args)
                params = trainable_parameters(backbone)
            if cursor + train.batch_size > len(permutation):  # new epoch; drop the ragged tail
                permutation, cursor = torch.randperm(len(train_split), generator=order), 0
            index = permutation[cursor : cursor + train.batch_size]
            cursor += train.batch_size
            batch = {k: v.to(device, non_blocking=True) for k, v in train_split.batch(index, trim).items()}

            sync(device)
            start = time.perf_counter()
            result.steps = step  # the step reached, also for a run that fails in it
            loss = backbone.loss(batch)
            if injected:
                loss = faults.at_step(injected, step, loss)
            loss.backward()  # before the finiteness check, so a GPU is not synchronised between forward and backward
            if torch.isfinite(loss):
                nan_streak = 0
                if train.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                sync(device)
                result.step_times.add(time.perf_counter() - start)

                real, positions = backbone.count_tokens(batch)
                result.real_tokens += real
                result.processed_positions += positions
                result.virtual_tokens += method.num_virtual_tokens * len(index)
                result.samples += len(index)
                result.final_loss = loss.item()
                if progress:
                    progress(step, result.final_loss)
            else:
                nan_streak += 1
                if train.nan_policy == "stop" or nan_streak > train.max_nan_skips:
                    why = "" if train.nan_policy == "stop" else f" ({nan_streak} in a row > max_nan_skips)"
                    raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}{why}")
                result.nan_skipped_batches += 1  # nan_policy=skip: this batch gives no update
                optimizer.zero_grad(set_to_none=True)

            if plan.evaluates(step, train.eval_every):
                with eval_watch:
                    metrics = evaluate(backbone, dev_split, task, train, device)
                result.dev_history.append({"step": step, "metrics": metrics, "loss": result.final_loss})
                score = metrics[task.selection_metric]
                if score > best_score:
                    best_score, best_state, result.best_step = score, trainable_state(backbone), step
                if on_evaluate is not None:
                    try:
                        on_evaluate(step, metrics)
                    except StopTraining as stop:
                        result.stopped = str(stop) or f"stopped at step {step}"
                        break
            if checkpoint and checkpoint.due(step, plan.total_steps):
                checkpoint.save(snapshot(time_before + time.perf_counter() - loop_start))
        if best_state is None:  # every step skipped or no evaluation reached: nothing to select
            raise FloatingPointError(f"no usable dev evaluation in {train.max_steps} steps (non-finite)")
        sync(device)
        loop_seconds = time_before + time.perf_counter() - loop_start
        result.peak_rss_train_bytes = rss.peak
    result.stages = plan.finish(loop_start + loop_seconds, eval_watch.total, result.step_times.seconds)

    # Wall time of the loop (batching, transfer, forward, backward, clipping, optimiser) minus evaluation.
    result.train_time_s = loop_seconds - eval_watch.total
    result.gpu = gpu.peaks()
    load_trainable_state(backbone, best_state)
    result.method_record_best = method.record()
    with eval_watch:
        result.dev_metrics = evaluate(backbone, dev_split, task, train, device)
        if test_split is not None:
            result.test_metrics = evaluate(backbone, test_split, task, train, device, result.test_predictions)
            result.test_references = list(test_split.references)
    result.eval_time_s = eval_watch.total
    return result


# Old names (tests and parallel branches import them from here).
_state, _load_state = trainable_state, load_trainable_state
__all__ = ["build_optimizer", "trainable_parameters", "train_and_evaluate", "evaluate", "TrainResult"]
