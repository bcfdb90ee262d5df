"""``bench``: run, list, count and tune. Bad input is a one-line error with what is allowed, exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from bench.terminal import escape, make_console, show

# Messages print whole at any width (soft-wrapped); tables fold cells (bench/terminal.py).
console = make_console()


class UsageError(ValueError):
    """A bad command-line value."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is the same one line as every other bad input (exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"bench: error: {message} (see {self.prog} --help)\n")


def _with_padding(overrides: dict[str, dict[str, str]], padding: str | None) -> dict[str, dict[str, str]]:
    """``--padding X`` is ``--set train.padding=X``."""
    if padding:
        overrides.setdefault("train", {})["padding"] = padding
    return overrides


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"{what} {text!r} must be comma-separated integers, e.g. 42,43,44") from None
    if not values:
        raise UsageError(f"{what} {text!r} is empty")
    return values


def _tasks(suite: str, text: str | None) -> list[str]:
    from suites import get_task, suite_tasks

    available = suite_tasks(suite)
    if not text:
        return available
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        get_task(name, suite)  # did-you-mean error for unknown names
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bench", description="Benchmark prompt-tuning methods on GLUE/SuperGLUE.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train methods on a suite's tasks and write one record per run")
    run.add_argument("--suite", default="glue", help="glue | superglue (default glue)")
    run.add_argument("--tasks", help="comma-separated task names (default: all tasks of the suite)")
    run.add_argument("--methods", required=True, help="comma-separated method names, or 'all'")
    run.add_argument("--seeds", default="42,43,44", help="comma-separated seeds (default 42,43,44)")
    run.add_argument(
        "--model", help="alias (minilm, t5-base, ...), local folder or Hub id (default: the preset's)"
    )
    run.add_argument("--preset", default="paper", help="paper | quick (default paper)")
    run.add_argument(
        "--data-dir",
        default=os.environ.get("BENCH_DATA_DIR"),
        help="folder with glue/ and superglue/ in the original layout (default $BENCH_DATA_DIR, else the Hub)",
    )
    run.add_argument("--out", default="results", help="results folder (default results/)")
    run.add_argument("--max-steps", type=int, help="override the preset's optimiser steps")
    run.add_argument("--max-train-samples", type=int, help="cap on training examples (fixed random subset)")
    run.add_argument(
        "--padding",
        choices=["longest", "max_length"],
        help="longest: batches cut to their longest row (default); max_length: every input padded to s (the "
        "papers' protocol, the paper preset's); same as --set train.padding=...",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SCOPE.FIELD=VALUE",
        help="override a method config field (ept.fusion.attn_dim=8) or a training setting (train.batch_size=8)",
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
        help="save each run's training state every N steps under OUT/checkpoints/ and resume from it",
    )
    run.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="SCOPE.FIELD=V1,V2,...",
        help="run once per value (pt.num_tokens=10,20,50); a method's field sweeps only that method; repeatable",
    )
    _add_scale_args(run)

    _add_tune_parser(sub)

    lst = sub.add_parser("list", help="what exists: methods, suites, tasks, models, presets")
    lst.add_argument("what", help="methods | suites | tasks | models | presets")

    ev = sub.add_parser("eval", help="re-evaluate a finished run from its record and saved artifact")
    ev.add_argument("run", metavar="RUN_ID|RECORD_PATH", help="a run id (or unique prefix) or a record file")
    ev.add_argument("--out", default="results", help="results folder (default results/)")
    ev.add_argument(
        "--data-dir",
        help="data folder (default: the run's own, else $BENCH_DATA_DIR); not part of the run id",
    )

    params = sub.add_parser("params", help="trainable/total parameters per method, from the config only")
    params.add_argument("--model", default="t5-base")
    params.add_argument("--methods", default="all")
    params.add_argument("--max-length", type=int, default=256, help="padded source length s (default 256)")
    params.add_argument("--set", action="append", default=[], metavar="METHOD.FIELD=VALUE")
    perf = sub.add_parser("perf", help="ms/step and peak memory per method: harness vs bare loop vs PEFT")
    perf.add_argument("--model", default="minilm")
    perf.add_argument("--methods", default="pt,dept,ept,lpt")
    perf.add_argument("--variants", default="harness,bare,peft", help="any of harness, bare, peft")
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
        "--eval",
        action="store_true",
        help="also time evaluation of one batch by label scoring vs greedy generation (seq2seq, decoder)",
    )

    report = sub.add_parser(
        "report", help="tables, bootstrap tests, figures and an HTML page from the records"
    )
    report.add_argument("--results", default="results", help="records folder (default results/)")
    report.add_argument(
        "--out", default="reports", help="report folder, replaced wholesale (default reports/)"
    )
    for name in ("suite", "tasks", "methods", "model", "preset"):
        report.add_argument(f"--{name}", help=f"keep only these {name} (comma-separated)")
    report.add_argument("--vs", help="paired bootstrap of this method (or row label) against each other row")
    report.add_argument("--with-published", action="store_true", help="add the published T5-Base numbers")
    report.add_argument(
        "--bootstrap-samples", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    report.add_argument("--bootstrap-seed", type=int, default=0, help="bootstrap random seed (default 0)")
    return parser


def _add_scale_args(run: argparse.ArgumentParser) -> None:
    """``bench run`` options of the tuning/scale-out work: --params, --storage, --executor, --workers."""
    run.add_argument(
        "--params", help="settings to use: best:STUDY (a `bench tune` study's best trial) or a YAML/JSON file"
    )
    run.add_argument("--storage", help="study storage for --params best:STUDY (default <out>/tune.journal)")
    run.add_argument(
        "--executor",
        default="sequential",
        help="sequential (default) | local (--workers processes) | slurm (a job array via submitit) | submitit-local",
    )
    run.add_argument("--workers", type=int, default=1, help="concurrent runs (local) or array tasks (slurm)")
    run.add_argument("--slurm-partition", help="Slurm partition (--executor slurm)")
    run.add_argument(
        "--slurm-timeout-min", type=int, help="Slurm time limit per run in minutes (default 1440)"
    )
    run.add_argument("--slurm-gpus", type=int, help="GPUs per array task (--executor slurm)")


def _add_tune_parser(sub) -> None:
    tune = sub.add_parser(
        "tune", help="hyperparameter search with Optuna (dev split only); `bench tune show STUDY` prints one"
    )
    tune.add_argument("action", nargs="*", help="nothing to search, or: show STUDY")
    tune.add_argument(
        "--methods", "--method", dest="methods", help="method(s) to tune; several = budget-matched"
    )
    tune.add_argument("--suite", default="glue", help="glue | superglue (default glue)")
    tune.add_argument("--tasks", help="comma-separated task names (one study per method and task)")
    tune.add_argument("--trials", type=int, default=30, help="trials per study (default 30)")
    tune.add_argument("--study", help="study name (default <method>-<suite>-<task>-<preset>)")
    tune.add_argument("--storage", help="journal file or SQLAlchemy URL (default <out>/tune.journal)")
    tune.add_argument("--seed", type=int, default=42, help="training seed of every trial (default 42)")
    tune.add_argument(
        "--sampler-seed", type=int, default=0, help="TPE seed; worker k uses seed+k (default 0)"
    )
    tune.add_argument(
        "--workers", type=int, default=1, help="searching processes on this machine (default 1)"
    )
    tune.add_argument(
        "--pruner", default="median", help="median (default) | none | NAME:key=value,... (Optuna's)"
    )
    tune.add_argument("--space", help="YAML file replacing the methods' declared search spaces")
    tune.add_argument("--preset", default="paper", help="paper | quick (default paper)")
    tune.add_argument("--model", help="alias, local folder or Hub id (default: the preset's)")
    tune.add_argument(
        "--data-dir", default=os.environ.get("BENCH_DATA_DIR"), help="data folder (default $BENCH_DATA_DIR)"
    )
    tune.add_argument("--out", default="results", help="results folder for trial records (default results/)")
    tune.add_argument(
        "--reports", default="reports", help="plots and summaries go to <reports>/tune/ (default)"
    )
    tune.add_argument("--max-steps", type=int, help="override the preset's optimiser steps")
    tune.add_argument("--max-train-samples", type=int, help="cap on training examples")
    tune.add_argument("--top", type=int, default=10, help="show: how many trials (default 10)")
    tune.add_argument(
        "--set", action="append", default=[], metavar="SCOPE.FIELD=VALUE", help="fixed overrides"
    )


# ---- commands ------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from bench.plan import RunRequest, parse_overrides, parse_sweep, plan_with_sources
    from bench.presets import get_preset
    from methods.registry import parse_method_list
    from suites import list_suites

    if args.suite not in list_suites():
        from methods.registry import did_you_mean

        raise UsageError(
            f"unknown suite {args.suite!r}{did_you_mean(args.suite, list_suites())}; allowed: {', '.join(list_suites())}"
        )
    get_preset(args.preset)
    methods = parse_method_list(args.methods)
    if args.max_steps is not None and args.max_steps < 1:
        raise UsageError(f"--max-steps {args.max_steps} must be >= 1")
    if args.max_train_samples is not None and args.max_train_samples < 1:
        raise UsageError(f"--max-train-samples {args.max_train_samples} must be >= 1")
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir!r} is not a folder")
    if args.model:
        from bench.models import resolve_model

        resolve_model(args.model)
    request = RunRequest(
        suite=args.suite,
        tasks=_tasks(args.suite, args.tasks),
        methods=methods,
        seeds=_int_list(args.seeds, "--seeds"),
        preset=args.preset,
        model=args.model,
        data_dir=args.data_dir,
        max_steps=args.max_steps,
        max_train_samples=args.max_train_samples,
        overrides=_with_padding(parse_overrides(args.set, methods), args.padding),
        out=args.out,
        sweeps=[parse_sweep(item) for item in args.sweep],
    )
    if args.params:
        from bench.tune.params import load_params
        from bench.tune.storage import default_storage

        given = load_params(args.params, methods, args.storage or default_storage(args.out))
        for scope, values in request.overrides.items():
            given.setdefault(scope, {}).update(values)  # --set wins over --params
        request.overrides = given
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out!r} is a file, not a results folder")
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every {args.checkpoint_every} must be >= 1")
    from bench.executors import EXECUTORS
    from bench.grid import execute_grid

    EXECUTORS.lookup(args.executor)  # did-you-mean error before anything is planned
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers} must be >= 1")
    sources, specs = plan_with_sources(request)
    from bench.preflight import check_plan

    for note in check_plan(sources + specs):
        console.print(f"[yellow]data[/yellow] {escape(note)}")
    for spec in sources:
        console.print(
            f"[bold]source[/bold]: {spec.label} ({spec.run_id}) is not in {args.out}/; it trains first "
            "(its prompt is a source prompt of runs below)"
        )
    if args.dry_run:
        from bench.ui import print_plan

        print_plan(sources + specs, Path(args.out), console)
        return 0
    options = {"checkpoint_every": args.checkpoint_every}
    if args.executor == "sequential" and args.workers == 1:
        return execute_grid(
            sources + specs,
            Path(args.out),
            console,
            save_artifacts=not args.no_artifacts,
            always_save=frozenset(s.run_id for s in sources),  # source prompts are artifacts
            **options,
        )
    code = 0
    if sources:  # the prompts later runs start from: trained first, in order, before the grid fans out
        code = execute_grid(sources, Path(args.out), console, **options)
    executor = "local" if args.executor == "sequential" else args.executor
    slurm = {
        "slurm_partition": args.slurm_partition,
        "timeout_min": args.slurm_timeout_min,
        "gpus_per_node": args.slurm_gpus,
    }
    grid = execute_grid(
        specs,
        Path(args.out),
        console,
        executor,
        args.workers,
        slurm,
        save_artifacts=not args.no_artifacts,
        **options,
    )
    return max(code, grid)


