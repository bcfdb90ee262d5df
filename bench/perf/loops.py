"""The timed loops of ``bench perf``: the harness's own loop, a bare PyTorch loop, and evaluation.

The bare loop is deliberately a copy of the training step without the harness's bookkeeping (no dev
evaluation, no progress, no snapshots): ``harness / bare`` is the harness's overhead, so the two must do the
same arithmetic and nothing else.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.perf.cases import EVAL_VARIANTS, PerfCase
from bench.perf.memory import PeakMemory, device_peak_tflops, step_flops

LABELS = ["0", "1"]


@dataclass(frozen=True)
class _Example:
    source: str
    target: str
    label: int


def examples(batch: int, seq_len: int) -> list[_Example]:
    """Synthetic examples whose sources fill ``seq_len`` tokens (every position real)."""
    words = "the film is a moving and wonderful story about people who never give up on each other".split()
    text = " ".join(words[i % len(words)] for i in range(seq_len * 2))
    return [_Example(text, str(i % 2), i % 2) for i in range(batch)]


class _Task:
    """The loop needs a task only for its (here negligible) evaluation."""

    selection_metric = "accuracy"

    @staticmethod
    def label_strings() -> list[str]:
        return LABELS

    @staticmethod
    def compute_metrics(predictions, references) -> dict[str, float]:
        hits = sum(p == r for p, r in zip(predictions, references, strict=True))
        return {"accuracy": 100.0 * hits / len(references)}


def build(case: PerfCase):
    """The case's backbone with its method attached (the one factory, ``bench.run.assemble``); transfer methods
    get random-vocabulary source prompts."""
    import torch

    from bench.backbones.load import load_backbone
    from bench.run.assemble import attach_method
    from methods.registry import build_config

    torch.manual_seed(case.seed)
    backbone = load_backbone(case.model, LABELS, case.seq_len)

    def sources(config) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(1)
        length = getattr(config, "num_tokens", 10)
        return [backbone.embed_random_vocab(length, gen) for _ in range(2)]

    method = attach_method(
        backbone, case.method, build_config(case.method, case.overrides), case.seed, sources
    )
    return backbone, method


def _harness(case: PerfCase, backbone, split, device):
    from bench.spec import TrainConfig
    from bench.training.trainer import LoopInputs, train_and_evaluate

    total = case.warmup + case.steps
    one = backbone.encode(examples(1, case.seq_len), LABELS)
    train = TrainConfig(
        batch_size=case.batch,
        max_steps=total,
        warmup_steps=0,
        eval_every=total,
        max_length=case.seq_len,
        eval_batch_size=1,
        timing_warmup_steps=case.warmup,
        eval_mode="score" if backbone.family != "encoder" else "generate",
        precision=case.precision,
    )
    inputs = LoopInputs(backbone, _Task(), split, one, one, train, case.seed, device)
    return train_and_evaluate(inputs).step_times


def _bare(case: PerfCase, loss_fn, batch, params, device):
    import torch
    from transformers import get_linear_schedule_with_warmup

    from bench.measurement.measure import StepTimes, sync
    from bench.training.precision import autocast

    total = case.warmup + case.steps
    ctx = autocast(case.precision, device)  # the harness's context (bench/training/trainer.py)
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, total)
    times = StepTimes(case.warmup)
    for _ in range(total):
        sync(device)
        start = time.perf_counter()
        with ctx:
            loss = loss_fn(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        times.add(time.perf_counter() - start)
    return times


def run_case(case: PerfCase) -> dict[str, Any]:
    """Time ``case`` in this process in its precision (TF32 flags as a run would have them, bench/training/precision.py):
    ms/step (median, p90), tokens/s and peak memory over the baseline."""
    import torch

    from bench.training.precision import math_mode, resolve

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if case.task is not None:  # the real job: its precision is the job's train.precision (--set)
        from bench.perf.real_task import run_task_case

        return run_task_case(case, device)
    run = resolve(case.precision, device)
    with math_mode(run, device):
        row = _run_case(case, device, run.ran)
    return {**row, "precision_ran": run.ran}


def _run_case(case: PerfCase, device, precision_ran: str) -> dict[str, Any]:
    if case.variant in EVAL_VARIANTS:
        return _eval_case(case, device)
    if case.variant == "peft":
        from bench.perf.peft_twin import peft_model

        backbone, model, loss_fn = peft_model(case)
        params = [p for p in model.parameters() if p.requires_grad]
        model.to(device)
        model.train(True)  # dropout on, as in every training loop (from_pretrained leaves eval mode)
        virtual = getattr(model.peft_config["default"], "num_virtual_tokens", 0) or 0
    else:
        from bench.training.optim import trainable_parameters

        backbone, method = build(case)
        backbone.to(device)
        backbone.train(True)  # the harness loop's mode: dropout on
        loss_fn = backbone.loss
        params = trainable_parameters(backbone)
        virtual = method.num_virtual_tokens
    split = backbone.encode(examples(case.batch, case.seq_len), LABELS)
    batch = {k: v.to(device) for k, v in split.batch(slice(None)).items()}
    tokens_per_step = int(batch["attention_mask"].sum())
    memory = PeakMemory(device)
    if case.variant == "harness":
        times = _harness(case, backbone, split, device)
    else:
        times = _bare(case, loss_fn, batch, params, device)
    peak = memory.peak_over_baseline()
    flops = step_flops(loss_fn, batch, params)  # after the peak, so counting cannot raise the baseline
    median = times.median_ms()
    return {
        **_row(case, device, times, tokens_per_step, peak, sum(p.numel() for p in params), virtual),
        "tflops_per_s": flops / (median / 1000) / 1e12,
        "device_peak_tflops": device_peak_tflops(device, precision_ran),
    }


def _row(
    case: PerfCase, device, times, tokens: int, peak: int, trainable: int, virtual: int
) -> dict[str, Any]:
    """The table row every variant reports: the case, its median/p90 time, tokens/s and memory peak."""
    median = times.median_ms()
    return {
        **asdict(case),
        "device": str(device),
        "ms_per_step": median,
        "ms_per_step_p90": times.p90_ms(),
        "tokens_per_s": tokens / (median / 1000),
        "peak_mem_over_baseline_bytes": peak,
        "memory_kind": "cuda_allocated" if device.type == "cuda" else "cpu_rss",
        "trainable_params": trainable,
        "virtual_tokens": virtual,
    }


def _eval_case(case: PerfCase, device) -> dict[str, Any]:
    """Time ``predict`` on one batch by label scoring or greedy generation (the method's prompt attached).

    Generation is capped at the longest label's tokens plus EOS: the steps a trained model takes before it
    ends its answer. Untrained (random-init) weights never write EOS, and would otherwise run to the 20-token
    cap, inflating generation's cost; with the cap both modes do the work they do on a trained model.
    """
    import torch

    from bench.errors import InputError
    from bench.measurement.measure import StepTimes, sync
    from bench.training.precision import autocast

    backbone, method = build(case)
    if backbone.family == "encoder":
        raise InputError("evaluation modes exist for seq2seq and decoder models; an encoder has a class head")
    longest = max(len(backbone._target_ids(text)) for text in LABELS)
    backbone.max_new_tokens = longest  # this backbone's cap, no module global touched
    backbone.to(device)
    backbone.train(False)
    split = backbone.encode(examples(case.batch, case.seq_len), LABELS)
    batch = {k: v.to(device) for k, v in split.batch(slice(None)).items()}
    times = StepTimes(case.warmup)
    memory = PeakMemory(device)
    with torch.inference_mode(), autocast(case.precision, device):
        for _ in range(case.warmup + case.steps):
            sync(device)
            start = time.perf_counter()
            backbone.predict(batch, case.variant, LABELS)
            sync(device)
            times.add(time.perf_counter() - start)
    tokens = int(batch["attention_mask"].sum())
    peak, trainable = memory.peak_over_baseline(), method.counts().trainable_params
    return {
        **_row(case, device, times, tokens, peak, trainable, method.num_virtual_tokens),
        "max_new_tokens": longest,
    }
