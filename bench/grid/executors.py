"""Where a grid's runs execute: one function per executor, behind ``bench.grid.execute.execute_grid``.

Every executor runs each spec as the same worker subprocess writing the same record; the grid has already
skipped the finished runs and will report on all of them, so an executor only places the runs.

* ``sequential``: one run after another in this process's child.
* ``local`` with ``--workers N``: N threads, each taking the next spec from one shared queue and running it in
  its own process, so two workers never take the same spec and memory peaks stay per run. On a GPU machine
  worker ``k`` runs on GPU ``k mod #GPUs``. Every run holds its per-run lock (``bench.grid.locks``), so concurrent
  commands on one results folder never run the same run twice (a locked run is skipped).
* ``slurm``: the specs become one Slurm job array through submitit (``pip install 'ptbench[slurm]'``), at most
  ``--workers`` tasks at a time; each array task runs one spec. ``submitit-local`` runs the same path with
  submitit's local executor (processes on this machine), which is how it is tested.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.errors import InputError
from bench.grid.runner import run_locked
from bench.presets import checkpoint_interval
from bench.registry import Registry
from bench.results import failed_record, read_record, record_path, write_json_atomic
from bench.spec import RunSpec
from bench.terminal import escape


@dataclass
class Grid:
    """What an executor gets from ``execute_grid``: where, how wide, and the grid's callbacks."""

    out_dir: Path
    workers: int
    console: Console
    run: Callable[..., dict | None]  # run(spec, env=None): one run under its lock, reported to the grid
    finished: Callable[[RunSpec, dict], None]  # a record produced elsewhere (an array task)
    locked: Callable[[RunSpec], None]  # a run another process holds
    slurm: dict[str, Any] = field(default_factory=dict)
    log_dir: Path | None = None  # --log-dir: TensorBoard folders (array tasks get it as an argument)
    # --checkpoint-every: overrides each run's preset default (bench.presets.checkpoint_interval); the grid's
    # ``run`` applies it, array tasks get each run's interval as an argument.
    checkpoint_every: int | None = None


Executor = Callable[[Grid, list[RunSpec]], None]
EXECUTORS: Registry[Executor] = Registry("executor", InputError)


def sequential(grid: Grid, specs: list[RunSpec]) -> None:
    for spec in specs:
        grid.run(spec)


def local(grid: Grid, specs: list[RunSpec]) -> None:
    """``grid.workers`` threads share one queue of specs; each run is its own process."""
    from bench.measurement.measure import visible_gpus  # noqa: PLC0415 - bench.measurement.measure loads torch; only a local grid asks for GPUs

    todo: queue.Queue[RunSpec] = queue.Queue()
    for spec in specs:
        todo.put(spec)
    gpus = visible_gpus()

    def work(index: int) -> None:
        env = {"CUDA_VISIBLE_DEVICES": gpus[index % len(gpus)]} if gpus else None
        while True:
            try:
                spec = todo.get_nowait()
            except queue.Empty:
                return
            grid.run(spec, env)

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(max(1, grid.workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def array_task_arguments(grid: Grid, specs: list[RunSpec]) -> list[list[Any]]:
    """``_array_task``'s arguments, one list per parameter with one entry per spec (``map_array``'s layout): the
    spec, the results folder, the TensorBoard folder and the run's checkpoint interval, decided here as for a
    local run, since a task on a cluster node is what a time limit or a preemption kills."""
    log_dir = str(grid.log_dir) if grid.log_dir is not None else None
    return [
        [s.to_dict() for s in specs],
        [str(grid.out_dir)] * len(specs),
        [log_dir] * len(specs),
        [checkpoint_interval(s, grid.checkpoint_every) for s in specs],
    ]


def _array_task(
    spec: dict[str, Any], out_dir: str, log_dir: str | None = None, checkpoint_every: int | None = None
) -> dict[str, Any]:
    """One Slurm array task: run one spec; return a small summary (the record is on disk)."""
    options: dict[str, Any] = {"log_dir": Path(log_dir)} if log_dir else {}
    record = run_locked(RunSpec.from_dict(spec), Path(out_dir), checkpoint_every=checkpoint_every, **options)
    if record is None:
        return {"run_id": None, "status": "locked", "error": None}
    return {"run_id": record["run_id"], "status": record["status"], "error": record["error"]}


def submitit_array(grid: Grid, specs: list[RunSpec], cluster: str = "slurm") -> None:
    """Submit ``specs`` as one job array (``cluster``: ``slurm`` or ``local``) and wait for it."""
    try:
        import submitit  # noqa: PLC0415 - optional dependency (pip install .[slurm])
    except ImportError:
        raise InputError("--executor slurm needs submitit: pip install 'ptbench[slurm]'") from None

    out_dir, console = grid.out_dir, grid.console
    executor = submitit.AutoExecutor(folder=out_dir / "submitit" / "%j", cluster=cluster)
    params = {"timeout_min": 24 * 60, "slurm_array_parallelism": max(1, grid.workers), "name": "ptbench"}
    params.update({k: v for k, v in grid.slurm.items() if v is not None})
    executor.update_parameters(**params)
    jobs = executor.map_array(_array_task, *array_task_arguments(grid, specs))
    console.print(f"submitted {len(jobs)} runs as job array {jobs[0].job_id.split('_')[0]} ({cluster})")
    for spec, job in zip(specs, jobs, strict=True):
        try:
            summary = job.result()
        except Exception as exc:  # noqa: BLE001 - a lost array task: its record (if any) says more
            summary = None
            console.print(
                f"[red]array task {job.job_id} ({escape(spec.label)}) failed[/red]: "
                f"{escape(str(exc).splitlines()[-1])}"
            )
        if summary is not None and summary["status"] == "locked":
            grid.locked(spec)
            continue
        record = read_record(record_path(out_dir, spec))
        if record is None:
            record = failed_record(spec, f"array task {job.job_id} left no record", None)
            write_json_atomic(record_path(out_dir, spec), record)
        grid.finished(spec, record)


EXECUTORS.register("sequential", sequential)
EXECUTORS.register("local", local)
EXECUTORS.register("slurm", submitit_array)
EXECUTORS.register("submitit-local", lambda grid, specs: submitit_array(grid, specs, cluster="local"))