def cmd_tune(args: argparse.Namespace) -> int:
    from bench.tune.storage import default_storage

    storage = args.storage or default_storage(args.out)
    if args.action:
        if args.action[0] != "show" or len(args.action) != 2:
            raise UsageError(
                f"bench tune {' '.join(args.action)!r}: expected `bench tune show STUDY` or options"
            )
        from bench.tune.search import load_study, summarise, trials_table

        study = load_study(args.action[1], storage)
        show(console, trials_table(study, args.top))
        counts = summarise(study)["trials"]
        console.print(", ".join(f"{n} {state}" for state, n in counts.items()))
        return 0
    from bench.plan import RunRequest, parse_overrides
    from bench.presets import get_preset
    from bench.tune.search import TuneRequest, run_tune
    from bench.tune.space import load_space_file
    from methods.registry import parse_method_list
    from suites import list_suites

    if not args.methods:
        raise UsageError(
            "bench tune needs --method NAME (or --methods a,b,c for a budget-matched comparison)"
        )
    if args.suite not in list_suites():
        raise UsageError(f"unknown suite {args.suite!r}; allowed: {', '.join(list_suites())}")
    get_preset(args.preset)
    methods = parse_method_list(args.methods)
    for flag, value in (("--trials", args.trials), ("--workers", args.workers)):
        if value < 1:
            raise UsageError(f"{flag} {value} must be >= 1")
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir!r} is not a folder")
    request = RunRequest(
        suite=args.suite,
        tasks=_tasks(args.suite, args.tasks),
        methods=methods,
        seeds=[args.seed],
        preset=args.preset,
        model=args.model,
        data_dir=args.data_dir,
        max_steps=args.max_steps,
        max_train_samples=args.max_train_samples,
        overrides=parse_overrides(args.set, methods),
    )
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
    )
    return run_tune(tune, console)


def cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from bench.models import ALIASES
    from bench.presets import PRESETS
    from methods.registry import did_you_mean, get_method_class, list_methods
    from suites import all_tasks, list_suites, suite_tasks

    kinds = ["methods", "suites", "tasks", "models", "presets"]
    if args.what not in kinds:
        raise UsageError(
            f"cannot list {args.what!r}{did_you_mean(args.what, kinds)}; allowed: {', '.join(kinds)}"
        )
    table = Table(show_header=True, header_style="bold")
    if args.what == "methods":
        for col in ("method", "attaches", "trainable formula", "paper"):
            table.add_column(col)
        for name in list_methods():
            cls = get_method_class(name)
            table.add_row(name, cls.attach, cls.formula, cls.paper)
    elif args.what == "suites":
        table.add_column("suite")
        table.add_column("tasks")
        for suite in list_suites():
            table.add_row(suite, ", ".join(suite_tasks(suite)))
    elif args.what == "tasks":
        for col in ("suite", "task", "reported metric", "split family", "description"):
            table.add_column(col)
        for task in all_tasks():
            table.add_row(task.suite, task.name, task.headline_metric, task.split_family, task.description)
    elif args.what == "models":
        table.add_column("model")
        table.add_column("weights")
        table.add_column("description")
        for alias in ALIASES.values():
            table.add_row(alias.name, alias.local_dir or f"Hub: {alias.hub_id}", alias.description)
    else:
        table.add_column("preset")
        table.add_column("model")
        table.add_column("description")
        for preset in PRESETS.values():
            table.add_row(preset.name, preset.model, preset.description)
    show(console, table)
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    import torch
    from rich.table import Table

    from bench.backbones import meta_backbone
    from bench.plan import parse_overrides
    from methods.registry import build_config, get_method_class, parse_method_list

    methods = parse_method_list(args.methods)
    overrides = parse_overrides(args.set, methods)
    backbone = meta_backbone(args.model, args.max_length)
    total_backbone = backbone.total_params()
    head = sum(p.numel() for p in backbone.head_parameters())
    table = Table(
        title=f"{args.model} (s={args.max_length}, backbone {total_backbone:,} params)", header_style="bold"
    )
    for col in ("method", "trainable", "extra", "head", "total", "trainable %"):
        table.add_column(col, justify="right" if col != "method" else "left")
    for name in methods:
        # A fresh meta backbone per method: wrap methods change the model they attach to.
        backbone = meta_backbone(args.model, args.max_length)
        with torch.device("meta"):
            method = get_method_class(name)(build_config(name, overrides.get(name)), backbone.dims)
            backbone.attach(method)
        counts = method.counts()
        total = (
            backbone.total_params()
        )  # model (with anything a wrap method added) + method, each tensor once
        share = 100 * counts.trainable_params / total
        table.add_row(
            name,
            f"{counts.trainable_params:,}",
            f"{counts.extra_params:,}",
            f"{head:,}",
            f"{total:,}",
            f"{share:.4f}",
        )
    show(console, table)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Exit 0 if the re-evaluated dev and test metrics equal the recorded ones exactly, 1 if not, 2 bad input."""
    from rich.table import Table

    from bench.reeval import NotReproduced, compare, find_record, reevaluate

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


def _tflops(row: dict) -> str:
    """Achieved TFLOP/s, and the share of the GPU's datasheet peak when it is known."""
    if row.get("tflops_per_s") is None:
        return "-"
    peak = row.get("device_peak_tflops")
    share = f" ({100 * row['tflops_per_s'] / peak:.0f}% of {peak:g})" if peak else ""
    return f"{row['tflops_per_s']:.3f}{share}"


