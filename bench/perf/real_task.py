"""``bench perf --task NAME``: the real job's batches through the harness and through PEFT (docs/performance.md).

The synthetic cases time one fixed-length batch; a real job adds ragged batches, the text format, evaluation
pauses and the record's bookkeeping. Here every variant gets the job ``bench run --tasks NAME --preset P``
would run (planned by ``bench.planning.plan``, data from ``bench.planning.inputs.prepare_data``): its training rows, formatted
and tokenised as the worker does, in the loop's batch order (``LoopState.next_indices`` from the same seeded
generator), each batch cut to its longest row (``train.padding="longest"``). Variants:

* ``harness``: ``bench.training.trainer.train_and_evaluate`` as the worker calls it (dev evaluations every
  ``eval_every`` steps included, test split left out: it runs after the loop and is never training time);
* ``bare``: a plain loop around the same backbone and method on the same batches (``harness / bare`` is what
  the trainer's bookkeeping costs);
* ``peft``: the method's PEFT twin (``Method.peft_equivalent``) on the SAME token batches;
* ``peft-plain``: the PEFT twin on its own plain tokenisation of the raw text fields (``sentence`` alone,
  or the pair ``(sentence1, sentence2)``, without ptbench's ``"field: "`` names), same rows, same order.

Like with like: every variant evaluates the dev split at the harness's steps (every ``eval_every`` and at the
last step) in batches of ``eval_batch_size``, ``bare`` with the harness's own ``evaluate`` and the PEFT
variants with a plain forward of the twin over the same dev rows, as a PEFT script's evaluation does. The
evaluations are left out of the training time (as the record's ``train_time_s``) and kept in the peak memory,
which is the process's.

Each row has ms/step (median, mean, p90 after ``train.timing_warmup_steps``), the loop's training time (wall
time minus evaluation, as the record's ``train_time_s``), the peak RSS (or CUDA allocated) over the post-load
baseline, real tokens per row, and the loop's ``contention`` (``bench/measurement/contention.py``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict
from typing import Any

from bench.perf.cases import PerfCase

TASK_VARIANTS = ("harness", "bare", "peft", "peft-plain")
TASK_METHODS = ("pt", "lora")  # the default --methods: methods with a PEFT twin (Method.peft_equivalent)
# The ratios printed for each method: harness against each reference variant, on these row keys.
RATIO_KEYS = {
    "median ms/step": "ms_per_step",
    "mean ms/step": "ms_per_step_mean",
    "train time": "train_time_s",
    "peak memory": "peak_mem_over_baseline_bytes",
}


def task_cases(
    methods: list[str],
    variants: list[str],
    task: str,
    model: str | None,
    preset: str,
    data_dir: str | None,
    seed: int,
    overrides: dict[str, dict[str, str]],
) -> list[PerfCase]:
    """One case per (method, variant); ``peft`` variants only for methods with a PEFT twin."""
    from bench.perf.cases import has_peft_twin
    from bench.presets import get_preset

    model = model or get_preset(preset).model
    train = overrides.get("train", {})
    return [
        PerfCase(
            m,
            m,
            v,
            model,
            0,
            0,
            0,
            0,
            overrides.get(m, {}),
            seed=seed,
            task=task,
            preset=preset,
            data_dir=data_dir,
            train_overrides=train,
        )  # fmt: skip
        for m in methods
        for v in variants
        if not (v.startswith("peft") and not has_peft_twin(m))
    ]


def job_spec(case: PerfCase):
    """The ``RunSpec`` ``bench run`` plans for this case's task, method, preset, model, seed and ``--set``."""
    from bench.planning.plan import RunRequest, plan
    from suites import get_task

    task = get_task(case.task)
    overrides = {case.method: dict(case.overrides), "train": dict(case.train_overrides)}
    request = RunRequest(
        suite=task.suite, tasks=[task.name], methods=[case.method], seeds=[case.seed], preset=case.preset,
        model=case.model, data_dir=case.data_dir, overrides=overrides,
    )  # fmt: skip
    return plan(request)[-1]


def batch_order(n_rows: int, batch_size: int, steps: int, seed: int) -> list:
    """The training loop's batches of row indices ``[batch_size]`` for ``steps`` steps: the same generator and
    epoch rule as ``bench.training.trainer`` (``LoopState.next_indices``), so every variant sees the same rows in order."""
    import torch

    from bench.training.loop_state import LoopState

    order = torch.Generator().manual_seed(seed)
    state = LoopState(None, None, order, torch.randperm(n_rows, generator=order))
    return [state.next_indices(n_rows, batch_size) for _ in range(steps)]


