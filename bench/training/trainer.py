"""The plain PyTorch training loop (no HF Trainer, so timing stays under our control).

One optimiser over the method's parameter groups (each with its own learning rate) plus the task head's group,
linear warm-up then linear decay, gradient clipping, evaluation on dev every ``eval_every`` steps, the best-dev
state kept in memory, and the test split evaluated once at the end with that state (docs/protocol.md#model-selection-and-seeds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.backbones.base import Backbone, EncodedSplit
from bench.measurement.contention import ContentionMeter
from bench.measurement.measure import GpuMemory, RssSampler, StepTimes, Stopwatch, sync
from bench.protocol import Interrupted
from bench.spec import TrainConfig
from bench.training import faults
from bench.training import precision as amp
from bench.training.checkpoint import Checkpointer
from bench.training.curves import Logger, LossCurve, NullLogger
from bench.training.loop_state import LoopState
from bench.training.optim import (
    build_optimizer,
    build_scheduler,
    load_trainable_state,
    trainable_parameters,
)
from bench.training.stages import StagePlan, begin_stage

ProgressFn = Callable[[int, float], None]
EvaluateFn = Callable[[int, dict[str, float]], None]  # (step, dev metrics); may raise StopTraining


class StopTraining(Exception):
    """Raised by an ``on_evaluate`` hook to end the loop early (e.g. a pruned search trial)."""


@dataclass
class TrainResult:
    dev_history: list[dict] = field(default_factory=list)  # [{"step", "metrics", "loss"}]
    # [{"step", "loss", "lr"}] (bench/training/curves.py)
    loss_history: list[dict] = field(default_factory=list)
    loss_window: list[float] = field(default_factory=list)  # losses of updated steps since the last entry
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
    # the training loop's (bench/measurement/contention.py), the record's ``contention``
    contention: dict | None = None
    gpu: dict = field(default_factory=dict)
    method_record_init: dict = field(default_factory=dict)
    method_record_best: dict = field(default_factory=dict)
    stages: list[dict] = field(default_factory=list)  # per training stage (bench/training/stages.py)
    test_predictions: list[str] = field(default_factory=list)  # per test example, for paired bootstraps
    test_references: list[str] = field(default_factory=list)
    # earlier attempts' interruptions (bench.training.checkpoint.Checkpointer.note_interruption), the record's
    interruptions: list[dict] = field(default_factory=list)

    def count_step(self, tokens: tuple[int, int], virtual_per_row: int, rows: int, loss: float) -> None:
        """Add one updated step's ``(real tokens, processed positions)``, virtual tokens, rows and loss."""
        real, positions = tokens
        self.real_tokens += real
        self.processed_positions += positions
        self.virtual_tokens += virtual_per_row * rows
        self.samples += rows
        self.final_loss = loss
        self.loss_window.append(loss)


def evaluate(
    backbone: Backbone,
    split: EncodedSplit,
    task,
    train: TrainConfig,
    device: torch.device,
    keep: list[str] | None = None,
) -> dict[str, float]:
    """Predict a split in fixed-size batches and score it with the task's metric; the predicted strings
    are appended to ``keep`` when given (the test split's, stored for per-example bootstraps). Runs under the
    training's autocast (``train.precision``, bench/training/precision.py)."""
    backbone.train(False)
    predictions: list[str] = []
    trim = backbone.trims_batches(train.padding)
    with torch.inference_mode(), amp.autocast(train.precision, device):
        for start in range(0, len(split), train.eval_batch_size):
            rows = slice(start, start + train.eval_batch_size)
            batch = {k: v.to(device) for k, v in split.batch(rows, trim).items()}
            predictions += backbone.predict(batch, train.eval_mode, task.label_strings())
    backbone.train(True)
    if keep is not None:
        keep.extend(predictions)
    return task.compute_metrics(predictions, split.references)