def cmd_perf(args: argparse.Namespace) -> int:
    import json

    from rich.table import Table

    from bench.perf import VARIANTS, best_of, plan_cases, ratios, run_in_subprocess
    from bench.plan import parse_overrides
    from methods.registry import did_you_mean, parse_method_list

    methods = parse_method_list(args.methods)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for variant in variants:
        if variant not in VARIANTS:
            raise UsageError(
                f"unknown variant {variant!r}{did_you_mean(variant, list(VARIANTS))}; allowed: {', '.join(VARIANTS)}"
            )
    for name, value, low in (
        ("--batch", args.batch, 1),
        ("--seq-len", args.seq_len, 8),
        ("--steps", args.steps, 1),
        ("--repeats", args.repeats, 1),
    ):
        if value < low:
            raise UsageError(f"{name} {value} must be >= {low}")
    if args.warmup < 0:
        raise UsageError(f"--warmup {args.warmup} must be >= 0")
    from bench.models import resolve_model

    resolve_model(args.model)
    cases = plan_cases(
        methods,
        variants,
        args.model,
        args.batch,
        args.seq_len,
        args.steps,
        args.warmup,
        parse_overrides(args.set, methods),
        eval_modes=args.eval,
    )
    rows = []
    for repeat in range(args.repeats):
        for case in cases:
            console.print(f"timing {case.label} ({case.variant}) [{repeat + 1}/{args.repeats}] ...")
            rows.append(run_in_subprocess(case))
    rows = best_of(rows)
    table = Table(title=f"{args.model}, batch {args.batch}, seq {args.seq_len}", header_style="bold")
    for col in (
        "method",
        "variant",
        "ms/step",
        "p90",
        "tokens/s",
        "TFLOP/s",
        "peak mem MB",
        "trainable",
        "note",
    ):
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
    show(console, table)
    targets = ratios(rows, args.seq_len)
    ratio_table = Table(title="targets (ratio <= target)", header_style="bold")
    for col in ("ratio", "measured", "target", "met"):
        ratio_table.add_column(col)
    for r in targets:
        ratio_table.add_row(
            r["ratio"], f"{r['value']:.3f}", f"{r['target']:.3f}", "yes" if r["met"] else "NO"
        )
    show(console, ratio_table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "ratios": targets}, indent=2))
    console.print(f"wrote {out}")
    return 1 if any("error" in r for r in rows) else 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report.build import ReportOptions, build_report
    from bench.report.load import Filters

    if not Path(args.results).is_dir():
        raise UsageError(f"--results {args.results!r} is not a folder")
    if args.bootstrap_samples < 1:
        raise UsageError(f"--bootstrap-samples {args.bootstrap_samples} must be >= 1")

    def names(text: str | None) -> list[str] | None:
        return [t.strip() for t in text.split(",") if t.strip()] if text else None

    filters = Filters(*(names(getattr(args, k)) for k in ("suite", "tasks", "methods", "model", "preset")))
    options = ReportOptions(
        Path(args.results), Path(args.out), filters, args.vs, args.with_published, args.bootstrap_samples,
        args.bootstrap_seed,
    )  # fmt: skip
    written = build_report(options)
    console.print(f"report: {len(written)} files -> {Path(args.out) / 'index.html'}")
    for name in sorted(written):
        console.print(f"  {name}")
    return 0


COMMANDS = {
    "run": cmd_run,
    "list": cmd_list,
    "params": cmd_params,
    "eval": cmd_eval,
    "perf": cmd_perf,
    "report": cmd_report,
    "tune": cmd_tune,
}


def main(argv: list[str] | None = None) -> int:
    from bench.signals import exit_code, install, restore

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already printed as one line (2)
        return exc.code if isinstance(exc.code, int) else 2
    previous = install()  # SIGTERM unwinds like Ctrl-C: the running run is recorded as cancelled
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as exc:
        print(
            "bench: interrupted; finished runs are saved, re-run the same command to continue",
            file=sys.stderr,
        )
        return exit_code(exc)
    except Exception as exc:
        from suites import TaskDataError

        user_errors = (ValueError, TaskDataError, FileNotFoundError)
        if args.debug or not isinstance(exc, user_errors):
            traceback.print_exc()
            if not isinstance(exc, user_errors):
                return 1
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"bench: error: {message}", file=sys.stderr)
        return 2
    finally:
        restore(previous)


if __name__ == "__main__":
    sys.exit(main())
