"""The one place that decides how ptbench writes to the screen.

Two rules make output independent of the terminal (its width, or no terminal at all):

* A message (a note, a warning, an error, a path, a run id) is printed soft-wrapped: rich inserts no line
  breaks and cuts nothing; a narrow terminal wraps the line itself, and a file or pipe receives it whole.
  The console below makes that the default of every ``console.print``.
* A table never drops characters: :func:`show` makes every column fold a long cell onto more lines instead of
  ending it with "…" (rich's default), so a run id or a path in a cell is all there even at 40 columns.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["escape", "make_console", "show"]


def make_console() -> Console:
    """Width: the terminal's, else ``$COLUMNS``, else 80 (rich's rules); every print soft-wraps."""
    return Console(highlight=False, soft_wrap=True)


def show(console: Console, table: Table) -> None:
    """Print ``table`` with every column folding long cells, so no character of a cell is lost."""
    for column in table.columns:
        column.overflow = "fold"
    console.print(table)
