"""What ``bench perf`` times: one ``PerfCase`` per (row, variant), each in its own subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.perf.defaults import PERF

VARIANTS = ("harness", "bare", "peft")
# Evaluation timing (``--eval``, seq2seq and decoder models): one predict() call per batch in each mode.
EVAL_VARIANTS = ("score", "generate")
EVAL_ROW = "eval"


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
    precision: str = "fp32"  # train.precision of the timed loop (bench/training/precision.py)
    # ``bench perf --task``: the real job's rows, order and settings (``bench/perf/real_task.py``); None: the
    # synthetic fixed-length rows above.
    task: str | None = None
    preset: str = "quick"
    data_dir: str | None = None
    train_overrides: dict[str, str] = field(default_factory=dict)


def has_peft_twin(method: str) -> bool:
    """Whether the method declares a PEFT equivalent (``Method.peft_equivalent``)."""
    from methods.base import Method
    from methods.registry import get_method_class

    return get_method_class(method).peft_equivalent.__func__ is not Method.peft_equivalent.__func__


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
    """Every (method, variant) pair that exists, plus the same-length comparison rows of ``PERF.same_length``
    (e.g. ``pt@lpt``: PT at LPT's prompt length); ``eval_modes`` adds ``PERF.eval_method``'s evaluation by
    label scoring and by generation (rows ``eval``)."""
    from methods.registry import build_config

    cases = []
    rows = [(m, m, overrides.get(m, {})) for m in methods]
    for method, reference in PERF.same_length.items():
        if method in methods:
            tokens = str(build_config(method, overrides.get(method)).num_tokens)
            fields = {**overrides.get(reference, {}), "num_tokens": tokens}
            rows.append((f"{reference}@{method}", reference, fields))
    for label, method, fields in rows:
        for variant in variants:
            if variant == "peft" and not has_peft_twin(method):
                continue
            cases.append(PerfCase(label, method, variant, model, batch, seq_len, steps, warmup, dict(fields)))
    if eval_modes:
        fields = overrides.get(PERF.eval_method, {})
        for variant in EVAL_VARIANTS:
            cases.append(
                PerfCase(EVAL_ROW, PERF.eval_method, variant, model, batch, seq_len, steps, warmup, fields)
            )
    return cases


def run_in_subprocess(case: PerfCase, timeout_s: float = 3600) -> dict[str, Any]:
    """``python -m bench.perf CASE.json``: the case's row, or the row with an ``error``."""
    with tempfile.TemporaryDirectory(prefix="ptbench-perf-") as tmp:
        spec = Path(tmp) / "case.json"
        spec.write_text(json.dumps(asdict(case)))
        proc = subprocess.run(
            [sys.executable, "-m", "bench.perf", str(spec)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=Path(__file__).resolve().parents[2],
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "no output")
        return {**asdict(case), "error": f"exit {proc.returncode}: {last}"}
    return json.loads(lines[-1])


def repeat_groups(
    rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], tuple]
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Rows of interleaved repeats grouped by ``key(row)`` in first-seen order: ``(first row, rows without an
    error)`` per group (the first row is the error row to report when every repeat failed)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return [(group[0], [r for r in group if "error" not in r]) for group in groups.values()]


def best_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (label, variant, precision) from repeated runs: the fastest median and the lowest peak.

    Repeats run interleaved (every case once, then again), so a slow spell of a shared machine hits every
    variant alike; the minimum is the least-disturbed measurement of each. The repeats' medians are kept.
    """
    out = []
    for first, good in repeat_groups(rows, lambda r: (r["label"], r["variant"], r.get("precision", "fp32"))):
        if not good:
            out.append(first)  # every repeat failed: its error row
            continue
        best = dict(min(good, key=lambda r: r["ms_per_step"]))
        best["peak_mem_over_baseline_bytes"] = min(r["peak_mem_over_baseline_bytes"] for r in good)
        best["ms_per_step_repeats"] = [r["ms_per_step"] for r in good]
        out.append(best)
    return out
