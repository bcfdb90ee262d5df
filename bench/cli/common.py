"""What every ``bench`` subcommand shares: the one-line parser, the options built from the registries, and the
one validation of a run/tune request."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.errors import InputError


class UsageError(InputError):
    """A bad command-line value."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is the same one line as every other bad input (exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"bench: error: {message} (see {self.prog} --help)\n")


def choices(names) -> str:
    """``a | b | c``: the allowed names of a registry, for help text that cannot go stale."""
    return " | ".join(names)


def add_request_options(parser: argparse.ArgumentParser, what: str) -> None:
    """The options ``bench run`` and ``bench tune`` share (suite, tasks, preset, model, data, out, caps, --set);
    ``what`` ("run" or "tune") only words the help."""
    from bench.backbones.models import ALIASES
    from bench.presets import PRESETS
    from suites import list_suites

    parser.add_argument("--suite", default="glue", help=f"{choices(list_suites())} (default glue)")
    parser.add_argument(
        "--tasks",
        help="comma-separated task names (default: all tasks of the suite)"
        if what == "run"
        else "comma-separated task names (one study per method and task)",
    )
    parser.add_argument("--preset", default="paper", help=f"{choices(PRESETS)} (default paper)")
    parser.add_argument(
        "--model", help=f"alias ({choices(ALIASES)}), local folder or Hub id (default: the preset's)"
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("BENCH_DATA_DIR"),
        help="folder with glue/ and superglue/ in the original layout (default $BENCH_DATA_DIR, else the Hub)",
    )
    parser.add_argument(
        "--out",
        default="results",
        help="results folder (default results/)"
        if what == "run"
        else "results folder for trial records (default results/)",
    )
    parser.add_argument("--max-steps", type=int, help="override the preset's optimiser steps")
    parser.add_argument(
        "--max-train-samples", type=int, help="cap on training examples (fixed random subset)"
    )
    parser.add_argument(
        "--log-dir",
        metavar="DIR",
        help="write live TensorBoard logs (train/loss, train/lr, dev and test metrics, step time) to "
        f"DIR/<{'run' if what == 'run' else 'study/trial'} name>/; watch with `tensorboard --logdir DIR` "
        "(does not change run ids)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SCOPE.FIELD=VALUE",
        help="override a method config field (ept.fusion.attn_dim=8) or a training setting (train.batch_size=8)",
    )


def log_dir(args: argparse.Namespace) -> Path | None:
    """``--log-dir`` as a folder path (None when not given); a path that is a file is a usage error."""
    if not args.log_dir:
        return None
    path = Path(args.log_dir)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--log-dir {args.log_dir!r} is a file, not a folder for TensorBoard logs")
    return path


def int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"{what} {text!r} must be comma-separated integers, e.g. 42,43,44") from None
    if not values:
        raise UsageError(f"{what} {text!r} is empty")
    return values


def tasks(suite: str, text: str | None) -> list[str]:
    from suites import get_task, suite_tasks

    available = suite_tasks(suite)
    if not text:
        return available
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        get_task(name, suite)  # did-you-mean error for unknown names
    return names


def at_least(flag: str, value: int | None, low: int) -> None:
    if value is not None and value < low:
        raise UsageError(f"{flag} {value} must be >= {low}")


def request_from_args(args: argparse.Namespace, seeds: list[int] | str):
    """The one validation of ``bench run``'s and ``bench tune``'s request options -> a ``RunRequest``:
    suite, preset, methods, step and sample caps, data folder, model, tasks, ``seeds`` (a list, or the text
    of ``--seeds``) and ``--set``."""
    from bench.planning.plan import RunRequest, parse_overrides
    from bench.registry import unknown_name
    from methods.registry import parse_method_list
    from suites import list_suites

    if args.suite not in list_suites():
        raise unknown_name("suite", args.suite, list_suites(), error=UsageError)
    from bench.presets import get_preset

    get_preset(args.preset)
    methods = parse_method_list(args.methods)
    at_least("--max-steps", args.max_steps, 1)
    at_least("--max-train-samples", args.max_train_samples, 1)
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir!r} is not a folder")
    if args.model:
        from bench.backbones.models import resolve_model

        resolve_model(args.model)
    return RunRequest(
        suite=args.suite,
        tasks=tasks(args.suite, args.tasks),
        methods=methods,
        seeds=int_list(seeds, "--seeds") if isinstance(seeds, str) else seeds,
        preset=args.preset,
        model=args.model,
        data_dir=args.data_dir,
        max_steps=args.max_steps,
        max_train_samples=args.max_train_samples,
        overrides=parse_overrides(args.set, methods),
    )


def names(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None or empty -> None."""
    return [t.strip() for t in text.split(",") if t.strip()] if text else None
