"""A planned run's cost: steps, evaluations, rows scored, tokens, FLOPs, predicted peak memory and time.

Peak memory (bytes, what ``torch.cuda.max_memory_allocated`` reports) is the larger of

* training: weights + gradients + AdamW state + saved activations + ``TRANSIENT`` x the largest saved
  tensor (the backward's live gradients of activations at that size; a stated allowance), and
* evaluation: weights + ``TRANSIENT`` x the largest saved tensor scaled to ``eval_batch_size`` rows (no
  graph is kept under ``inference_mode``; the live activations of one layer),

both linear in the batch beyond weights and optimiser state, which gives the largest batch that fits a budget.

Time per step is a calibration's (``bench/cost/calibrate.py``, the device that will run it) or FLOPs over the
device's sustained FLOP/s (``bench/cost/devices.py``), labelled ``estimate``. An evaluation row costs one
forward (label scoring and EOS-capped generation measure within 3% of one forward on T5-Base with 2-3 labels,
docs/performance.md); scoring many labels (> 3) costs ``MANY_LABELS`` forwards (STS-B's 26: 1.60).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from bench.cost.devices import DeviceClass
from bench.cost.step import StepCost, StepShape, predict_step, target_tokens
from bench.spec import RunSpec
from suites import get_task

TRANSIENT = 2
MANY_LABELS = 1.6


@dataclass(frozen=True)
class RunCost:
    """One run's predicted cost on ``device`` (bytes, FLOPs, seconds)."""

    steps: int
    evaluations: int
    rows_scored: int | None  # dev rows x evaluations + test rows; None: split sizes unknown (Hub data)
    train_tokens: int  # steps x batch x (s + virtual tokens): the padded upper bound
    flops: float
    peak_bytes: int
    fits: bool | None  # None: no memory budget (a CPU)
    batch_that_fits: int | None  # the largest train batch within the budget
    seconds: float | None
    time_source: str  # "calibrated" | "estimate"
    step: StepCost


def shape_of(spec: RunSpec, batch: int | None = None) -> StepShape:
    """The ``StepShape`` of ``spec`` (``batch`` replacing its train.batch_size)."""
    train = spec.train
    task = get_task(spec.task, spec.suite)
    labels = None if task.is_regression else task.label_strings()
    return StepShape(
        model=spec.model,
        method=spec.method,
        method_config=json.dumps(spec.method_config, sort_keys=True),
        batch=batch or train["batch_size"],
        seq_len=train["max_length"],
        target_len=target_tokens(labels),
        num_labels=1 if labels is None else len(labels),
        precision=train.get("precision", "fp32"),
        dropout=train.get("dropout"),
        encoder_text=train.get("encoder_text", "dept"),
        encoder_prompt_position=train.get("encoder_prompt_position", "after_cls"),
    )


def evaluations(max_steps: int, eval_every: int) -> int:
    """Dev evaluations: every ``eval_every`` steps and at the last step (bench/training/stages.py)."""
    return max_steps // eval_every + (1 if max_steps % eval_every else 0)


def peak_parts(step: StepCost, batch: int, eval_batch: int) -> tuple[int, int, int]:
    """``(fixed, per_train_row, eval_bytes)``: bytes independent of the batch, bytes per training row, and
    the evaluation pass's peak (weights included)."""
    fixed = step.weights_bytes + step.grad_bytes + step.optimizer_bytes
    per_row = (step.saved_bytes + TRANSIENT * step.largest_saved) / batch
    eval_bytes = step.weights_bytes + int(TRANSIENT * step.largest_saved / batch * eval_batch)
    return fixed, int(per_row), eval_bytes


def run_cost(
    spec: RunSpec,
    device: DeviceClass,
    budget: int | None,
    sizes: dict | None = None,
    calibration: dict | None = None,
) -> RunCost:
    """``spec``'s cost on ``device`` with ``budget`` bytes (None: no fit check); ``sizes`` the task's split
    sizes (``{"dev": n, "test": n}``), ``calibration`` a cached ``{"ms_per_step", "eval_ms_per_row"}``."""
    train = spec.train
    shape = shape_of(spec)
    step = predict_step(shape)
    fixed, per_row, eval_bytes = peak_parts(step, shape.batch, train["eval_batch_size"])
    peak = max(fixed + per_row * shape.batch, eval_bytes)
    fits = None if budget is None else peak <= budget
    fit_batch = None if budget is None else max(0, (budget - fixed) // max(per_row, 1))
    steps, evals = train["max_steps"], evaluations(train["max_steps"], train["eval_every"])
    test = 0 if spec.trial else 1  # search trials never evaluate test
    rows = None if sizes is None else sizes["dev"] * evals + sizes["test"] * test
    eval_factor = MANY_LABELS if train.get("eval_mode") == "score" and shape.num_labels > 3 else 1.0
    row_flops = step.forward_flops / shape.batch * eval_factor
    flops = steps * step.step_flops + (rows or 0) * row_flops
    if calibration:
        seconds = steps * calibration["ms_per_step"] / 1e3
        seconds += (rows or 0) * calibration["eval_ms_per_row"] * eval_factor / 1e3
        source = "calibrated"
    else:
        rate = device.sustained_flops(shape.precision)
        seconds, source = (None if rate is None else flops / rate), "estimate"
    return RunCost(
        steps=steps,
        evaluations=evals,
        rows_scored=rows,
        train_tokens=steps * shape.batch * (shape.seq_len + step.virtual_tokens),
        flops=flops,
        peak_bytes=peak,
        fits=fits,
        batch_that_fits=fit_batch,
        seconds=seconds,
        time_source=source,
        step=step,
    )


def human_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def human_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 86400:
        return f"{s / 86400:.1f} d"
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{math.ceil(s / 60)} min"
