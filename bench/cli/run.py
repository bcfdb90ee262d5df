"""``bench run``: plan the grid, check it, run it with the chosen executor, summarise."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from bench.cli.common import UsageError, add_request_options, at_least, choices, log_dir, request_from_args
from bench.terminal import escape

HELP = "train methods on a suite's tasks and write one record per run"


def add_parser(sub) -> None:
    from bench.grid.executors import EXECUTORS

    run = sub.add_parser("run", help=HELP)
    run.add_argument("--methods", required=True, help="comma-separated method names, or 'all'")
    run.add_argument("--seeds", default="42,43,44", help="comma-separated seeds (default 42,43,44)")
    add_request_options(run, "run")
    run.add_argument(
        "--padding",
        choices=["longest", "max_length"],
        help="longest: batches cut to their longest row (default); max_length: every input padded to s (the "
        "papers' protocol, the paper preset's); same as --set train.padding=...",
    )
    run.add_argument(
        "--no-artifacts",
        action="store_true",
        help="do not save <out>/artifacts/<run_id>.safetensors (does not change run ids)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="plan and validate everything (names, values, model dims, data files), print the plan, run nothing",
    )
    run.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="save each run's training state every N steps under OUT/checkpoints/ and resume from it (default: "
        "the preset's: every dev evaluation for paper, none for the quick presets; 0: no checkpoints)",
    )
    run.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="SCOPE.FIELD=V1,V2,...",
        help="run once per value (pt.num_tokens=10,20,50); a method's field sweeps only that method; repeatable",
    )
    run.add_argument(
        "--params", help="settings to use: best:STUDY (a `bench tune` study's best trial) or a YAML/JSON file"
    )
    run.add_argument("--storage", help="study storage for --params best:STUDY (default <out>/tune.journal)")
    run.add_argument(
        "--executor",
        default="sequential",
        help=f"{choices(EXECUTORS)} (default sequential; local: --workers processes; slurm: a job array via "
        "submitit; submitit-local: the same on the local machine)",
    )
    run.add_argument("--workers", type=int, default=1, help="concurrent runs (local) or array tasks (slurm)")
    run.add_argument("--slurm-partition", help="Slurm partition (--executor slurm)")
    run.add_argument(
        "--slurm-timeout-min", type=int, help="Slurm time limit per run in minutes (default 1440)"
    )
    run.add_argument("--slurm-gpus", type=int, help="GPUs per array task (--executor slurm)")


def _with_padding(overrides: dict[str, dict[str, str]], padding: str | None) -> dict[str, dict[str, str]]:
    """``--padding X`` is ``--set train.padding=X``."""
    if padding:
        overrides.setdefault("train", {})["padding"] = padding
    return overrides


def cmd(args: argparse.Namespace, console: Console) -> int:
    from bench.grid.execute import execute_grid
    from bench.grid.executors import EXECUTORS
    from bench.planning.plan import parse_sweep, plan_with_sources
    from bench.planning.preflight import check_plan

    request = request_from_args(args, args.seeds)
    request.overrides = _with_padding(request.overrides, args.padding)
    request.out = args.out
    request.sweeps = [parse_sweep(item) for item in args.sweep]
    if args.params:
        from bench.tune.params import load_params
        from bench.tune.storage import default_storage

        given = load_params(args.params, request.methods, args.storage or default_storage(args.out))
        for scope, values in request.overrides.items():
            given.setdefault(scope, {}).update(values)  # --set wins over --params
        request.overrides = given
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out!r} is a file, not a results folder")
    at_least("--checkpoint-every", args.checkpoint_every, 0)
    EXECUTORS.lookup(args.executor)  # did-you-mean error before anything is planned
    at_least("--workers", args.workers, 1)
    logs = log_dir(args)
    sources, specs = plan_with_sources(request)
    for note in check_plan(sources + specs):
        console.print(f"[yellow]data[/yellow] {escape(note)}")
    for spec in sources:
        console.print(
            f"[bold]source[/bold]: {spec.label} ({spec.run_id}) is not in {args.out}/; it trains first "
            "(its prompt is a source prompt of runs below)"
        )
    if args.dry_run:
        from bench.grid.ui import print_plan

        print_plan(sources + specs, Path(args.out), console)
        return 0
    out, options = Path(args.out), {"checkpoint_every": args.checkpoint_every, "log_dir": logs}
    if args.executor == "sequential" and args.workers == 1:
        always = frozenset(s.run_id for s in sources)  # source prompts are artifacts
        return execute_grid(
            sources + specs, out, console, save_artifacts=not args.no_artifacts, always_save=always, **options
        )
    code = 0
    if sources:  # the prompts later runs start from: trained first, in order, before the grid fans out
        code = execute_grid(sources, out, console, **options)
    executor = "local" if args.executor == "sequential" else args.executor
    slurm = {
        "slurm_partition": args.slurm_partition,
        "timeout_min": args.slurm_timeout_min,
        "gpus_per_node": args.slurm_gpus,
    }
    grid = execute_grid(
        specs, out, console, executor, args.workers, slurm, save_artifacts=not args.no_artifacts, **options
    )
    return max(code, grid)
