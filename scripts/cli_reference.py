"""Write docs/cli.md, the CLI reference, from the argparse parsers themselves (``bench.cli.build_parser``).

Every option of every ``bench`` command is listed with its help text and default, so the reference cannot
drift from the code: tests/test_docs_cli.py fails when docs/cli.md differs from what this script writes, and
when a page documents a ``--flag`` no parser has. Run ``python scripts/cli_reference.py`` after changing a
parser (``--check`` exits 1 when docs/cli.md is stale, without writing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "cli.md"
HEADER = """# CLI reference

Every command and option of `bench`, written from its parsers by `scripts/cli_reference.py` (do not edit by
hand: `tests/test_docs_cli.py` fails when this page and the parsers disagree). Run a command as
`python -m bench.cli <command> ...` (or `bench <command> ...` once installed). Bad input is one line
`bench: error: ...` and exit code 2; [Using ptbench](usage.md) shows the commands at work.

"""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _option_row(action: argparse.Action) -> str:
    flags = ", ".join(f"`{f}`" for f in action.option_strings) or f"`{action.dest}` (positional)"
    if action.metavar and action.option_strings:
        flags += f" `{action.metavar}`"
    elif action.choices and not isinstance(action, argparse._SubParsersAction):
        flags += " `{" + ",".join(map(str, action.choices)) + "}`"
    text = (action.help or "").replace("%(default)s", str(action.default))
    default = action.default
    shown = (
        ""
        if default in (None, False, argparse.SUPPRESS, []) or "default" in text
        else f" (default `{default}`)"
    )
    return f"| {_cell(flags)} | {_cell(text + shown)} |"


def options(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string of ``parser`` (and of its subcommands, recursively), ``--help`` excluded."""
    found = [f for a in parser._actions for f in a.option_strings if f not in ("-h", "--help")]
    for sub in _subparsers(parser).values():
        found += options(sub)
    return found


def _section(name: str, parser: argparse.ArgumentParser, help_text: str, level: int) -> list[str]:
    lines = [f"{'#' * level} `bench {name}`", ""]
    if help_text:
        lines += [help_text[:1].upper() + help_text[1:] + ".", ""]
    rows = [
        a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
    ]
    if rows:
        lines += ["| option | what it does |", "|---|---|", *(_option_row(a) for a in rows), ""]
    for sub_name, sub in _subparsers(parser).items():
        lines += _section(f"{name} {sub_name}", sub, _help(parser, sub_name), level + 1)
    return lines


def render() -> str:
    """The whole page, from the parsers."""
    sys.path.insert(0, str(REPO))
    from bench.cli import build_parser

    parser = build_parser()
    lines = [HEADER.rstrip("\n"), ""]
    top = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    lines += ["Options before the command:", "", "| option | what it does |", "|---|---|"]
    lines += [_option_row(a) for a in top] + [""]
    for name, sub in _subparsers(parser).items():
        lines += _section(name, sub, _help(parser, name), 2)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    text = render()
    if check:
        stale = not OUT.exists() or OUT.read_text() != text
        if stale:
            print(f"{OUT.relative_to(REPO)} is stale: run python scripts/cli_reference.py", file=sys.stderr)
        return 1 if stale else 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