def plain_split(task, examples: list, tokenizer, max_length: int, labels):
    """The rows as a plain PEFT script tokenises them: the raw text fields (one, or a pair, as the tokenizer's
    two segments; more are joined by spaces), no field names; the same labels. ``[N, s]`` padded to s."""
    from bench.backbones.base import EncodedSplit

    fields = list(task.source_fields)
    first = [" ".join(str(e.fields[f]) for f in fields[:1] + fields[2:]) for e in examples]
    second = [str(e.fields[fields[1]]) for e in examples] if len(fields) > 1 else None
    enc = tokenizer(
        first, second, max_length=max_length, padding="max_length", truncation=True, return_tensors="pt"
    )
    return EncodedSplit(enc["input_ids"], enc["attention_mask"], labels, [e.target for e in examples])


def _plain_loop(loss_fn, params, split, order, train, lr: float, eps: float, trim: bool, device, evaluate):
    """A plain training loop over ``order``'s batches: forward, backward, clip, AdamW, linear schedule;
    ``evaluate()`` at the harness's evaluation steps, its time left out of the returned training time."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from bench.measurement.measure import StepTimes, sync

    optimizer = torch.optim.AdamW(params, lr=lr, eps=eps)
    scheduler = get_linear_schedule_with_warmup(optimizer, train.warmup_steps, train.max_steps)
    times = StepTimes(train.timing_warmup_steps)
    eval_s, evaluations = 0.0, 0
    sync(device)
    loop_start = time.perf_counter()
    for step, index in enumerate(order, start=1):
        batch = {k: v.to(device, non_blocking=True) for k, v in split.batch(index, trim).items()}
        sync(device)
        start = time.perf_counter()
        loss = loss_fn(batch)
        loss.backward()
        if train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        times.add(time.perf_counter() - start)
        if step % train.eval_every == 0 or step == len(order):
            eval_start = time.perf_counter()
            evaluate()
            sync(device)
            eval_s += time.perf_counter() - eval_start
            evaluations += 1
    sync(device)
    return times, time.perf_counter() - loop_start - eval_s, evaluations


def twin_evaluator(model, cls, split, train, trim: bool, device):
    """A PEFT script's dev evaluation: the twin's forward over ``split`` in ``train.eval_batch_size`` batches
    (inference mode, the training's text and labels), then back to training mode."""
    import torch

    def evaluate() -> None:
        model.train(False)
        with torch.inference_mode():
            for start in range(0, len(split), train.eval_batch_size):
                batch = {
                    k: v.to(device)
                    for k, v in split.batch(slice(start, start + train.eval_batch_size), trim).items()
                }
                kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
                model(**kwargs, **cls.peft_inputs(batch), labels=batch["labels"])
        model.train(True)

    return evaluate


def run_task_case(case: PerfCase, device) -> dict[str, Any]:
    """Time ``case``'s variant on the real job in this process; its row for the table and the ratios."""
    import torch
    from transformers import set_seed

    from bench.backbones.load import load_backbone
    from bench.errors import InputError
    from bench.measurement.contention import ContentionMeter
    from bench.perf.memory import PeakMemory
    from bench.perf.peft_twin import wrap_twin
    from bench.planning.inputs import method_config, prepare_data
    from bench.run.assemble import build
    from bench.training.optim import trainable_parameters

    spec = job_spec(case)
    train = spec.train_config()
    task, examples, dev, _test, _info = prepare_data(spec, train)
    labels = None if task.is_regression else task.label_strings()
    config = method_config(spec)
    if case.variant in ("harness", "bare"):
        backbone, method = build(spec, task, train)
        virtual, trim = method.num_virtual_tokens, backbone.trims_batches(train.padding)
    else:
        set_seed(spec.seed)
        # The twin reads the same job: the spec's dropout and text format (PEFT places its own prompt).
        backbone = load_backbone(spec.model, labels, train.max_length, train.dropout, train.encoder_text)
        model, peft_loss = wrap_twin(backbone, spec.method, config)
        virtual = getattr(model.peft_config["default"], "num_virtual_tokens", 0) or 0
        trim = train.padding == "longest"
    split = backbone.encode(examples, task.label_strings())
    if case.variant == "peft-plain":
        if split.labels_follow_inputs:
            raise InputError("peft-plain needs labels apart from the inputs (encoder or seq2seq models)")
        split = plain_split(task, examples, backbone.tokenizer, train.max_length, split.labels)
    order = batch_order(len(split), train.batch_size, train.max_steps, spec.seed)
    backbone.to(device)
    backbone.train(True)
    params = trainable_parameters(backbone) if case.variant in ("harness", "bare") else None
    if params is None:
        model.train(True)  # dropout on, as in every training loop (from_pretrained leaves eval mode)
        params = [p for p in model.parameters() if p.requires_grad]
    dev_split = backbone.encode(dev, task.label_strings())
    if case.variant == "peft-plain":
        dev_split = plain_split(task, dev, backbone.tokenizer, train.max_length, dev_split.labels)
    memory = PeakMemory(device)  # baseline: model loaded, wrapped, moved; rows encoded
    meter = ContentionMeter(workers=1)
    with meter:
        if case.variant == "harness":
            from bench.training.trainer import LoopInputs, train_and_evaluate

            result = train_and_evaluate(
                LoopInputs(backbone, task, split, dev_split, None, train, spec.seed, device)
            )
            times, train_s = result.step_times, result.train_time_s
            evaluations = len(result.dev_history)
        else:
            if case.variant == "bare":
                from bench.training.trainer import evaluate as harness_evaluate

                loss_fn = backbone.loss
                evaluate = lambda: harness_evaluate(backbone, dev_split, task, train, device)  # noqa: E731
            else:
                from methods.registry import get_method_class

                loss_fn = peft_loss
                evaluate = twin_evaluator(
                    model, get_method_class(spec.method), dev_split, train, trim, device
                )
            args = (loss_fn, params, split, order, train, config.lr, config.adam_eps, trim, device, evaluate)
            times, train_s, evaluations = _plain_loop(*args)
    peak = memory.peak_over_baseline()
    rows = [split.batch(i, trim)["attention_mask"] for i in order]
    real = sum(int(m.sum()) for m in rows)
    return {
        **asdict(case),
        "model": spec.model,
        "device": str(device),
        "steps": len(times.seconds),
        "dev_evaluations": evaluations,  # during the loop, at the same steps in every variant
        "batch": train.batch_size,
        "seq_len": train.max_length,
        "ms_per_step": times.median_ms(),
        "ms_per_step_mean": statistics.fmean(times.measured) * 1000,
        "ms_per_step_p90": times.p90_ms(),
        "train_time_s": train_s,
        "tokens_per_s": real / train_s,
        "tokens_per_row": real / sum(m.shape[0] for m in rows),
        "positions_per_step": statistics.fmean(m.numel() for m in rows),
        "peak_mem_over_baseline_bytes": peak,
        "memory_kind": "cuda_allocated" if device.type == "cuda" else "cpu_rss",
        "trainable_params": sum(p.numel() for p in params),
        "virtual_tokens": virtual,
        "torch_threads": torch.get_num_threads(),
        "contention": meter.result,
    }


def best_task_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, variant) from interleaved repeats: each timed key and the peak at its minimum (the
    least-disturbed measurement); the repeats' values kept as ``<key>_repeats``."""
    from bench.perf.cases import repeat_groups

    out = []
    for first, good in repeat_groups(rows, lambda r: (r["label"], r["variant"])):
        if not good:
            out.append(first)  # every repeat failed: its error row
            continue
        best = dict(good[0])
        for key in RATIO_KEYS.values():
            best[key] = min(r[key] for r in good)
            best[f"{key}_repeats"] = [r[key] for r in good]
        best["contended_repeats"] = [bool((r.get("contention") or {}).get("contended")) for r in good]
        out.append(best)
    return out


def task_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``harness / <variant>`` for every measured reference variant and ``RATIO_KEYS`` key, target 1.00."""
    ok = {(r["label"], r["variant"]): r for r in rows if "error" not in r}
    out = []
    for (label, variant), ref in ok.items():
        harness = ok.get((label, "harness"))
        if variant == "harness" or harness is None:
            continue
        for name, key in RATIO_KEYS.items():
            value = harness[key] / ref[key] if ref[key] else float("nan")
            out.append({"ratio": f"{label}: harness / {variant} {name}", "value": value, "target": 1.0,
                        "met": value <= 1.0})  # fmt: skip
    return out
