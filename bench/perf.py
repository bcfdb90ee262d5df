"""``bench perf``: step time and peak memory of each method, side by side, with the efficiency ratios.

For every method three variants can be timed on the same model, batch and sequence length (synthetic inputs
with every position real, so padding plays no part):

* ``harness``: the real training loop of ``bench run`` (``bench.trainer.train_and_evaluate``), its step timer;
* ``bare``: a plain PyTorch loop around the same backbone and method module (forward, backward, clipping,
  optimiser, scheduler), with none of the harness's bookkeeping: the harness overhead is ``harness / bare``;
* ``peft``: the same configuration through Hugging Face PEFT where PEFT has the method (prompt tuning with
  ``num_transformer_submodules=1``, LoRA, prefix tuning, P-tuning, MPT).

Each (method, variant) runs in its own subprocess (``python -m bench.perf CASE.json``), so the memory peak is
that configuration's alone: on a GPU the peak allocated CUDA memory over the post-load baseline, on a CPU the
peak RSS over the post-load RSS, sampled every 10 ms. Step time is the median over ``--steps`` steps after
``--warmup`` steps (METHODS.md §8.1). The table and the ratios the Performance issue targets are printed and
written as JSON for reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

VARIANTS = ("harness", "bare", "peft")
# Evaluation timing (``--eval``, seq2seq and decoder models): one predict() call per batch in each mode.
EVAL_VARIANTS = ("score", "generate")

# PEFT configs for the methods PEFT has (METHODS.md §2.5): harness method -> builder of its PEFT config.
PEFT_METHODS = ("pt", "lora", "prefix", "ptuning", "mpt")


@dataclass
class PerfCase:
    label: str  # the row name: the method, or e.g. "pt@lpt" (PT with LPT's prompt length)
    method: str
    variant: str
    model: str
    batch: int
    seq_len: int
    steps: int
    warmup: int
    overrides: dict[str, str]
    seed: int = 0


# ---- one case, in its own process -------------------------------------------------------------------------


def _examples(backbone, batch: int, seq_len: int) -> list:
    """Synthetic examples whose sources fill ``seq_len`` tokens (every position real)."""
    from dataclasses import dataclass as _dc

    @_dc(frozen=True)
    class Example:
        source: str
        target: str
        label: int

    words = "the film is a moving and wonderful story about people who never give up on each other".split()
    text = " ".join(words[i % len(words)] for i in range(seq_len * 2))
    return [Example(text, str(i % 2), i % 2) for i in range(batch)]


def _build(case: PerfCase):
    import torch

    from bench.backbones import load_backbone
    from methods.registry import build_config, get_method_class

    torch.manual_seed(case.seed)
    backbone = load_backbone(case.model, ["0", "1"], case.seq_len)
    cls = get_method_class(case.method)
    config = build_config(case.method, case.overrides)
    method = cls(config, backbone.dims)
    if cls.requires_sources:
        gen = torch.Generator().manual_seed(1)
        length = getattr(config, "num_tokens", 10)
        method.load_sources([backbone.embed_random_vocab(length, gen) for _ in range(2)])
    method.initialize(backbone, torch.Generator().manual_seed(case.seed))
    backbone.attach(method)
    return backbone, method


def _peft_model(case: PerfCase):
    """The same backbone model wrapped by PEFT, and a loss function over our encoded batches."""
    import torch
    from peft import (
        LoraConfig,
        MultitaskPromptTuningConfig,
        PrefixTuningConfig,
        PromptEncoderConfig,
        PromptTuningConfig,
        TaskType,
        get_peft_model,
    )

    from bench.backbones import load_backbone
    from methods.registry import build_config

    torch.manual_seed(case.seed)
    backbone = load_backbone(case.model, ["0", "1"], case.seq_len)
    task_type = {
        "seq2seq": TaskType.SEQ_2_SEQ_LM,
        "encoder": TaskType.SEQ_CLS,
        "decoder": TaskType.CAUSAL_LM,
    }[backbone.family]
    config = build_config(case.method, case.overrides)
    tokens = getattr(config, "num_tokens", 20)
    common = {"task_type": task_type}
    if case.method == "pt":
        peft_config = PromptTuningConfig(**common, num_virtual_tokens=tokens, num_transformer_submodules=1)
    elif case.method == "mpt":
        peft_config = MultitaskPromptTuningConfig(
            **common, num_virtual_tokens=tokens, num_tasks=1, num_transformer_submodules=1
        )
    elif case.method == "ptuning":
        peft_config = PromptEncoderConfig(**common, num_virtual_tokens=tokens, num_transformer_submodules=1)
    elif case.method == "prefix":
        peft_config = PrefixTuningConfig(**common, num_virtual_tokens=tokens)
    elif case.method == "lora":
        from methods.model_parts import ROLES, linear_parts
        from methods.wrapping import parse_names

        roles = set(parse_names(config.targets, ROLES, "targets"))  # the same modules as our LoRA wraps
        peft_config = LoraConfig(
            **common,
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=[p.name for p in linear_parts(backbone.model) if p.role in roles],
        )
    else:
        raise ValueError(f"PEFT has no {case.method!r}; PEFT variants exist for {', '.join(PEFT_METHODS)}")
    model = get_peft_model(backbone.model, peft_config)

    def loss(batch: dict) -> torch.Tensor:
        kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if case.method == "mpt":
            kwargs["task_ids"] = torch.zeros(batch["input_ids"].shape[0], dtype=torch.long)
        return model(**kwargs, labels=batch["labels"]).loss

    return backbone, model, loss


# Dense peak TFLOP/s of common GPUs for fp32 matmuls through TF32 tensor cores / bf16 (vendor datasheets, SXM
# parts, no sparsity). Achieved TFLOP/s are printed against the fp32/TF32 figure, the precision of these runs.
GPU_PEAK_TFLOPS = {
    "H100": 494.7,
    "H200": 494.7,
    "A100": 156.0,
    "L4": 60.0,
    "A10": 62.5,
    "V100": 15.7,
    "T4": 8.1,
}


def device_peak_tflops(device) -> float | None:
    """The GPU's datasheet peak (TF32) by name, or None (CPUs, unknown GPUs)."""
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in GPU_PEAK_TFLOPS.items() if key in name), None)