@dataclass
class LoopInputs:
    """Everything the training loop reads (``train_and_evaluate``): the model, the data, the settings, the hooks.

    ``N``: rows of a split, ``s``: ``train.max_length``, ``T``: target length (seq2seq/decoder labels).
    """

    backbone: Backbone  # the model with the method attached (``backbone.method``), already on ``device``
    task: Any  # suites' Task: ``selection_metric``, ``label_strings()``, ``compute_metrics(preds, refs)``
    # Encoded splits: ``input_ids``/``attention_mask`` [N, s], ``labels`` [N] or [N, T], ``references`` (N strings)
    train_split: EncodedSplit
    dev_split: EncodedSplit  # evaluated every ``train.eval_every`` steps; the best-dev state is kept
    test_split: EncodedSplit | None  # evaluated once at the end with that state; None (search trials): never
    train: TrainConfig  # the loop's settings (steps, batch size, schedule, precision, NaN policy, ...)
    seed: int  # the batch order's generator (and the between-stage batches, bench/training/stages.py)
    device: torch.device
    progress: ProgressFn | None = None  # progress(step, loss) after each updated step
    checkpoint: Checkpointer | None = None  # resume from its file; save every ``checkpoint.every`` steps
    # on_evaluate(step, dev_metrics) after each periodic dev evaluation; raising StopTraining ends the loop there
    on_evaluate: EvaluateFn | None = None
    logger: Logger | None = None  # bench/training/curves.py (e.g. TensorBoard); the caller closes it


def train_and_evaluate(inputs: LoopInputs) -> TrainResult:
    """Train, select on dev, evaluate test (see :class:`LoopInputs` for what each input does).

    An exception leaving the loop carries how far the run got as ``exc.partial_result`` (this
    ``TrainResult``: steps, last loss, dev history), so the worker can write it into the failed record.
    When ``on_evaluate`` raises ``StopTraining`` the loop ends early and ``result.stopped`` says why.
    """
    result = TrainResult(step_times=StepTimes(inputs.train.timing_warmup_steps))
    try:
        with amp.math_mode(amp.resolve(inputs.train.precision, inputs.device), inputs.device):  # tf32 on/off
            return _train(result, inputs)
    except BaseException as exc:
        exc.partial_result = result
        raise


@contextmanager
def _noting(checkpoint: Checkpointer | None, result: TrainResult, state: LoopState, eval_watch: Stopwatch):
    """Around the loop: an ``Interrupted`` worker (the cluster stops it) notes the step reached and the training
    seconds since the last checkpoint, which are lost, before it ends (``Checkpointer.note_interruption``)."""
    loop_start = time.perf_counter()
    try:
        yield
    except Interrupted as stop:
        if checkpoint is not None:
            train_s = state.time_before + time.perf_counter() - loop_start - eval_watch.total
            checkpoint.note_interruption(result.steps, train_s, stop.signal)
        raise


