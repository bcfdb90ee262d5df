"""``bench tune``: an Optuna search per method and task on dev; ``bench tune show STUDY`` prints one."""

from __future__ import annotations

import argparse

from rich.console import Console

from bench.cli.common import UsageError, add_request_options, at_least, log_dir, request_from_args
from bench.terminal import show

HELP = "hyperparameter search with Optuna (dev split only); `bench tune show STUDY` prints one"


def add_parser(sub) -> None:
    from bench.cost.options import add_cost_options

    tune = sub.add_parser("tune", help=HELP)
    tune.add_argument("action", nargs="*", help="nothing to search, or: show STUDY")
    tune.add_argument(
        "--methods", "--method", dest="methods", help="method(s) to tune; several = budget-matched"
    )
    add_request_options(tune, "tune")
    tune.add_argument("--trials", type=int, default=30, help="trials per study (default 30)")
    tune.add_argument("--study", help="study name (default <method>-<suite>-<task>-<preset>)")
    tune.add_argument("--storage", help="journal file or SQLAlchemy URL (default <out>/tune.journal)")
    tune.add_argument("--seed", type=int, default=42, help="training seed of every trial (default 42)")
    tune.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="save each trial's training state every N steps under OUT/checkpoints/ (default: the preset's: "
        "every dev evaluation for paper, none for the quick presets; 0: no checkpoints); a retried trial "
        "resumes from it",
    )
    tune.add_argument(
        "--sampler-seed", type=int, default=0, help="TPE seed; worker k uses seed+k (default 0)"
    )
    tune.add_argument(
        "--workers", type=int, default=1, help="searching processes on the local machine (default 1)"
    )
    tune.add_argument(
        "--pruner", default="median", help="median (default) | none | NAME:key=value,... (Optuna's)"
    )
    tune.add_argument("--space", help="YAML file replacing the methods' declared search spaces")
    tune.add_argument(
        "--reports", default="reports", help="plots and summaries go to <reports>/tune/ (default)"
    )
    tune.add_argument("--top", type=int, default=10, help="show: how many trials (default 10)")
    add_cost_options(tune)


def cmd(args: argparse.Namespace, console: Console) -> int:
    from bench.tune.storage import default_storage

    storage = args.storage or default_storage(args.out)
    if args.action:
        if args.action[0] != "show" or len(args.action) != 2:
            raise UsageError(
                f"bench tune {' '.join(args.action)!r}: expected `bench tune show STUDY` or options"
            )
        from bench.tune.search import load_study
        from bench.tune.summary import summarise, trials_table

        study = load_study(args.action[1], storage)
        show(console, trials_table(study, args.top))
        counts = summarise(study)["trials"]
        console.print(", ".join(f"{n} {state}" for state, n in counts.items()))
        return 0
    from bench.cost.show import print_tune_cost
    from bench.tune.search import TuneRequest, run_tune
    from bench.tune.space import load_space_file

    if not args.methods:
        raise UsageError(
            "bench tune needs --method NAME (or --methods a,b,c for a budget-matched comparison)"
        )
    request = request_from_args(args, [args.seed])
    at_least("--trials", args.trials, 1)
    at_least("--workers", args.workers, 1)
    at_least("--checkpoint-every", args.checkpoint_every, 0)
    logs = log_dir(args)
    print_tune_cost(request, args.trials, args, console)
    tune = TuneRequest(
        request=request,
        out_dir=args.out,
        trials=args.trials,
        storage=storage,
        study=args.study,
        pruner=args.pruner,
        sampler_seed=args.sampler_seed,
        workers=args.workers,
        space_overrides=load_space_file(args.space) if args.space else {},
        reports_dir=args.reports,
        log_dir=str(logs) if logs is not None else None,
        checkpoint_every=args.checkpoint_every,
    )
    return run_tune(tune, console)
