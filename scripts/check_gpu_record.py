"""The checks ``scripts/gpu_check.sh`` makes on what a CUDA machine wrote; exit 1 and one line per problem.

    python -m scripts.check_gpu_record memory RECORD.json ...   # ok runs with plausible CUDA memory fields
    python -m scripts.check_gpu_record oom RESULTS_DIR          # one oom record, and the grid went on
    python -m scripts.check_gpu_record perf PERF.json fp32,tf32,bf16

Each check is a function returning the problems it found (empty: passed), so the tests can hand it good and
bad fabricated records on a CPU. Reads JSON only: no torch, no CUDA.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

MEMORY_FIELDS = (
    "peak_gpu_mem_allocated_bytes",
    "peak_gpu_mem_reserved_bytes",
    "peak_gpu_mem_allocated_over_baseline_bytes",
    "peak_gpu_mem_reserved_over_baseline_bytes",
)


def memory_problems(record: dict[str, Any]) -> list[str]:
    """A finished CUDA run: status ok, every CUDA memory field an int > 0, reserved >= allocated, absolute >=
    over-baseline, all below the device's memory (``env.gpu_total_memory_bytes``), and ``env.precision`` the
    precision the spec asked for (Ampere+ runs tf32 as asked)."""
    name = record.get("run_id", "?")
    env = record.get("env") or {}
    if record.get("status") != "ok":
        return [f"{name}: status {record.get('status')!r}, not 'ok' ({record.get('error')})"]
    problems = []
    if not str(env.get("device", "")).startswith("cuda"):
        problems.append(f"{name}: env.device is {env.get('device')!r}, not a CUDA device")
    total = env.get("gpu_total_memory_bytes")
    if not isinstance(total, int) or total <= 0:
        problems.append(f"{name}: env.gpu_total_memory_bytes is {total!r}, not a positive int")
        total = None
    values = {f: record.get(f) for f in MEMORY_FIELDS}
    for field, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            problems.append(f"{name}: {field} is {value!r}, not an int > 0")
        elif total is not None and value >= total:
            problems.append(f"{name}: {field} = {value:,} is not below the device's {total:,} bytes")
    if problems:
        return problems
    for small, large in (
        ("peak_gpu_mem_allocated_bytes", "peak_gpu_mem_reserved_bytes"),
        ("peak_gpu_mem_allocated_over_baseline_bytes", "peak_gpu_mem_allocated_bytes"),
        ("peak_gpu_mem_reserved_over_baseline_bytes", "peak_gpu_mem_reserved_bytes"),
    ):
        if values[small] > values[large]:
            problems.append(f"{name}: {small} = {values[small]:,} exceeds {large} = {values[large]:,}")
    asked = (record.get("spec") or {}).get("train", {}).get("precision", "fp32")
    if env.get("precision") != asked or env.get("precision_requested") != asked:
        problems.append(
            f"{name}: asked for {asked!r} but env.precision={env.get('precision')!r}, "
            f"env.precision_requested={env.get('precision_requested')!r}"
        )
    return problems


def oom_problems(records: list[dict[str, Any]]) -> list[str]:
    """A grid with one huge-batch run: exactly one ``oom`` record (its error an out-of-memory error), and
    every other run ``ok``, so the grid carried on after it."""
    statuses = [r.get("status") for r in records]
    problems = []
    ooms = [r for r in records if r.get("status") == "oom"]
    if len(ooms) != 1:
        problems.append(f"expected exactly one 'oom' record, got statuses {statuses}")
    for rec in ooms:
        if "memory" not in str(rec.get("error", "")).lower():
            problems.append(
                f"{rec.get('run_id')}: oom record's error does not name memory: {rec.get('error')!r}"
            )
    others = [r for r in records if r.get("status") != "oom"]
    if not others:
        problems.append("no run after the oom one: cannot tell the grid went on")
    for rec in others:
        if rec.get("status") != "ok":
            problems.append(
                f"{rec.get('run_id')}: status {rec.get('status')!r} after the oom ({rec.get('error')})"
            )
    return problems


def perf_problems(perf: dict[str, Any], precisions: list[str]) -> list[str]:
    """``bench perf`` on a GPU: no error rows; every row timed in each precision, which ran as asked; achieved
    TFLOP/s > 0 and below the datasheet peak of that precision, which is known for this GPU."""
    rows = perf.get("rows") or []
    problems = [f"{r.get('label')} {r.get('precision')}: {r['error']}" for r in rows if "error" in r]
    if not rows:
        return ["no rows in the perf output"]
    missing = (perf.get("precision") or {}).get("unavailable") or {}
    problems += [f"{p} not available on this GPU: {missing[p]}" for p in precisions if p in missing]
    labels = {r.get("label") for r in rows}
    have = {(r.get("label"), r.get("precision")) for r in rows if "error" not in r}
    problems += [
        f"{label}: no {p} row" for label in sorted(labels) for p in precisions if (label, p) not in have
    ]
    for r in rows:
        if "error" in r:
            continue
        what = f"{r['label']} {r.get('precision')}"
        if r.get("precision_ran") != r.get("precision"):
            problems.append(f"{what}: ran as {r.get('precision_ran')!r}")
        achieved, peak = r.get("tflops_per_s"), r.get("device_peak_tflops")
        if not achieved or achieved <= 0:
            problems.append(f"{what}: achieved TFLOP/s is {achieved!r}")
        elif not peak:
            problems.append(f"{what}: no datasheet peak for this GPU in {r.get('precision')}")
        elif achieved > peak:
            problems.append(f"{what}: {achieved:.1f} TFLOP/s is above the datasheet peak {peak:g}")
    return problems


def _report(title: str, problems: list[str]) -> int:
    for line in problems:
        print(f"FAIL {title}: {line}")
    if not problems:
        print(f"OK   {title}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="check", required=True)
    sub.add_parser("memory").add_argument("records", nargs="+", type=Path)
    sub.add_parser("oom").add_argument("results", type=Path)
    perf = sub.add_parser("perf")
    perf.add_argument("perf", type=Path)
    perf.add_argument("precisions", nargs="?", default="fp32,tf32,bf16")
    args = parser.parse_args(argv)
    if args.check == "memory":
        problems = [p for path in args.records for p in memory_problems(json.loads(path.read_text()))]
        return _report(f"CUDA memory fields of {len(args.records)} record(s)", problems)
    if args.check == "oom":
        found = [json.loads(p.read_text()) for p in sorted(args.results.glob("*.json"))]
        records = [r for r in found if isinstance(r, dict) and "run_id" in r and "status" in r]
        return _report(f"oom record and the grid going on ({len(records)} records)", oom_problems(records))
    precisions = [p for p in args.precisions.split(",") if p]
    return _report(
        f"perf in {', '.join(precisions)}", perf_problems(json.loads(args.perf.read_text()), precisions)
    )


if __name__ == "__main__":
    sys.exit(main())
