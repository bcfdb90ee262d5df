"""``bench perf``: ms/step and peak memory per method (harness vs bare loop vs PEFT), with the target ratios."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from bench.cli.common import UsageError, at_least, choices
from bench.perf.tables import rows_table, targets_table
from bench.terminal import show

HELP = "ms/step and peak memory per method: harness vs bare loop vs PEFT"


def add_parser(sub) -> None:
    from bench.perf import VARIANTS
    from bench.perf.defaults import PERF_METHODS
    from bench.perf.real_task import TASK_VARIANTS
    from bench.perf.task_cli import add_arguments

    perf = sub.add_parser("perf", help=HELP)
    perf.add_argument("--model", default="minilm", help="model alias or folder (default minilm)")
    perf.add_argument("--methods", help=f"default {','.join(PERF_METHODS)}; with --task: pt,lora")
    perf.add_argument(
        "--variants",
        help=f"any of {choices(VARIANTS)} (comma-separated; all by default, '' for none: --eval only); with "
        f"--task any of {choices(TASK_VARIANTS)}",
    )
    perf.add_argument("--batch", type=int, default=16, help="rows per step (default 16)")
    perf.add_argument("--seq-len", type=int, default=128, help="tokens per synthetic row (default 128)")
    perf.add_argument("--steps", type=int, default=20, help="timed steps (median), after --warmup")
    perf.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    perf.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run every case N times, interleaved; keep the best (default 1)",
    )
    perf.add_argument("--out", default="reports/perf.json", help="JSON output (default reports/perf.json)")
    perf.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="METHOD.FIELD=VALUE",
        help="override a config field; repeatable",
    )
    perf.add_argument(
        "--precision",
        default="fp32",
        help="fp32 | tf32 | bf16, comma-separated: time every case in each (the device's missing ones are "
        "reported, not timed) and compare them side by side (default fp32)",
    )
    perf.add_argument(
        "--eval",
        action="store_true",
        help="also time evaluation of one batch by label scoring vs greedy generation (seq2seq, decoder), and "
        "one-pass scoring vs the per-label loop for 2, 3 and 26 labels",
    )
    add_arguments(perf)  # --task and its settings (bench/perf/task_cli.py)


def _label_scoring(args: argparse.Namespace, console: Console) -> list[dict]:
    """``--eval``: one-pass label scoring vs the per-label loop, generation and a forward (bench/perf/scoring.py)."""
    from bench.perf.defaults import PERF
    from bench.perf.scoring import scoring_rows, scoring_table
    from bench.planning.plan import parse_overrides

    console.print("timing label scoring (2, 3 and 26 labels) ...")
    fields = parse_overrides(args.set, [PERF.eval_method]).get(PERF.eval_method, {})
    rows = scoring_rows(args.model, args.batch, args.seq_len, args.steps, args.warmup, fields)
    if rows:
        show(console, scoring_table(rows))
    else:
        console.print(f"label scoring: {args.model} is an encoder (a class head), it scores no label strings")
    return rows


def cmd(args: argparse.Namespace, console: Console) -> int:
    from bench.backbones.models import resolve_model
    from bench.perf import VARIANTS, best_of, plan_cases, run_in_subprocess
    from bench.perf.defaults import PERF_METHODS
    from bench.perf.precision import parse_precisions, split_available, with_precisions
    from bench.perf.real_task import TASK_METHODS, TASK_VARIANTS
    from bench.planning.plan import parse_overrides
    from bench.registry import unknown_name
    from methods.registry import parse_method_list

    allowed = TASK_VARIANTS if args.task else VARIANTS
    methods = parse_method_list(args.methods or ",".join(TASK_METHODS if args.task else PERF_METHODS))
    given = ",".join(allowed) if args.variants is None else args.variants  # "" times no training variant
    variants = [v.strip() for v in given.split(",") if v.strip()]
    for variant in variants:
        if variant not in allowed:
            raise unknown_name("variant", variant, list(allowed), error=UsageError)
    if args.task:  # the real job's batches (bench/perf/task_cli.py); its precision is --set train.precision
        from bench.perf.task_cli import cmd as task_cmd

        at_least("--repeats", args.repeats, 1)
        return task_cmd(args, console, methods, variants, parse_overrides(args.set, methods))
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
    rows = []
    for repeat in range(args.repeats):
        for case in with_precisions(cases, precisions):
            what = f"{case.variant}, {case.precision}"
            console.print(f"timing {case.label} ({what}) [{repeat + 1}/{args.repeats}] ...")
            rows.append(run_in_subprocess(case))
    rows = best_of(rows)
    targets, timed = _precision_tables(args, console, rows, precisions, unavailable)
    scoring = _label_scoring(args, console) if args.eval else []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"rows": rows, "ratios": targets, "precision": timed, "scoring": scoring}, indent=2)
    )
    console.print(f"wrote {out}")
    return 1 if any("error" in r for r in rows) else 0


def _precision_tables(
    args: argparse.Namespace, console: Console, rows: list[dict], precisions: list[str], unavailable: dict
) -> tuple[list[dict], dict]:
    """One rows table and one set of target ratios per precision, then the side-by-side precision table."""
    from bench.perf import ratios
    from bench.perf.precision import compare, comparison_table

    targets = []
    for name in precisions:
        subset = [r for r in rows if r.get("precision", "fp32") == name]
        show(console, rows_table(subset, f"{args.model}, batch {args.batch}, seq {args.seq_len}, {name}"))
        targets += [{**t, "precision": name} for t in ratios(subset, args.seq_len)]
        show(console, targets_table([t for t in targets if t["precision"] == name]))
    compared = compare(rows, precisions)
    if len(precisions) > 1:
        show(console, comparison_table(compared, precisions))
    return targets, {"timed": precisions, "unavailable": unavailable, "compared": compared}
