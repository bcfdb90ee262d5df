"""``bench report``: tables, bootstrap tests, figures and an HTML page from the records."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from bench.cli.common import UsageError, at_least, int_list, names

HELP = "tables, bootstrap tests, figures and an HTML page from the records"
FILTERS = ("suite", "tasks", "methods", "model", "preset")


def add_parser(sub) -> None:
    report = sub.add_parser("report", help=HELP)
    report.add_argument("--results", default="results", help="records folder (default results/)")
    report.add_argument(
        "--out", default="reports", help="report folder, replaced wholesale (default reports/)"
    )
    for name in FILTERS:
        report.add_argument(f"--{name}", help=f"keep only these {name} (comma-separated)")
    report.add_argument(
        "--seeds",
        help="keep only runs with these seeds (comma-separated, e.g. 42: the papers' single-seed tables)",
    )
    report.add_argument("--vs", help="paired bootstrap of this method (or row label) against each other row")
    report.add_argument(
        "--with-published",
        action="store_true",
        help="add the published single-task T5-Base numbers (table and parameter trade-off figure)",
    )
    report.add_argument(
        "--with-multitask",
        action="store_true",
        help="with --with-published: add the published multi-task rows too (left out by default)",
    )
    report.add_argument(
        "--bootstrap-samples", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    report.add_argument("--bootstrap-seed", type=int, default=0, help="bootstrap random seed (default 0)")
    report.add_argument(
        "--pscp-beta",
        metavar="P,F,M",
        help="PSCP exponents for parameters, inference FLOPs and memory (default 1,1,1; docs/reports.md#pscp)",
    )
    report.add_argument(
        "--include-contended",
        action="store_true",
        help="keep runs measured under contention in the time and memory figures (left out by default)",
    )


def cmd(args: argparse.Namespace, console: Console) -> int:
    from bench.report.build import ReportOptions, build_report
    from bench.report.load import Filters
    from bench.report.pscp import Betas

    if not Path(args.results).is_dir():
        raise UsageError(f"--results {args.results!r} is not a folder")
    at_least("--bootstrap-samples", args.bootstrap_samples, 1)
    if args.with_multitask and not args.with_published:
        raise UsageError("--with-multitask adds rows to --with-published's table: give both")
    seeds = int_list(args.seeds, "--seeds") if args.seeds is not None else None
    filters = Filters(*(names(getattr(args, k)) for k in FILTERS), seeds=seeds)
    options = ReportOptions(
        Path(args.results), Path(args.out), filters, args.vs, args.with_published, args.bootstrap_samples,
        args.bootstrap_seed, Betas.parse(args.pscp_beta), args.include_contended, args.with_multitask,
    )  # fmt: skip
    written = build_report(options)
    console.print(f"report: {len(written)} files -> {Path(args.out) / 'index.html'}")
    for name in sorted(written):
        console.print(f"  {name}")
    return 0
