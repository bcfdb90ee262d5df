"""The one grid path: ``execute_grid`` runs a list of specs with any executor and reports on them.

It alone owns the split into done (an ``ok`` record exists) and to-do, the clean-up of temporary files left by
killed runs, the per-run locks (``bench.grid.runner.run_locked``), the malformed-row notes, the failure report with
each run's real status (``failed``, ``oom``, ``cancelled``, ...) and the exit code. The executors
(``bench/grid/executors.py``: sequential, local, slurm, submitit-local) only decide where each run's worker
process runs; the screen is ``bench/grid/ui.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.grid.executors import EXECUTORS, Grid
from bench.grid.locks import holder, remove_stale_temp_files
from bench.grid.runner import existing, run_locked
from bench.grid.ui import GridView, report_grid
from bench.presets import checkpoint_interval
from bench.protocol import WORKERS_ENV
from bench.spec import RunSpec
from bench.terminal import escape


def threads_env(executor: str, side_by_side: int) -> dict[str, str]:
    """``OMP_NUM_THREADS`` for runs side by side on this machine: the usable cores shared out between them.

    Why: torch starts as many threads as there are cores in every worker, so 2 workers on 2 cores run 4 threads
    that preempt each other (each run slower than with one thread, and every record contended). Left alone when
    the user set ``OMP_NUM_THREADS`` or when the runs go to other machines (Slurm)."""
    from bench.measurement.contention import usable_cores  # noqa: PLC0415 - looked up when called: tests replace contention.usable_cores

    if executor not in ("local", "submitit-local") or side_by_side < 2 or "OMP_NUM_THREADS" in os.environ:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, usable_cores() // side_by_side))}


def unfinished(specs: list[RunSpec], out_dir: Path) -> tuple[dict[str, dict], list[RunSpec]]:
    """The ``ok`` records by run id, and the specs that still have to run (in order)."""
    done = {
        s.run_id: rec for s in specs if (rec := existing(s, out_dir)) is not None and rec["status"] == "ok"
    }
    return done, [s for s in specs if s.run_id not in done]


def prepare_results(out_dir: Path) -> list[Path]:
    """Before runs start: create the results folder and remove the temporary files of atomic writes left by killed
    runs (``bench.grid.locks.remove_stale_temp_files``); return what was removed. ``bench tune`` calls it too."""

    out_dir.mkdir(parents=True, exist_ok=True)
    return remove_stale_temp_files(out_dir)


def execute_grid(
    specs: list[RunSpec],
    out_dir: Path,
    console: Console,
    executor: str = "sequential",
    workers: int = 1,
    slurm: dict[str, Any] | None = None,
    checkpoint_every: int | None = None,
    save_artifacts: bool = True,
    always_save: frozenset[str] = frozenset(),
    log_dir: Path | None = None,
    detach: bool = False,
) -> int:
    """Run every unfinished spec with ``executor``; 0 if all runs are ``ok`` (or run by another process), 1
    if any did not finish ok.

    Only ``ok`` records count as done: ``failed``, ``oom`` and ``cancelled`` runs run again. Each run is
    locked by its id (``bench.grid.locks``) while it runs; one locked by another live ``bench run`` is skipped.
    ``save_artifacts=False`` (``--no-artifacts``) skips artifacts except for the run ids in ``always_save``
    (source runs, whose artifact is the source prompt of later runs). ``slurm``: submitit parameters.
    ``log_dir`` (``--log-dir``): every run writes TensorBoard event files to its own folder under it.
    ``checkpoint_every`` (``--checkpoint-every``) overrides each run's preset default
    (``bench.presets.checkpoint_interval``; 0: no checkpoints), whichever executor runs it.
    ``detach`` (``--detach``, the slurm executors): submit and return; runs queued or running as jobs are
    reported, not waited for, and the same command run again collects their records (exit 0 unless a collected
    run did not finish ok).
    """

    out_dir = Path(out_dir)
    run_executor = EXECUTORS.lookup(executor)
    done, todo = unfinished(specs, out_dir)
    view = GridView(console, len(specs), len(done), out_dir)
    view.plan(len(todo), "" if executor == "sequential" else f" ({executor}, {workers} worker(s))")
    if todo:
        for tmp in prepare_results(out_dir):
            view.removed_temp(tmp)
    records: dict[str, dict] = dict(done)
    locked: list[RunSpec] = []
    pending: dict[str, list[str]] = {}  # queued/running -> labels with job ids

    # Runs side by side on this machine, recorded by each worker (``contention.workers``).
    side_by_side = 1 if executor == "sequential" else max(1, min(workers, len(todo)))

    threads = threads_env(executor, side_by_side)

    def saves(spec: RunSpec) -> bool:
        return save_artifacts or spec.run_id in always_save

    def run(spec: RunSpec, env: dict[str, str] | None = None) -> dict | None:
        options: dict[str, Any] = {"env": {**threads, **(env or {}), WORKERS_ENV: str(side_by_side)}}
        if log_dir is not None:
            options["log_dir"] = log_dir
        record = run_locked(
            spec,
            out_dir,
            on_start=view.started,
            save_artifacts=saves(spec),
            checkpoint_every=checkpoint_interval(spec, checkpoint_every),
            **options,
        )
        if record is None:
            skipped(spec)
        else:
            finished(spec, record)
        return record

    def finished(spec: RunSpec, record: dict) -> None:
        records[spec.run_id] = record
        view.finished(spec, record)

    def skipped(spec: RunSpec) -> None:
        locked.append(spec)
        view.locked(spec, holder(out_dir, spec.run_id))

    def waiting(spec: RunSpec, state: str, job_id: str) -> None:
        pending.setdefault(state, []).append(spec.run_id)
        console.print(f"[bold]{state}[/bold] {escape(spec.label)} ({spec.run_id}): job {escape(job_id)}")

    with view:
        if todo:
            grid = Grid(
                out_dir,
                workers,
                console,
                run,
                finished,
                skipped,
                slurm or {},
                log_dir,
                checkpoint_every,
                detach,
                waiting,
                saves,
            )
            run_executor(grid, todo)
    if detach and pending:
        counts = ", ".join(f"{len(ids)} {state}" for state, ids in sorted(pending.items()))
        console.print(f"on the cluster: {counts}; run the same command again to collect their records")
    ordered = [records[s.run_id] for s in specs if s.run_id in records]  # locked elsewhere: not here
    failed = [r for r in ordered if r["status"] != "ok"]
    report_grid(console, ordered, failed, locked, len(specs), out_dir)
    return 1 if failed else 0
