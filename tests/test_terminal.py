"""No user-facing text is cut short: messages print whole and tables fold, at any width, with or without a TTY."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.table import Table

from bench import cli
from bench.grid.ui import print_plan
from bench.terminal import make_console, show

LONG_NOTE = (
    "glue/rte: 3 malformed row(s) skipped (/tmp/"
    + "a-very-long-temporary-folder-" * 4
    + "/glue/RTE/train.tsv: "
    "3 row(s) skipped, first at line 8: expected 4 fields [tab-separated], got 2)"
)


def _console(width: int, tty: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    console = make_console()
    console.file = buf
    console.width = width
    console._force_terminal = tty  # rich's own switch for "behave as a terminal"
    return console, buf


@pytest.mark.parametrize("tty", [False, True])
@pytest.mark.parametrize("width", [40, 80, 250])
def test_a_message_prints_whole(width, tty):
    console, buf = _console(width, tty)
    console.print(f"[yellow]data[/yellow] {cli.escape(LONG_NOTE)}")
    text = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())
    assert text.strip() == "data " + LONG_NOTE  # one line, every character, brackets kept verbatim


@pytest.mark.parametrize("width", [40, 80, 250])
def test_a_table_folds_instead_of_cutting(width, tiny_args_plan, tmp_path):
    specs = tiny_args_plan
    console, buf = _console(width, False)
    print_plan(specs, tmp_path / ("results-" + "x" * 60), console)
    out = buf.getvalue()
    assert "…" not in out
    body = [line.split("│")[1:-1] for line in out.splitlines() if line.count("│") > 2]
    columns = ["".join("".join(cells[i].split()) for cells in body) for i in range(len(body[0]))]
    for spec in specs:  # a cell may fold over lines, but its characters are all there, in order
        for i, text in enumerate((spec.label, spec.run_id, spec.model)):
            assert "".join(text.split()) in columns[i]
    assert "x" * 60 in out  # the folder is in a message line, never wrapped


@pytest.fixture
def tiny_args_plan(tiny_bert_dir, data_dir):
    from bench.planning.plan import RunRequest, plan

    return plan(
        RunRequest(
            "glue",
            ["rte"],
            ["pt", "dept"],
            [1],
            "quick",
            model=str(tiny_bert_dir),
            data_dir=str(data_dir),
            max_steps=2,
            max_train_samples=16,
        )
    )


def test_show_makes_every_column_fold():
    console, buf = _console(40, False)
    table = Table("name", "value")
    table.add_row("run_id", "0123456789abcdef" * 4)
    show(console, table)
    assert "…" not in buf.getvalue()
    assert all(column.overflow == "fold" for column in table.columns)