def step_flops(loss_fn, batch: dict, params: list) -> int:
    """Floating-point operations of one forward + backward, counted by ``torch.utils.flop_counter`` (matmuls and
    attention; the optimiser's elementwise work is not counted). Run once after timing; gradients dropped."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss_fn(batch).backward()
    for p in params:
        p.grad = None
    return counter.get_total_flops()


class _PeakMemory:
    """Peak memory over the baseline at construction: CUDA allocated, or process RSS sampled every 10 ms."""

    def __init__(self, device) -> None:
        import psutil
        import torch

        self.device, self.torch = device, torch
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            self.base = torch.cuda.memory_allocated(device)
        else:
            from bench.measure import RssSampler

            self.base = psutil.Process().memory_info().rss
            self.sampler = RssSampler(interval_s=0.01).__enter__()

    def peak_over_baseline(self) -> int:
        if self.device.type == "cuda":
            return self.torch.cuda.max_memory_allocated(self.device) - self.base
        self.sampler.__exit__()
        return self.sampler.peak - self.base


def run_case(case: PerfCase) -> dict[str, Any]:
    """Time ``case`` in this process: ms/step (median, p90), tokens/s and peak memory over the baseline."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from bench.measure import StepTimes, sync
    from bench.spec import TrainConfig

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    total = case.warmup + case.steps
    if case.variant in EVAL_VARIANTS:
        return _eval_case(case, device)
    if case.variant == "peft":
        backbone, model, loss_fn = _peft_model(case)
        params = [p for p in model.parameters() if p.requires_grad]
        model.to(device)
        model.train(True)  # dropout on, as in every training loop (from_pretrained leaves eval mode)
        virtual = (
            model.peft_config["default"].num_virtual_tokens
            if hasattr(model.peft_config["default"], "num_virtual_tokens")
            else 0
        )
    else:
        backbone, method = _build(case)
        backbone.to(device)
        backbone.train(True)  # the harness loop's mode: dropout on
        loss_fn = backbone.loss
        from bench.trainer import trainable_parameters

        params = trainable_parameters(backbone)
        virtual = method.num_virtual_tokens
    split = backbone.encode(_examples(backbone, case.batch, case.seq_len), ["0", "1"])
    batch = {k: v.to(device) for k, v in split.batch(slice(None)).items()}
    tokens_per_step = int(batch["attention_mask"].sum())
    memory = _PeakMemory(device)
    if case.variant == "harness":
        from bench.trainer import train_and_evaluate

        class _Task:  # the loop needs a task only for its (here negligible) evaluation
            selection_metric = "accuracy"

            @staticmethod
            def label_strings() -> list[str]:
                return ["0", "1"]

            @staticmethod
            def compute_metrics(predictions, references) -> dict[str, float]:
                return {
                    "accuracy": 100.0
                    * sum(p == r for p, r in zip(predictions, references, strict=True))
                    / len(references)
                }

        one = backbone.encode(_examples(backbone, 1, case.seq_len), ["0", "1"])
        train = TrainConfig(
            batch_size=case.batch,
            max_steps=total,
            warmup_steps=0,
            eval_every=total,
            max_length=case.seq_len,
            eval_batch_size=1,
            timing_warmup_steps=case.warmup,
            eval_mode="score" if backbone.family != "encoder" else "generate",
        )
        result = train_and_evaluate(backbone, _Task(), split, one, one, train, case.seed, device)
        times = result.step_times
    else:
        optimizer = torch.optim.AdamW(params, lr=1e-3)
        scheduler = get_linear_schedule_with_warmup(optimizer, 0, total)
        times = StepTimes(case.warmup)
        for _ in range(total):
            sync(device)
            start = time.perf_counter()
            loss = loss_fn(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            sync(device)
            times.add(time.perf_counter() - start)
    peak = memory.peak_over_baseline()
    flops = step_flops(loss_fn, batch, params)  # after the peak, so counting cannot raise the baseline
    median = times.median_ms()
    return {
        **_row(case, device, times, tokens_per_step, peak, sum(p.numel() for p in params), virtual),
        "tflops_per_s": flops / (median / 1000) / 1e12,
        "device_peak_tflops": device_peak_tflops(device),
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

    from bench.backbones import decoder, seq2seq
    from bench.measure import StepTimes, sync

    backbone, method = _build(case)
    if backbone.family == "encoder":
        raise ValueError("evaluation modes exist for seq2seq and decoder models; an encoder has a class head")
    labels = ["0", "1"]
    longest = max(len(backbone._target_ids(text)) for text in labels)
    seq2seq.MAX_NEW_TOKENS = decoder.MAX_NEW_TOKENS = longest
    backbone.to(device)
    backbone.train(False)
    split = backbone.encode(_examples(backbone, case.batch, case.seq_len), labels)
    batch = {k: v.to(device) for k, v in split.batch(slice(None)).items()}
    times = StepTimes(case.warmup)
    memory = _PeakMemory(device)
    with torch.inference_mode():
        for _ in range(case.warmup + case.steps):
            sync(device)
            start = time.perf_counter()
            backbone.predict(batch, case.variant, labels)
            sync(device)
            times.add(time.perf_counter() - start)
    tokens = int(batch["attention_mask"].sum())
    peak, trainable = memory.peak_over_baseline(), method.counts().trainable_params
    return {
        **_row(case, device, times, tokens, peak, trainable, method.num_virtual_tokens),
        "max_new_tokens": longest,
    }


# ---- the table ---------------------------------------------------------------------------------------------


def run_in_subprocess(case: PerfCase, timeout_s: float = 3600) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ptbench-perf-") as tmp:
        spec = Path(tmp) / "case.json"
        spec.write_text(json.dumps(asdict(case)))
        proc = subprocess.run(
            [sys.executable, "-m", "bench.perf", str(spec)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=Path(__file__).resolve().parents[1],
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "no output")
        return {**asdict(case), "error": f"exit {proc.returncode}: {last}"}
    return json.loads(lines[-1])


def best_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (label, variant) from repeated runs: the fastest median and the lowest peak.

    Repeats run interleaved (every case once, then again), so a slow spell of a shared machine hits every
    variant alike; the minimum is the least-disturbed measurement of each. The repeats' medians are kept.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["label"], row["variant"]), []).append(row)
    out = []
    for group in groups.values():
        good = [r for r in group if "error" not in r]
        if not good:
            out.append(group[0])
            continue
        best = dict(min(good, key=lambda r: r["ms_per_step"]))
        best["peak_mem_over_baseline_bytes"] = min(r["peak_mem_over_baseline_bytes"] for r in good)
        best["ms_per_step_repeats"] = [r["ms_per_step"] for r in good]
        out.append(best)
    return out


def ratios(rows: list[dict[str, Any]], seq_len: int) -> list[dict[str, Any]]:
    """The Performance issue's targets as measured ratios (value, target, met)."""
    ok = {(r["label"], r["variant"]): r for r in rows if "error" not in r}
    out = []

    def add(name: str, num, den, key: str, target: float) -> None:
        if num and den:
            value = num[key] / den[key] if den[key] else float("nan")
            out.append({"ratio": name, "value": value, "target": target, "met": value <= target})

    for label in sorted({m for m, _ in ok}):
        harness, bare, peft = (ok.get((label, v)) for v in VARIANTS)
        add(f"{label}: harness / bare time", harness, bare, "ms_per_step", 1.03)
        add(f"{label}: harness / PEFT time", harness, peft, "ms_per_step", 1.00)
        add(f"{label}: harness / PEFT memory", harness, peft, "peak_mem_over_baseline_bytes", 1.00)
    pt = ok.get(("pt", "harness"))
    for name in ("dept", "ept"):
        other = ok.get((name, "harness"))
        if pt and other:
            m, n = other["virtual_tokens"], pt["virtual_tokens"]
            target = (m + seq_len) / (n + seq_len) + 0.05
            add(f"{name} / pt time (target (m+s)/(l+s) + 5%)", other, pt, "ms_per_step", target)
    add("ept / dept time", ok.get(("ept", "harness")), ok.get(("dept", "harness")), "ms_per_step", 1.05)
    lpt, pt_same = ok.get(("lpt", "harness")), ok.get(("pt@lpt", "harness"))
    add("lpt / pt (same l) time", lpt, pt_same, "ms_per_step", 0.70)
    add("lpt / pt (same l) memory", lpt, pt_same, "peak_mem_over_baseline_bytes", 0.70)
    add(
        "eval: score / generate time (>= 3x faster)",
        ok.get(("eval", "score")),
        ok.get(("eval", "generate")),
        "ms_per_step",
        1 / 3,
    )
    return out


def plan_cases(
    methods: list[str],
    variants: list[str],
    model: str,
    batch: int,
    seq_len: int,
    steps: int,
    warmup: int,
    overrides: dict[str, dict[str, str]],
    eval_modes: bool = False,
) -> list[PerfCase]:
    """Every (method, variant) pair that exists; LPT also brings PT at LPT's prompt length (``pt@lpt``);
    ``eval_modes`` adds PT's evaluation by label scoring and by generation (rows ``eval``)."""
    from methods.registry import build_config

    cases = []
    rows = [(m, m, overrides.get(m, {})) for m in methods]
    if "lpt" in methods:
        lpt_tokens = str(build_config("lpt", overrides.get("lpt")).num_tokens)
        rows.append(("pt@lpt", "pt", {**overrides.get("pt", {}), "num_tokens": lpt_tokens}))
    for label, method, fields in rows:
        for variant in variants:
            if variant == "peft" and method not in PEFT_METHODS:
                continue
            cases.append(PerfCase(label, method, variant, model, batch, seq_len, steps, warmup, dict(fields)))
    if eval_modes:
        for variant in EVAL_VARIANTS:
            cases.append(
                PerfCase("eval", "pt", variant, model, batch, seq_len, steps, warmup, overrides.get("pt", {}))
            )
    return cases


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    case = PerfCase(**json.loads(Path(argv[0]).read_text()))
    print(json.dumps(run_case(case)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
