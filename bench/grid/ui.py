"""Terminal presentation of a run grid: the plan up front, a bar per run, a summary table at the end.

Presentation only: running the grid is ``bench/grid/execute.py``, which calls into ``GridView`` and ``report_grid``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.results import read_record, record_path
from bench.spec import RunSpec
from bench.terminal import show


class GridView:
    """The screen while a grid runs: a bar for all runs, one per running run; messages for skips and clean-ups.

    Called by ``bench.grid.execute.execute_grid`` (from executor threads too: rich's progress is thread-safe)."""

    def __init__(self, console: Console, total: int, done: int, out_dir: Path) -> None:
        self.console, self.total, self.done, self.out_dir = console, total, done, out_dir
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.bars: dict[str, TaskID] = {}

    def plan(self, todo: int, how: str = "") -> None:
        self.console.print(
            f"[bold]plan[/bold]: {self.total} runs, {self.done} already done, {todo} to run -> "
            f"{escape(str(self.out_dir))}/{escape(how)}"
        )

    def removed_temp(self, tmp: Path) -> None:
        self.console.print(f"removed a temporary file left by a killed run: {escape(tmp.name)}")

    def __enter__(self) -> GridView:
        self.progress.__enter__()
        self.overall = self.progress.add_task("all runs", total=self.total, completed=self.done, info="")
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def started(self, spec: RunSpec) -> Callable[[dict], None]:
        """A bar for ``spec``; returns the callback that moves it with the worker's progress events."""
        bar = self.progress.add_task(escape(spec.label), total=spec.train["max_steps"], info="loading")
        self.bars[spec.run_id] = bar

        def update(event: dict) -> None:
            self.progress.update(bar, completed=event["step"], info=f"loss {event['loss']:.4f}")

        return update

    def finished(self, spec: RunSpec, record: dict) -> None:
        if (bar := self.bars.pop(spec.run_id, None)) is not None:
            headline = (record["metrics"].get("headline") or {}) if record["status"] == "ok" else {}
            info = (
                f"{headline.get('name')} {headline.get('test'):.2f}"
                if headline.get("test") is not None
                else f"[red]{record['status']}[/red]"
            )
            steps = spec.train["max_steps"] if record["status"] == "ok" else None
            self.progress.update(bar, completed=steps, info=info)
        self.progress.advance(self.overall)

    def locked(self, spec: RunSpec, pid: str) -> None:
        self.progress.console.print(
            f"[yellow]skipped[/yellow] {escape(spec.label)} ({spec.run_id}): running in another bench "
            f"process (pid {pid})"
        )
        self.progress.advance(self.overall)


def report_grid(
    console: Console,
    records: list[dict],
    failed: list[dict],
    locked: list[RunSpec],
    total: int,
    out_dir: Path,
) -> None:
    """After a grid: the summary table, malformed-row notes, each run that did not finish ok with its real
    status, and the runs another process holds."""
    show(console, summary_table(records))
    malformed = {
        r["spec"]["task"]: r["data"]["malformed_rows"]
        for r in records
        if (r.get("data") or {}).get("malformed_rows")
    }
    for task, count in malformed.items():
        console.print(
            f"[yellow]data[/yellow] {escape(task)}: {count} malformed row(s) skipped (record: data.malformed_rows)"
        )
    for rec in failed:
        spec = RunSpec.from_dict(rec["spec"])
        step = f" at step {rec['steps']}" if rec.get("steps") else ""
        console.print(
            f"[red]{rec['status']}[/red] {escape(spec.label)} ({rec['run_id']}){step}: {escape(str(rec['error']))}"
        )
    if locked:
        console.print(
            f"[yellow]{len(locked)} run(s) skipped[/yellow]: running in another bench process on "
            f"{escape(str(out_dir))}/ (not failed; re-run the command later to collect them)"
        )
    if failed:
        console.print(f"[red]{len(failed)} of {total} runs did not finish ok[/red]; re-run to retry them")


def print_plan(specs: list[RunSpec], out_dir: Path, console: Console) -> None:
    """``--dry-run``: every planned run with its id and what ``bench run`` would do with it."""
    # The folder goes in a message line, not the table title: a title wraps with the table, a message never does.
    console.print(
        f"[bold]plan[/bold]: {len(specs)} runs -> {escape(str(out_dir))}/ (dry run: nothing is run)"
    )
    table = Table(header_style="bold")
    for col in ("run", "run_id", "model", "steps", "record", "action"):
        table.add_column(col)
    for spec in specs:
        rec = read_record(record_path(out_dir, spec))
        status = rec["status"] if rec else "-"
        table.add_row(
            spec.label,
            spec.run_id,
            spec.model,
            str(spec.train["max_steps"]),
            status,
            "skip" if status == "ok" else "run",
        )
    show(console, table)


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} (n={len(values)})"


def _row_name(record: dict) -> str:
    """The name a record is shown under: the method's display name (``ept[placeholder-v0]``), else its name."""
    return (record.get("method_record") or {}).get("display_name") or record["spec"]["method"]


def summary_table(records: list[dict]) -> Table:
    """Method x task headline test metric (mean ± std over seeds), with parameters and ms/step."""
    tasks = list(dict.fromkeys(r["spec"]["task"] for r in records))
    methods = list(dict.fromkeys(_row_name(r) for r in records))
    table = Table(title="test (headline metric, mean ± std over seeds)", header_style="bold")
    table.add_column("method")
    for task in tasks:
        table.add_column(task, justify="right")
    table.add_column("trainable", justify="right")
    table.add_column("ms/step", justify="right")
    for method in methods:
        mine = [r for r in records if _row_name(r) == method and r["status"] == "ok"]
        cells = [
            _mean_std([r["metrics"]["headline"]["test"] for r in mine if r["spec"]["task"] == t])
            for t in tasks
        ]
        trainable = {r["trainable_params"] for r in mine}
        ms = [r["step_time_ms_median"] for r in mine if r["step_time_ms_median"] is not None]
        table.add_row(
            escape(method),  # "ept[placeholder-v0]" is not markup
            *cells,
            ", ".join(f"{t:,}" for t in sorted(trainable)) or "-",
            f"{statistics.median(ms):.1f}" if ms else "-",
        )
    return table
