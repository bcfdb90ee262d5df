"""``bench eval``: re-evaluate a finished run from its record and artifact; exact equality or exit 1."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.terminal import show

HELP = "re-evaluate a finished run from its record and saved artifact"


def add_parser(sub) -> None:
    ev = sub.add_parser("eval", help=HELP)
    ev.add_argument("run", metavar="RUN_ID|RECORD_PATH", help="a run id (or unique prefix) or a record file")
    ev.add_argument("--out", default="results", help="results folder (default results/)")
    ev.add_argument(
        "--data-dir",
        help="data folder (default: the run's own, else $BENCH_DATA_DIR); not part of the run id",
    )


def cmd(args: argparse.Namespace, console: Console) -> int:
    """Exit 0 if the re-evaluated dev and test metrics equal the recorded ones exactly, 1 if not, 2 bad input."""
    from bench.run.reeval import NotReproduced, compare, find_record, reevaluate

    results_dir, record = find_record(args.run, Path(args.out))
    try:
        reproduced = reevaluate(record, results_dir, args.data_dir)
    except NotReproduced as exc:
        print(f"bench: not reproduced: {exc}", file=sys.stderr)
        return 1
    rows = compare(record, reproduced)
    spec = record["spec"]
    table = Table(
        title=f"{spec['method']} on {spec['suite']}/{spec['task']} seed {spec['seed']} ({record['run_id']})",
        header_style="bold",
    )
    for col in ("split", "metric", "recorded", "reproduced", ""):
        table.add_column(col, justify="right" if col in ("recorded", "reproduced") else "left")
    for split, name, recorded, again, equal in rows:
        table.add_row(split, name, repr(recorded), repr(again), "equal" if equal else "[red]DIFFERS[/red]")
    show(console, table)
    same = all(row[4] for row in rows)
    console.print("reproduced exactly" if same else "[red]not reproduced[/red]: metrics differ")
    return 0 if same else 1
