"""Terminal presentation of a run grid: the plan up front, a bar per run, a summary table at the end."""

from __future__ import annotations

import statistics
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.runner import existing, run_one
from bench.spec import RunSpec


def execute_plan(
    specs: list[RunSpec],
    out_dir: Path,
    console: Console,
    save_artifacts: bool = True,
    always_save: frozenset[str] = frozenset(),
) -> int:
    """Run every unfinished spec; return 0 if all runs are ``ok``, 1 if any failed.

    ``save_artifacts=False`` (``--no-artifacts``) skips artifacts except for the run ids in ``always_save``
    (source runs, whose artifact is the source prompt of later runs).
    """
    done = {
        s.run_id: rec for s in specs if (rec := existing(s, out_dir)) is not None and rec["status"] == "ok"
    }
    todo = [s for s in specs if s.run_id not in done]
    console.print(
        f"[bold]plan[/bold]: {len(specs)} runs, {len(done)} already done, {len(todo)} to run -> {out_dir}/"
    )
    records = dict(done)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        overall = progress.add_task("all runs", total=len(specs), completed=len(done), info="")
        for spec in todo:
            steps = spec.train["max_steps"]
            bar = progress.add_task(spec.label, total=steps, info="loading")

            def update(event: dict, bar=bar) -> None:
                progress.update(bar, completed=event["step"], info=f"loss {event['loss']:.4f}")

            record = run_one(spec, out_dir, update, save_artifacts or spec.run_id in always_save)
            records[spec.run_id] = record
            headline = (record["metrics"].get("headline") or {}) if record["status"] == "ok" else {}
            info = (
                f"{headline.get('name')} {headline.get('test'):.2f}"
                if headline.get("test") is not None
                else f"[red]{record['status']}[/red]"
            )
            progress.update(bar, completed=steps if record["status"] == "ok" else None, info=info)
            progress.advance(overall)
    console.print(summary_table([records[s.run_id] for s in specs]))
    failed = [records[s.run_id] for s in specs if records[s.run_id]["status"] != "ok"]
    for rec in failed:
        spec = RunSpec.from_dict(rec["spec"])
        console.print(f"[red]failed[/red] {spec.label} ({rec['run_id']}): {rec['error']}", markup=True)
    return 1 if failed else 0


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} (n={len(values)})"


def summary_table(records: list[dict]) -> Table:
    """Method x task headline test metric (mean ± std over seeds), with parameters and ms/step."""
    tasks = list(dict.fromkeys(r["spec"]["task"] for r in records))
    methods = list(dict.fromkeys(r["spec"]["method"] for r in records))
    table = Table(title="test (headline metric, mean ± std over seeds)", header_style="bold")
    table.add_column("method")
    for task in tasks:
        table.add_column(task, justify="right")
    table.add_column("trainable", justify="right")
    table.add_column("ms/step", justify="right")
    for method in methods:
        mine = [r for r in records if r["spec"]["method"] == method and r["status"] == "ok"]
        cells = [
            _mean_std([r["metrics"]["headline"]["test"] for r in mine if r["spec"]["task"] == t])
            for t in tasks
        ]
        trainable = {r["trainable_params"] for r in mine}
        ms = [r["step_time_ms_median"] for r in mine if r["step_time_ms_median"] is not None]
        table.add_row(
            method,
            *cells,
            ", ".join(f"{t:,}" for t in sorted(trainable)) or "-",
            f"{statistics.median(ms):.1f}" if ms else "-",
        )
    return table
