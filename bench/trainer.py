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
from transformers import get_linear_schedule_with_warmup

from bench.backbones import Backbone, EncodedSplit
from bench.measure import GpuMemory, RssSampler, StepTimes, Stopwatch, sync
from bench.spec import TrainConfig
from methods.base import Method

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
    stopped: str | None = None  # why an on_evaluate hook ended the loop early, else None
    peak_rss_train_bytes: int | None = None
    gpu: dict = field(default_factory=dict)
    method_record_init: dict = field(default_factory=dict)
    method_record_best: dict = field(default_factory=dict)


def trainable_parameters(backbone: Backbone) -> list[torch.nn.Parameter]:
    """Every parameter the optimiser updates: the method's groups and the task head."""
    params = [p for g in backbone.method.param_groups() for p in g.params] + backbone.head_parameters()
    return list({id(p): p for p in params}.values())


def build_optimizer(method: Method, backbone: Backbone, train: TrainConfig) -> torch.optim.Optimizer:
    groups = [
        {"params": g.params, "lr": g.lr, "weight_decay": g.weight_decay, "name": g.name}
        for g in method.param_groups()
        if g.params
    ]
    head = backbone.head_parameters()
    if head:
        groups.append({"params": head, "lr": train.head_lr, "weight_decay": 0.0, "name": "head"})
    if method.config.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        # The prompt-tuning code's Adafactor: fixed lr, no parameter scaling, decay rate 0.8 (METHODS.md §3.1).
        return Adafactor(
            groups, scale_parameter=False, relative_step=False, warmup_init=False, decay_rate=-0.8
        )
    return torch.optim.AdamW(groups, eps=method.config.adam_eps)


def _state(backbone: Backbone) -> dict[str, torch.Tensor]:
    """The trainable state to keep for the best checkpoint: method + head, cloned."""
    state = {f"method.{k}": v for k, v in backbone.method.state_dict().items()}
    head = backbone.head_parameters()
    for i, p in enumerate(head):
        state[f"head.{i}"] = p
    if backbone.method.attach == "wrap":
        trainable = {id(p) for p in trainable_parameters(backbone)}
        for name, p in backbone.model.named_parameters():
            if id(p) in trainable:
                state[f"model.{name}"] = p
    return {k: v.detach().clone() for k, v in state.items()}


def _load_state(backbone: Backbone, state: dict[str, torch.Tensor]) -> None:
    method_state = {k[len("method.") :]: v for k, v in state.items() if k.startswith("method.")}
    backbone.method.load_state_dict(method_state)
    with torch.no_grad():
        for i, p in enumerate(backbone.head_parameters()):
            p.copy_(state[f"head.{i}"])
        params = dict(backbone.model.named_parameters())
        for key, value in state.items():
            if key.startswith("model."):
                params[key[len("model.") :]].copy_(value)


def evaluate(
    backbone: Backbone, split: EncodedSplit, task, train: TrainConfig, device: torch.device
) -> dict[str, float]:
    """Predict a split in fixed-size batches and score it with the task's metric."""
    backbone.train(False)
    predictions: list[str] = []
    with torch.inference_mode():
        for start in range(0, len(split), train.eval_batch_size):
            batch = {
                k: v.to(device) for k, v in split.batch(slice(start, start + train.eval_batch_size)).items()
            }
            predictions += backbone.predict(batch, train.eval_mode, task.label_strings())
    backbone.train(True)
    return task.compute_metrics(predictions, split.references)


def _count_tokens(batch: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Real tokens (non-pad source + target) and processed positions (padded) of a batch."""
    mask, labels = batch["attention_mask"], batch["labels"]
    targets = int((labels != -100).sum()) if labels.dim() == 2 else 0
    positions = mask.numel() + (labels.numel() if labels.dim() == 2 else 0)
    return int(mask.sum()) + targets, positions


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
    on_evaluate: EvaluateFn | None = None,
) -> TrainResult:
    """Train, keep the best-dev state, evaluate dev and (unless ``test_split`` is None) test with it.

    ``on_evaluate(step, dev_metrics)`` runs after each periodic dev evaluation; raising ``StopTraining`` ends
    the loop there (the result keeps what was done, ``stopped`` says why). A search passes no test split, so
    the test data is never evaluated.
    """
    method = backbone.method
    result = TrainResult(step_times=StepTimes(train.timing_warmup_steps))
    result.method_record_init = method.record()
    params = trainable_parameters(backbone)
    optimizer = build_optimizer(method, backbone, train)
    scheduler = get_linear_schedule_with_warmup(optimizer, train.warmup_steps, train.max_steps)
    order = torch.Generator().manual_seed(seed)
    gpu = GpuMemory(device)
    gpu.reset()  # after load/wrap/move: peaks are over this baseline
    eval_watch = Stopwatch(device)
    best_score, best_state = -math.inf, None
    permutation, cursor = torch.randperm(len(train_split), generator=order), 0
    backbone.train(True)

    sync(device)
    loop_start = time.perf_counter()
    with RssSampler() as rss:
        for step in range(1, train.max_steps + 1):
            if cursor + train.batch_size > len(permutation):  # new epoch; drop the ragged tail
                permutation, cursor = torch.randperm(len(train_split), generator=order), 0
            index = permutation[cursor : cursor + train.batch_size]
            cursor += train.batch_size
            batch = {k: v.to(device, non_blocking=True) for k, v in train_split.batch(index).items()}

            sync(device)
            start = time.perf_counter()
            loss = backbone.loss(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}")
            loss.backward()
            if train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            sync(device)
            result.step_times.add(time.perf_counter() - start)

            real, positions = _count_tokens(batch)
            result.real_tokens += real
            result.processed_positions += positions
            result.virtual_tokens += method.num_virtual_tokens * len(index)
            result.samples += len(index)
            result.steps = step
            result.final_loss = loss.item()
            if progress:
                progress(step, result.final_loss)

            if step % train.eval_every == 0 or step == train.max_steps:
                with eval_watch:
                    metrics = evaluate(backbone, dev_split, task, train, device)
                result.dev_history.append({"step": step, "metrics": metrics, "loss": result.final_loss})
                score = metrics[task.selection_metric]
                if score > best_score:
                    best_score, best_state, result.best_step = score, _state(backbone), step
                if on_evaluate is not None:
                    try:
                        on_evaluate(step, metrics)
                    except StopTraining as stop:
                        result.stopped = str(stop) or f"stopped at step {step}"
                        break
        sync(device)
        loop_seconds = time.perf_counter() - loop_start
        result.peak_rss_train_bytes = rss.peak

    # Wall time of the loop (batching, transfer, forward, backward, clipping, optimiser) minus evaluation.
    result.train_time_s = loop_seconds - eval_watch.total
    result.gpu = gpu.peaks()
    _load_state(backbone, best_state)
    result.method_record_best = method.record()
    with eval_watch:
        result.dev_metrics = evaluate(backbone, dev_split, task, train, device)
        if test_split is not None:
            result.test_metrics = evaluate(backbone, test_split, task, train, device)
    result.eval_time_s = eval_watch.total
    return result