def _train(result: TrainResult, inputs: LoopInputs) -> TrainResult:
    """Train, keep the best-dev state, evaluate dev and (unless ``test_split`` is None) test with it.

    ``on_evaluate(step, dev_metrics)`` runs after each periodic dev evaluation; raising ``StopTraining`` ends
    the loop there (the result keeps what was done, ``stopped`` says why). A search passes no test split, so
    the test data is never evaluated.
    """
    backbone, task, train, device = inputs.backbone, inputs.task, inputs.train, inputs.device
    train_split, dev_split, test_split, seed = (
        inputs.train_split,
        inputs.dev_split,
        inputs.test_split,
        inputs.seed,
    )
    progress, checkpoint, on_evaluate = inputs.progress, inputs.checkpoint, inputs.on_evaluate
    logger = inputs.logger or NullLogger()
    method = backbone.method
    result.method_record_init = method.record()
    plan = StagePlan(method.training_stages(train.max_steps))  # one stage of max_steps unless multi-stage
    if len(plan.stages) > 1 and checkpoint is not None:
        checkpoint = None  # resuming inside a later stage (pruned masks, rebuilt optimiser) is not supported
    params = trainable_parameters(backbone)
    optimizer = build_optimizer(method, backbone, train)
    order = torch.Generator().manual_seed(seed)
    state = LoopState(
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, train, plan.stages[0].max_steps),
        order=order,
        permutation=torch.randperm(len(train_split), generator=order),
    )
    injected = faults.active(seed)  # test-only fault injection; empty in real runs
    gpu = GpuMemory(device)
    gpu.reset()  # after load/wrap/move: peaks are over this baseline
    eval_watch = Stopwatch(device)
    saved = checkpoint.load(method.checkpoint_state()) if checkpoint else None
    if saved is not None:
        eval_watch.total = state.restore(saved, backbone, result, device)
    result.interruptions = checkpoint.interruptions() if checkpoint else []
    first_step = result.steps + 1
    curve = LossCurve(train.log_every, result, logger)
    logger.start(first_step)
    backbone.train(True)

    trim = backbone.trims_batches(train.padding)
    # bf16: forward and loss under autocast; weights, gradients and AdamW state stay fp32, no loss scaler needed
    ctx = amp.autocast(train.precision, device)
    sync(device)
    loop_start = time.perf_counter()
    plan.stage_began(0, loop_start, 0.0, trainable_params=method.stage_trainable_params())
    meter = ContentionMeter()
    with (
        meter,
        RssSampler(on_sample=meter.sample_load) as rss,
        _noting(checkpoint, result, state, eval_watch),
    ):
        for step in range(first_step, plan.total_steps + 1):
            if (stage := plan.starts_later_stage(step)) is not None:  # the trainable set may change
                args = (backbone, train_split, train, seed, device, eval_watch.total, build_optimizer)
                state.optimizer, state.scheduler = begin_stage(plan, stage, *args)
                params = trainable_parameters(backbone)
            index = state.next_indices(len(train_split), train.batch_size)
            batch = {k: v.to(device, non_blocking=True) for k, v in train_split.batch(index, trim).items()}
            lrs = state.learning_rates() if curve.closes_with_next_update() else None  # this step's rates

            # ---- the timed step: forward, backward, update ----
            sync(device)
            start = time.perf_counter()
            result.steps = step  # the step reached, also for a run that fails in it
            with ctx:
                loss = backbone.loss(batch)
            if injected:
                loss = faults.at_step(injected, step, loss)
            loss.backward()  # before the finiteness check, so a GPU is not synchronised between forward and backward
            if torch.isfinite(loss):
                state.update(params, train)
                sync(device)
                result.step_times.add(time.perf_counter() - start)
                result.count_step(
                    backbone.count_tokens(batch), method.num_virtual_tokens, len(index), loss.item()
                )
                curve.updated(step, lrs)  # after the timed part: a full window becomes a loss_history entry
                if progress:
                    progress(step, result.final_loss)
            else:
                state.skip_nonfinite(loss, step, train)
                result.nan_skipped_batches += 1  # nan_policy=skip: this batch gives no update

            if plan.evaluates(step, train.eval_every):
                with eval_watch:
                    metrics = evaluate(backbone, dev_split, task, train, device)
                result.dev_history.append({"step": step, "metrics": metrics, "loss": result.final_loss})
                logger.log_eval(step, metrics)
                if state.select(metrics[task.selection_metric], backbone):
                    result.best_step = step
                if on_evaluate is not None:
                    try:
                        on_evaluate(step, metrics)
                    except StopTraining as stop:
                        result.stopped = str(stop) or f"stopped at step {step}"
                        break
            if checkpoint and checkpoint.due(step, plan.total_steps):
                loop_s = state.time_before + time.perf_counter() - loop_start
                checkpoint.save(state.snapshot(backbone, result, device, eval_watch.total, loop_s))
        if state.best_state is None:  # every step skipped or no evaluation reached: nothing to select
            raise FloatingPointError(f"no usable dev evaluation in {train.max_steps} steps (non-finite)")
        sync(device)
        loop_seconds = state.time_before + time.perf_counter() - loop_start
        result.peak_rss_train_bytes = rss.peak
    result.contention = meter.result
    result.stages = plan.finish(loop_start + loop_seconds, eval_watch.total, result.step_times.seconds)

    # Wall time of the loop (batching, transfer, forward, backward, clipping, optimiser) minus evaluation.
    result.train_time_s = loop_seconds - eval_watch.total
    result.gpu = gpu.peaks()
    load_trainable_state(backbone, state.best_state)
    result.method_record_best = method.record()
    with eval_watch:
        best = _best_dev_metrics(result)  # the loop's last evaluation's, when it selected the state held
        result.dev_metrics = best if best is not None else evaluate(backbone, dev_split, task, train, device)
        if test_split is not None:
            result.test_metrics = evaluate(backbone, test_split, task, train, device, result.test_predictions)
            result.test_references = list(test_split.references)
    result.eval_time_s = eval_watch.total
    if result.test_metrics:
        logger.log_eval(result.best_step, result.test_metrics, "test")  # at the step whose state was tested
    return result


def _best_dev_metrics(result: TrainResult) -> dict[str, float] | None:
    """The best state's dev metrics without a second pass over dev when the loop ended on the evaluation that
    selected it: the model then holds that very state (nothing trained since), and evaluation is deterministic
    (inference mode, no dropout), so re-evaluating would repeat the same forward over the same rows. None when
    a step ran after the selection (a later evaluation was worse, or steps followed it): dev is evaluated again.

    Skipping the repeat halves the quick preset's evaluation (its only evaluation is at the last step) and keeps
    the run's peak memory at one evaluation's (docs/performance.md#harness-vs-peft-on-a-real-job)."""
    last = result.dev_history[-1] if result.dev_history else None
    if last is None or result.best_step != result.steps or last["step"] != result.steps:
        return None
    return dict(last["metrics"])
