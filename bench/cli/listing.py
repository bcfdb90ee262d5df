"""``bench list``: what exists, straight from the registries (methods, suites, tasks, models, presets)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from bench.cli.common import UsageError, choices
from bench.terminal import show

HELP = "what exists: methods, suites, tasks, models, presets"
KINDS = ("methods", "suites", "tasks", "models", "presets")


def add_parser(sub) -> None:
    lst = sub.add_parser("list", help=HELP)
    lst.add_argument("what", help=choices(KINDS))


def method_docs(name: str) -> str:
    """Where a method's page is: one page per registered method, ``docs/methods/<name>.md``."""
    return f"docs/methods/{name}.md"


def _table(what: str) -> Table:
    from bench.backbones.models import ALIASES
    from bench.presets import PRESETS
    from methods.registry import get_method_class, list_methods
    from suites import all_tasks, list_suites, suite_tasks

    table = Table(show_header=True, header_style="bold")
    if what == "methods":
        for col in ("method", "attaches", "trainable formula", "paper", "docs"):
            # The formula wraps first, so the citation (with its arXiv id) keeps a whole line where it can.
            table.add_column(col, max_width=60 if col == "trainable formula" else None)
        for name in list_methods():
            cls = get_method_class(name)
            table.add_row(name, cls.attach, cls.formula, cls.paper, method_docs(name))
    elif what == "suites":
        table.add_column("suite")
        table.add_column("tasks")
        for suite in list_suites():
            table.add_row(suite, ", ".join(suite_tasks(suite)))
    elif what == "tasks":
        for col in ("suite", "task", "reported metric", "split family", "description"):
            table.add_column(col)
        for task in all_tasks():
            table.add_row(task.suite, task.name, task.headline_metric, task.split_family, task.description)
    elif what == "models":
        for col in ("model", "weights", "description"):
            table.add_column(col)
        for alias in ALIASES.values():
            table.add_row(alias.name, alias.local_dir or f"Hub: {alias.hub_id}", alias.description)
    else:
        for col in ("preset", "model", "description"):
            table.add_column(col)
        for preset in PRESETS.values():
            table.add_row(preset.name, preset.model, preset.description)
    return table


def cmd(args: argparse.Namespace, console: Console) -> int:
    from bench.registry import did_you_mean

    if args.what not in KINDS:
        raise UsageError(
            f"cannot list {args.what!r}{did_you_mean(args.what, KINDS)}; allowed: {', '.join(KINDS)}"
        )
    table = _table(args.what)
    docs = [c for c in table.columns if c.header == "docs"]
    if docs and console.width >= 80:  # room enough: the page path stays one copyable piece
        docs[0].min_width = max(len(cell) for cell in docs[0].cells)
    show(console, table)
    return 0
