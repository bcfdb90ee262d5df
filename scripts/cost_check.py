"""Predicted against measured on this CPU: ``bench/cost``'s predictions for a step of tiny T5, MiniLM and
SmolLM2 with PT, DePT, EPT, LPT, LoRA and prefix tuning.

On a CUDA device the same rows run there, peak memory read from ``torch.cuda.max_memory_allocated``
(``scripts/gpu_check.sh`` runs it on T5-Base at batch 32, s=256, fp32 and bf16). Per row: the saved-activation
bytes predicted on fake tensors against what autograd saves on a real step (target: exact, or within 5%); the
peak memory over the model's baseline predicted (gradients + AdamW state + saved activations + the transient
allowance) against the measured peak (target: within 15%); the calibrated ms/step (``bench/cost/calibrate.py``,
cached) against a later timing of the same steps (target: within 20%).

On a CPU the peak is measured in a child process (``--peak-only``): its RSS high-water mark (``VmHWM``,
reset through ``/proc/self/clear_refs`` after one warm-up step, so the kernels' code pages a first step loads
are in the baseline) with glibc's mmap threshold fixed at 64 KiB (``MALLOC_MMAP_THRESHOLD_``): every tensor of
64 KiB or more is its own mapping, returned to the OS when freed, so the RSS follows the bytes allocated, the
quantity ``max_memory_allocated`` reports on a GPU. With glibc's default (a threshold that grows after each
free, so freed tensors stay in the heap) the RSS peak also counts the allocator's retained memory;
``--glibc-default`` measures that instead. The fixed threshold costs page faults on every large allocation,
so the times are measured in this process, with glibc's defaults, as ``bench run`` runs. Usage::

    PYTHONPATH=. python scripts/cost_check.py [--batch 8] [--seq 64] [--models tiny-t5,minilm,smollm2]

Prints a markdown table; exits 1 when a row misses a target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from bench.cost.calibrate import calibrate, timed_steps
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


def _built(model: str, label: str, method: str, batch: int, seq: int, precision: str):
    shape = StepShape(model, method, json.dumps(METHODS[method]), batch, seq, 3, 2, precision)
    torch.manual_seed(0)
    backbone, _ = build_unloaded(shape, None)
    backbone.to(DEVICE)
    backbone.train(True)
    data = {k: v.to(DEVICE) for k, v in synthetic_batch(FAMILY[label], batch, seq, 3).items()}
    timed_steps(
        backbone, data, 1, precision, DEVICE
    )  # warm-up: kernels loaded, its optimiser state and gradients freed
    _trim()  # freed memory back to the OS, so the peak is the measured steps'
    return shape, backbone, data


def measure_peak(model: str, label: str, method: str, batch: int, seq: int, precision: str) -> int:
    """Peak bytes over the warmed-up model's baseline across 3 steps (CUDA: allocated; CPU: RSS)."""
    _, backbone, data = _built(model, label, method, batch, seq, precision)
    memory = Peak()
    timed_steps(backbone, data, 3, precision, DEVICE)
    return memory.over_baseline()


def _peak_in_child(args: list[str], glibc_default: bool) -> int:
    """:func:`measure_peak` in a fresh process, with glibc's mmap threshold fixed unless ``glibc_default``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if not glibc_default:
        env["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    out = subprocess.run(
        [sys.executable, __file__, "--peak-only", *args], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


def check(model: str, label: str, method: str, batch: int, seq: int, precision: str, glibc: bool) -> dict:
    shape = StepShape(model, method, json.dumps(METHODS[method]), batch, seq, 3, 2, precision)
    predicted = predict_step(shape)
    fixed, per_row, _ = peak_parts(predicted, batch, 1)
    predicted_rss = fixed - predicted.weights_bytes + per_row * batch
    where = [model, label, method, str(batch), str(seq), precision]
    rss = (
        measure_peak(*where[:3], batch, seq, precision)
        if DEVICE.type == "cuda"
        else _peak_in_child(where, glibc)
    )
    _, backbone, data = _built(model, label, method, batch, seq, precision)
    times = timed_steps(backbone, data, 7, precision, DEVICE)
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


class Peak:
    """Peak memory over the present: CUDA's ``max_memory_allocated``, or the RSS high-water mark (``VmHWM``,
    reset by writing 5 to ``/proc/self/clear_refs``: exact, no sampling)."""

    def __init__(self) -> None:
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")
            self.base = _status("VmRSS")

    def over_baseline(self) -> int:
        if DEVICE.type == "cuda":
            return torch.cuda.max_memory_allocated() - self.base
        return _status("VmHWM") - self.base


def _status(key: str) -> int:
    """A ``/proc/self/status`` field in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


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
    parser.add_argument(
        "--glibc-default",
        action="store_true",
        help="measure the CPU's RSS with glibc's default mmap threshold",
    )
    parser.add_argument("--peak-only", nargs=6, help=argparse.SUPPRESS)  # the child of _peak_in_child
    args = parser.parse_args()
    if args.peak_only:
        model, label, method, batch, seq, precision = args.peak_only
        print(measure_peak(model, label, method, int(batch), int(seq), precision))
        return 0
    fixed = DEVICE.type == "cpu" and not args.glibc_default
    os.environ.setdefault("PTBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="ptbench-cost-"))
    torch.set_num_threads(torch.get_num_threads())
    where = (
        torch.cuda.get_device_name(0) if DEVICE.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    )
    kind = "torch.cuda.max_memory_allocated" if DEVICE.type == "cuda" else "RSS high-water mark"
    if DEVICE.type == "cpu":
        kind += ", glibc mmap threshold 64 KiB" if fixed else ", glibc's default allocator settings"
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
                row = check(model, label, method, args.batch, args.seq, precision, args.glibc_default)
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
        meta = {"device": str(DEVICE), "peak": kind, "batch": args.batch, "seq": args.seq}
        Path(args.json).write_text(json.dumps({**meta, "rows": rows}, indent=1))
    print(f"\ntargets: saved within 5%, peak within 15%, time within 20%; {missed} row(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
