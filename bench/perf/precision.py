"""``bench perf --precision fp32,tf32,bf16``: every case timed in each precision the device has, side by side.

A precision the device lacks (TF32 on a CPU or a pre-Ampere GPU, bf16 on a pre-Ampere GPU; see
``bench.training.precision.unavailable_reason``) is not timed: running it would time fp32 under another name. It is
reported as not available, with the reason. The comparison puts each (method, variant)'s median ms/step and
peak memory per precision in one row, with the ratios against fp32 (``bf16/fp32`` below 1 means bf16 is
faster or smaller).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rich.table import Table

from bench.errors import InputError
from bench.perf.cases import PerfCase
from bench.registry import did_you_mean
from bench.spec import PRECISIONS

TIME, MEMORY = "ms_per_step", "peak_mem_over_baseline_bytes"


def parse_precisions(text: str) -> list[str]:
    """``"fp32,bf16"`` -> ``["fp32", "bf16"]`` (order kept, duplicates dropped); a bad name is an
    InputError."""
    out: list[str] = []
    for name in (n.strip() for n in text.split(",")):
        if name not in PRECISIONS:
            raise InputError(
                f"--precision {name!r} is not allowed{did_you_mean(name, list(PRECISIONS))}; "
                f"allowed: {', '.join(PRECISIONS)} (comma-separated)"
            )
        if name not in out:
            out.append(name)
    return out


def split_available(precisions: list[str]) -> tuple[list[str], dict[str, str]]:
    """``(precisions this machine's device runs, {precision: why not} for the others)``; the device is the
    one the case subprocesses pick (CUDA when there is one)."""
    import torch

    from bench.training.precision import unavailable_reason

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    missing = {p: r for p in precisions if (r := unavailable_reason(p, device)) is not None}
    return [p for p in precisions if p not in missing], missing


def with_precisions(cases: list[PerfCase], precisions: list[str]) -> list[PerfCase]:
    """Every case once per precision, precision-major (all fp32 cases, then all bf16 ...)."""
    return [replace(case, precision=p) for p in precisions for case in cases]


def compare(rows: list[dict[str, Any]], precisions: list[str]) -> list[dict[str, Any]]:
    """One entry per (label, variant): ``{"label", "variant", "by_precision": {p: {ms_per_step, peak...}},
    "ratios": {"bf16/fp32 time": x, "bf16/fp32 memory": y, ...}}`` (ratios where both were measured)."""
    keyed: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        if "error" not in row:
            keyed.setdefault((row["label"], row["variant"]), {})[row.get("precision", "fp32")] = row
    out = []
    for (label, variant), by in keyed.items():
        ratios = {}
        for p in precisions:
            if p != "fp32" and p in by and "fp32" in by:
                for name, key in (("time", TIME), ("memory", MEMORY)):
                    base = by["fp32"][key]
                    ratios[f"{p}/fp32 {name}"] = by[p][key] / base if base else float("nan")
        out.append(
            {
                "label": label,
                "variant": variant,
                "by_precision": {
                    p: {TIME: by[p][TIME], MEMORY: by[p][MEMORY]} for p in precisions if p in by
                },
                "ratios": ratios,
            }
        )
    return out


def comparison_table(compared: list[dict[str, Any]], precisions: list[str]) -> Table:
    """ms/step and peak MB per precision side by side, then each precision's ratios to fp32."""
    table = Table(title="precision side by side (ratio < 1: faster / smaller than fp32)", header_style="bold")
    table.add_column("method")
    table.add_column("variant")
    for p in precisions:
        table.add_column(f"{p} ms/step", justify="right")
        table.add_column(f"{p} peak MB", justify="right")
    ratio_names = [f"{p}/fp32 {n}" for p in precisions if p != "fp32" for n in ("time", "memory")]
    for name in ratio_names:
        table.add_column(name, justify="right")
    for entry in compared:
        cells = [entry["label"], entry["variant"]]
        for p in precisions:
            got = entry["by_precision"].get(p)
            cells += [f"{got[TIME]:.1f}", f"{got[MEMORY] / 2**20:.1f}"] if got else ["-", "-"]
        cells += [f"{entry['ratios'][n]:.3f}" if n in entry["ratios"] else "-" for n in ratio_names]
        table.add_row(*cells)
    return table
