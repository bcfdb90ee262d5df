"""``bench``: run, list, count, tune, re-evaluate and export. One module per subcommand (``bench/cli/<command>.py``).

Bad input (an ``InputError``: a flag, a name, a config field, a data file) is one line with what is allowed,
exit code 2. Anything else is a bug: ``bench: internal error`` and exit code 1, with its traceback under
``--debug``.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from bench.cli import eval as eval_cmd
from bench.cli import export, listing, params, perf, report, run, tune
from bench.cli.common import OneLineParser, UsageError
from bench.errors import InputError
from bench.terminal import escape, make_console

__all__ = ["COMMANDS", "UsageError", "build_parser", "console", "escape", "main", "make_console"]

# Messages print whole at any width (soft-wrapped); tables fold cells (bench/terminal.py). Commands receive
# this console when they run (tests replace it).
console = make_console()

# Subcommand -> its module (each has ``add_parser(sub)`` and ``cmd(args, console)``), in --help order.
COMMANDS = {
    "run": run,
    "tune": tune,
    "list": listing,
    "eval": eval_cmd,
    "export": export,
    "params": params,
    "perf": perf,
    "report": report,
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bench", description="Benchmark prompt-tuning methods on GLUE/SuperGLUE.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from bench.grid.signals import exit_code, install, restore

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already printed as one line (2)
        return exc.code if isinstance(exc.code, int) else 2
    previous = install()  # SIGTERM unwinds like Ctrl-C: the running run is recorded as cancelled
    try:
        return COMMANDS[args.command].cmd(args, console)
    except KeyboardInterrupt as exc:
        print(
            "bench: interrupted; finished runs are saved, re-run the same command to continue",
            file=sys.stderr,
        )
        return exit_code(exc)
    except InputError as exc:
        if args.debug:
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"bench: error: {message}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: say so, and show where under --debug
        if args.debug:
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"bench: internal error: {type(exc).__name__}: {first} (a bug; --debug shows the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        restore(previous)


if __name__ == "__main__":
    sys.exit(main())
