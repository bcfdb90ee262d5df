"""Terminal presentation of a run grid: the plan up front, a bar per run, a summary table at the end."""

from __future__ import annotations

import statistics
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.runner import existing, run_one
from bench.spec import RunSpec
from bench.terminal import show


def execute_plan(
    specs: list[RunSpec],
    out_dir: Path,
    console: Console,
    checkpoint_every: int | None = None,
    save_artifacts: bool = True,
    always_save: frozenset[str] = frozenset(),
) -> int:
    """Run every unfinished spec; return 0 if all runs are ``ok`` (or run by another process), 1 if any failed.

    ``save_artifacts=False`` (``--no-artifacts``) skips artifacts except for the run ids in ``always_save``
    (source runs, whose artifact is the source prompt of later runs).

    Only ``ok`` records count as done: ``failed``, ``oom`` and ``cancelled`` runs run again. Each run is
    locked by its id (``bench.locks``) while it runs; one locked by another live ``bench run`` is skipped.
    """
    from bench.locks import holder, remove_stale_temp_files, try_lock

    done = {
        s.run_id: rec for s in specs if (rec := existing(s, out_dir)) is not None and rec["status"] == "ok"
    }
    todo = [s for s in specs if s.run_id not in done]
    console.print(
        f"[bold]plan[/bold]: {len(specs)} runs, {len(done)} already done, {len(todo)} to run -> {escape(str(out_dir))}/"
    )
    if todo:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for tmp in remove_stale_temp_files(out_dir):
            console.print(f"removed a temporary file left by a killed run: {escape(tmp.name)}")
    records = dict(done)
    locked: list[RunSpec] = []
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
            lock = try_lock(out_dir, spec.run_id)
            if lock is None:
                locked.append(spec)
                progress.console.print(
                    f"[yellow]skipped[/yellow] {escape(spec.label)} ({spec.run_id}): running in another bench "
                    f"process (pid {holder(out_dir, spec.run_id)})"
                )
                progress.advance(overall)
                continue
            with lock:
                finished = existing(spec, out_dir)  # another process may have finished it meanwhile
                if finished is not None and finished["status"] == "ok":
                    records[spec.run_id] = finished
                    progress.advance(overall)
                    continue
                steps = spec.train["max_steps"]
                bar = progress.add_task(spec.label, total=steps, info="loading")

                def update(event: dict, bar=bar) -> None:
                    progress.update(bar, completed=event["step"], info=f"loss {event['loss']:.4f}")

                record = run_one(
                    spec,
                    out_dir,
                    update,
                    save_artifacts=save_artifacts or spec.run_id in always_save,
                    checkpoint_every=checkpoint_every,
                )
            records[spec.run_id] = record
            headline = (record["metrics"].get("headline") or {}) if record["status"] == "ok" else {}
            info = (
                f"{headline.get('name')} {headline.get('test'):.2f}"
                if headline.get("test") is not None
                else f"[red]{record['status']}[/red]"
            )
            progress.update(bar, completed=steps if record["status"] == "ok" else None, info=info)
            progress.advance(overall)
    show(console, summary_table([records[s.run_id] for s in specs if s.run_id in records]))
    malformed = {
        r["spec"]["task"]: r["data"]["malformed_rows"]
        for r in records.values()
        if (r.get("data") or {}).get("malformed_rows")
    }
    for task, count in malformed.items():
        console.print(
            f"[yellow]data[/yellow] {escape(task)}: {count} malformed row(s) skipped (record: data.malformed_rows)"
        )
    failed = [records[s.run_id] for s in specs if s.run_id in records and records[s.run_id]["status"] != "ok"]
    for rec in failed:
        spec = RunSpec.from_dict(rec["spec"])
        step = f" at step {rec['steps']}" if rec.get("steps") else ""
        console.print(
            f"[red]{rec['status']}[/red] {escape(spec.label)} ({rec['run_id']}){step}: {escape(str(rec['error']))}"
        )
    if locked:
        console.print(
            f"[yellow]{len(locked)} run(s) skipped[/yellow]: running in another bench process on {escape(str(out_dir))}/ "
            "(not failed; re-run the command later to collect them)"
        )
    if failed:
        console.print(
            f"[red]{len(failed)} of {len(specs)} runs did not finish ok[/red]; re-run to retry them"
        )
    return 1 if failed else 0


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
        rec = existing(spec, out_dir)
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
