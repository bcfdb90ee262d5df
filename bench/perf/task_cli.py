"""``bench perf --task NAME``'s flags and command: the real job's batches, harness against PEFT (``real_task``)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.perf.tables import rows_table, targets_table
from bench.terminal import show


def add_arguments(perf: argparse.ArgumentParser) -> None:
    """The flags of the real-job mode (the synthetic flags ``--batch``/``--seq-len``/``--steps``/``--warmup``
    do not apply: the preset decides, ``--set train.FIELD=VALUE`` overrides)."""
    perf.add_argument(
        "--task",
        help="time the real job of this task (its rows, text format, batch order and dynamic padding, as "
        "`bench run` trains it) instead of synthetic rows; default: synthetic rows",
    )
    perf.add_argument("--preset", default="quick", help="with --task: the run's preset (default quick)")
    perf.add_argument(
        "--data-dir",
        default=os.environ.get("BENCH_DATA_DIR"),
        help="with --task: the GLUE/SuperGLUE folder (default $BENCH_DATA_DIR, else the Hub)",
    )
    perf.add_argument("--seed", type=int, default=42, help="with --task: the run's seed (default 42)")


def task_table(rows: list[dict], title: str) -> Table:
    """Per (method, variant): rows' length, the three times, the memory peak and the contention verdicts."""
    table = Table(title=title, header_style="bold")
    columns = ("method", "variant", "tokens/row", "positions/step", "median ms", "mean ms", "train s",
               "peak MB", "contended")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col in ("method", "variant", "contended") else "right")
    for r in rows:
        if "error" in r:
            table.add_row(r["label"], r["variant"], *["-"] * 6, r["error"])
            continue
        flags = r.get("contended_repeats") or [bool((r.get("contention") or {}).get("contended"))]
        table.add_row(
            r["label"], r["variant"], f"{r['tokens_per_row']:.1f}", f"{r['positions_per_step']:.0f}",
            f"{r['ms_per_step']:.1f}", f"{r['ms_per_step_mean']:.1f}", f"{r['train_time_s']:.1f}",
            f"{r['peak_mem_over_baseline_bytes'] / 2**20:.1f}", ", ".join("yes" if f else "no" for f in flags),
        )  # fmt: skip
    return table


def cmd(
    args: argparse.Namespace, console: Console, methods: list[str], variants: list[str], overrides
) -> int:
    """Plan the real-job cases, run them interleaved ``--repeats`` times, print the tables, write ``--out``."""
    from bench.perf.cases import run_in_subprocess
    from bench.perf.real_task import best_task_rows, job_spec, task_cases, task_ratios

    cases = task_cases(
        methods, variants, args.task, args.model, args.preset, args.data_dir, args.seed, overrides
    )
    job_spec(cases[0])  # bad task, preset, data folder or --set: one line now, not an error row per case
    rows = []
    for repeat in range(args.repeats):
        for case in cases:
            console.print(
                f"timing {case.label} ({case.variant}) on {args.task} [{repeat + 1}/{args.repeats}] ..."
            )
            rows.append(run_in_subprocess(case))
    best = best_task_rows(rows)
    title = f"{cases[0].model}, {args.task}, preset {args.preset}, seed {args.seed} (best of {args.repeats})"
    show(console, rows_table(best, title))
    show(console, task_table(best, f"{args.task}: the real job's batches"))
    ratios = task_ratios(best)
    show(console, targets_table(ratios))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": best, "repeats": rows, "ratios": ratios}, indent=2))
    console.print(f"wrote {out}")
    return 1 if any("error" in r for r in best) else 0
