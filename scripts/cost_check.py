"""Predicted against measured on this CPU: ``bench/cost``'s predictions for a step of tiny T5, MiniLM and
SmolLM2 with PT, DePT, EPT, LPT, LoRA and prefix tuning.

On a CUDA device the same rows run there, peak memory read from ``torch.cuda.max_memory_allocated``
(``scripts/gpu_check.sh`` runs it on T5-Base at batch 32, s=256, fp32 and bf16). Per row: the saved-activation bytes predicted on fake tensors against what autograd saves on a real step
(target: exact, or within 5%); the peak RSS over the model's baseline predicted (gradients + AdamW state +
saved activations + the transient allowance) against the peak sampled every 10 ms over real steps (target:
within 15%); the calibrated ms/step (``bench/cost/calibrate.py``, cached) against a later timing of the same
steps (target: within 20%). Usage::

    PYTHONPATH=. python scripts/cost_check.py [--batch 8] [--seq 64] [--models tiny-t5,minilm,smollm2]

Prints a markdown table; exits 1 when a row misses a target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.cost.calibrate import calibrate
from bench.cost.estimate import peak_parts
from bench.cost.step import (
    StepShape,
    build_unloaded,
    count_saved,
    precision_context,
    predict_step,
    storages,
    synthetic_batch,
)
from bench.perf.memory import PeakMemory
from bench.training.optim import trainable_parameters

METHODS = {"pt": {}, "dept": {}, "ept": {}, "lpt": {}, "lora": {}, "prefix": {}}
FAMILY = {
    "tiny-t5": "seq2seq",
    "t5-base": "seq2seq",
    "t5-small": "seq2seq",
    "minilm": "encoder",
    "smollm2": "decoder",
}
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TINY_T5 = {
    "model_type": "t5",
    "architectures": ["T5ForConditionalGeneration"],
    "vocab_size": 32128,
    "d_model": 64,
    "d_ff": 256,
    "d_kv": 16,
    "num_layers": 4,
    "num_decoder_layers": 4,
    "num_heads": 4,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
    "dropout_rate": 0.1,
    "feed_forward_proj": "relu",
    "is_encoder_decoder": True,
}


def _model(name: str, tmp: Path) -> str:
    if name != "tiny-t5":
        return name
    (tmp / "config.json").write_text(json.dumps(TINY_T5))
    return str(tmp)


def _steps(backbone, batch: dict, steps: int, precision: str) -> list[float]:
    params = trainable_parameters(backbone)
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    times = []
    for _ in range(steps):
        _sync()
        start = time.perf_counter()
        with precision_context(precision, DEVICE.type):
            loss = backbone.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync()
        times.append(time.perf_counter() - start)
    return times


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def check(model: str, label: str, method: str, batch: int, seq: int, precision: str) -> dict:
    shape = StepShape(model, method, json.dumps(METHODS[method]), batch, seq, 3, 2, precision)
    predicted = predict_step(shape)
    fixed, per_row, _ = peak_parts(predicted, batch, 1)
    predicted_rss = fixed - predicted.weights_bytes + per_row * batch
    torch.manual_seed(0)
    backbone, _ = build_unloaded(shape, None)
    backbone.to(DEVICE)
    backbone.train(True)
    data = {k: v.to(DEVICE) for k, v in synthetic_batch(FAMILY[label], batch, seq, 3).items()}
    _trim()  # freed memory back to the OS, so the RSS peak is this run's
    memory = PeakMemory(DEVICE)
    times = _steps(backbone, data, 7, precision)
    rss = memory.peak_over_baseline()
    measured_ms = statistics.median(times[2:]) * 1e3
    backbone.model.zero_grad(set_to_none=True)
    for module in backbone.trainable_modules():
        module.zero_grad(set_to_none=True)
    excluded = storages([backbone.model, *backbone.trainable_modules()])
    with precision_context(precision, DEVICE.type):
        saved = count_saved(backbone.loss, data, excluded)[0]
    del backbone, data
    _trim()
    calibrated = calibrate(shape, steps=5, warmup=2, eval_batch=batch)["ms_per_step"]
    return {
        "backbone": label,
        "method": method,
        "precision": precision,
        "saved_pred": predicted.saved_bytes,
        "saved_meas": saved,
        "rss_pred": predicted_rss,
        "rss_meas": rss,
        "ms_pred": calibrated,
        "ms_meas": measured_ms,
    }


def _trim() -> None:
    """glibc's ``malloc_trim``: return freed heap pages to the OS (no-op elsewhere)."""
    import ctypes  # noqa: PLC0415 - glibc only

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--models", default="tiny-t5,minilm,smollm2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--precision", default="fp32", help="comma-separated: fp32, bf16")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    os.environ.setdefault("PTBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="ptbench-cost-"))
    torch.set_num_threads(torch.get_num_threads())
    where = (
        torch.cuda.get_device_name(0) if DEVICE.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    )
    kind = "torch.cuda.max_memory_allocated" if DEVICE.type == "cuda" else "RSS"
    print(f"batch {args.batch}, s={args.seq}, {where}; peak memory: {kind} over the model's baseline\n")
    print(
        "| backbone | method | precision | saved predicted | saved measured | ratio | peak predicted | "
        "peak measured | ratio | ms/step calibrated | ms/step measured | ratio | targets |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    missed, rows = 0, []
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.models.split(","):
            model = _model(label, Path(tmp))
            for method, precision in [
                (m, p) for m in args.methods.split(",") for p in args.precision.split(",")
            ]:
                row = check(model, label, method, args.batch, args.seq, precision)
                saved = _ratio(row["saved_pred"], row["saved_meas"])
                rss = _ratio(row["rss_pred"], row["rss_meas"])
                ms = _ratio(row["ms_pred"], row["ms_meas"])
                ok = abs(saved - 1) <= 0.05 and abs(rss - 1) <= 0.15 and abs(ms - 1) <= 0.20
                missed += not ok
                rows.append({**row, "met": ok})
                mib = 2**20
                print(
                    f"| {label} | {method} | {precision} | {row['saved_pred'] / mib:.2f} MiB | {row['saved_meas'] / mib:.2f} MiB | "
                    f"{saved:.3f} | {row['rss_pred'] / mib:.1f} MiB | {row['rss_meas'] / mib:.1f} MiB | {rss:.2f} | "
                    f"{row['ms_pred']:.1f} | {row['ms_meas']:.1f} | {ms:.2f} | {'met' if ok else '**missed**'} |",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(DEVICE), "rows": rows}, indent=1))
    print(f"\ntargets: saved within 5%, peak RSS within 15%, time within 20%; {missed} row(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
