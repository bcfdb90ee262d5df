"""``bench perf``: ms/step and peak memory per method (harness vs bare loop vs PEFT), with the target ratios."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.cli.common import UsageError, at_least, choices
from bench.terminal import show

HELP = "ms/step and peak memory per method: harness vs bare loop vs PEFT"


def add_parser(sub) -> None:
    from bench.perf import VARIANTS
    from bench.presets import PERF_METHODS

    perf = sub.add_parser("perf", help=HELP)
    perf.add_argument("--model", default="minilm")
    perf.add_argument("--methods", default=",".join(PERF_METHODS))
    perf.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"any of {choices(VARIANTS)} (comma-separated)"
    )
    perf.add_argument("--batch", type=int, default=16)
    perf.add_argument("--seq-len", type=int, default=128)
    perf.add_argument("--steps", type=int, default=20, help="timed steps (median), after --warmup")
    perf.add_argument("--warmup", type=int, default=5)
    perf.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run every case N times, interleaved; keep the best (default 1)",
    )
    perf.add_argument("--out", default="reports/perf.json", help="JSON output (default reports/perf.json)")
    perf.add_argument("--set", action="append", default=[], metavar="METHOD.FIELD=VALUE")
    perf.add_argument(
        "--precision",
        default="fp32",
        help="fp32 | tf32 | bf16, comma-separated: time every case in each (the device's missing ones are "
        "reported, not timed) and compare them side by side (default fp32)",
    )
    perf.add_argument(
        "--eval",
        action="store_true",
        help="also time evaluation of one batch by label scoring vs greedy generation (seq2seq, decoder)",
    )


def _tflops(row: dict) -> str:
    """Achieved TFLOP/s, and the share of the GPU's datasheet peak when it is known."""
    if row.get("tflops_per_s") is None:
        return "-"
    peak = row.get("device_peak_tflops")
    share = f" ({100 * row['tflops_per_s'] / peak:.0f}% of {peak:g})" if peak else ""
    return f"{row['tflops_per_s']:.3f}{share}"


def rows_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title, header_style="bold")
    columns = (
        "method",
        "variant",
        "ms/step",
        "p90",
        "tokens/s",
        "TFLOP/s",
        "peak mem MB",
        "trainable",
        "note",
    )
    for col in columns:
        table.add_column(col, justify="left" if col in ("method", "variant", "note") else "right")
    for row in rows:
        if "error" in row:
            table.add_row(row["label"], row["variant"], "-", "-", "-", "-", "-", "-", row["error"][:80])
            continue
        table.add_row(
            row["label"],
            row["variant"],
            f"{row['ms_per_step']:.1f}",
            f"{row['ms_per_step_p90']:.1f}",
            f"{row['tokens_per_s']:,.0f}",
            _tflops(row),
            f"{row['peak_mem_over_baseline_bytes'] / 2**20:.1f}",
            f"{row['trainable_params']:,}",
            row["memory_kind"],
        )
    return table


def targets_table(targets: list[dict]) -> Table:
    table = Table(title="targets (ratio <= target)", header_style="bold")
    for col in ("ratio", "measured", "target", "met"):
        table.add_column(col)
    for r in targets:
        table.add_row(r["ratio"], f"{r['value']:.3f}", f"{r['target']:.3f}", "yes" if r["met"] else "NO")
    return table


def cmd(args: argparse.Namespace, console: Console) -> int:
    from bench.models import resolve_model
    from bench.perf import VARIANTS, best_of, plan_cases, ratios, run_in_subprocess
    from bench.perf.precision import (
        compare,
        comparison_table,
        parse_precisions,
        split_available,
        with_precisions,
    )
    from bench.plan import parse_overrides
    from bench.registry import unknown_name
    from methods.registry import parse_method_list

    methods = parse_method_list(args.methods)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for variant in variants:
        if variant not in VARIANTS:
            raise unknown_name("variant", variant, list(VARIANTS), error=UsageError)
    for flag, value, low in (("--batch", args.batch, 1), ("--seq-len", args.seq_len, 8)):
        at_least(flag, value, low)
    for flag, value, low in (
        ("--steps", args.steps, 1),
        ("--repeats", args.repeats, 1),
        ("--warmup", args.warmup, 0),
    ):
        at_least(flag, value, low)
    resolve_model(args.model)
    precisions, unavailable = split_available(parse_precisions(args.precision))
    for name, why in unavailable.items():
        console.print(f"{name}: not available on this device, not timed ({why})")
    if not precisions:
        raise UsageError(f"--precision {args.precision!r}: none of these precisions runs on this device")
    cases = plan_cases(
        methods, variants, args.model, args.batch, args.seq_len, args.steps, args.warmup,
        parse_overrides(args.set, methods), eval_modes=args.eval,
    )  # fmt: skip
    cases = with_precisions(cases, precisions)
    rows = []
    for repeat in range(args.repeats):
        for case in cases:
            what = f"{case.variant}, {case.precision}"
            console.print(f"timing {case.label} ({what}) [{repeat + 1}/{args.repeats}] ...")
            rows.append(run_in_subprocess(case))
    rows = best_of(rows)
    targets = []
    for name in precisions:  # one table and one set of target ratios per precision
        subset = [r for r in rows if r.get("precision", "fp32") == name]
        show(console, rows_table(subset, f"{args.model}, batch {args.batch}, seq {args.seq_len}, {name}"))
        targets += [{**t, "precision": name} for t in ratios(subset, args.seq_len)]
        show(console, targets_table([t for t in targets if t["precision"] == name]))
    compared = compare(rows, precisions)
    if len(precisions) > 1:
        show(console, comparison_table(compared, precisions))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    timed = {"timed": precisions, "unavailable": unavailable, "compared": compared}
    out.write_text(json.dumps({"rows": rows, "ratios": targets, "precision": timed}, indent=2))
    console.print(f"wrote {out}")
    return 1 if any("error" in r for r in rows) else 0
