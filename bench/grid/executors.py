"""Where a grid's runs execute: one function per executor, behind ``bench.grid.execute.execute_grid``.

Every executor runs each spec as the same worker subprocess writing the same record; the grid has already
skipped the finished runs and will report on all of them, so an executor only places the runs.

* ``sequential``: one run after another in this process's child.
* ``local`` with ``--workers N``: N threads, each taking the next spec from one shared queue and running it in
  its own process, so two workers never take the same spec and memory peaks stay per run. On a GPU machine
  worker ``k`` runs on GPU ``k mod #GPUs``. Every run holds its per-run lock (``bench.grid.locks``), so concurrent
  commands on one results folder never run the same run twice (a locked run is skipped).
* ``slurm``: the specs become one Slurm job array through submitit (``pip install 'ptbench[slurm]'``), at most
  ``--workers`` tasks at a time; each array task runs one spec and is requeued, not lost, at its time limit or a
  preemption (``bench.grid.slurm_jobs``). ``submitit-local`` runs the same path with submitit's local executor
  (processes on this machine); tests/test_slurm_cluster.py runs it on a real single-node Slurm.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.errors import InputError
from bench.grid.locks import try_lock
from bench.grid.slurm_jobs import ArrayTask, job_state, remember, squeue_states, submitted
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
    # --detach: submit (Slurm) and return; the same command run again collects the records
    detach: bool = False
    # pending(spec, state, job_id): a run queued or running as a cluster job
    pending: Callable[[RunSpec, str, str], None] = lambda spec, state, job_id: None
    # saves(spec): whether the run saves its artifact (--no-artifacts: only source runs); the grid's ``run``
    # applies it, array tasks get it as an argument
    saves: Callable[[RunSpec], bool] = lambda spec: True


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
    spec, the results folder, the TensorBoard folder, the run's checkpoint interval, decided here as for a
    local run, since a task on a cluster node is what a time limit or a preemption kills, and whether the run
    saves its artifact (``--no-artifacts``)."""
    log_dir = str(grid.log_dir) if grid.log_dir is not None else None
    return [
        [s.to_dict() for s in specs],
        [str(grid.out_dir)] * len(specs),
        [log_dir] * len(specs),
        [checkpoint_interval(s, grid.checkpoint_every) for s in specs],
        [grid.saves(s) for s in specs],
    ]


def submitit_array(grid: Grid, specs: list[RunSpec], cluster: str = "slurm") -> None:
    """Submit ``specs`` as one job array (``cluster``: ``slurm`` or ``local``) and wait for it (or, with
    ``grid.detach``, return once submitted). Runs already queued or running as jobs of an earlier submission, or
    held by a live process's lock, are not submitted again: they are waited for (or reported)."""
    try:
        import submitit  # noqa: PLC0415 - optional dependency (pip install .[slurm])
    except ImportError:
        raise InputError("--executor slurm needs submitit: pip install 'ptbench[slurm]'") from None

    out_dir, console = grid.out_dir, grid.console
    squeue = squeue_states() if cluster == "slurm" else {}
    if squeue is None and any(submitted(out_dir, s.run_id) for s in specs):
        raise InputError(
            "squeue failed or is missing: cannot tell which runs are still on Slurm; run it again"
        )
    waiting: dict[str, tuple[RunSpec, dict[str, str]]] = {}
    fresh: list[RunSpec] = []
    for spec in specs:
        job = submitted(out_dir, spec.run_id)
        state = job_state(job, squeue) if job is not None else None
        if state is not None:
            waiting[spec.run_id] = (spec, job)
            grid.pending(spec, state, job["job_id"])
            continue
        lock = try_lock(out_dir, spec.run_id)
        if lock is None:  # a live process (another node, on a shared file system) runs it
            grid.locked(spec)
            continue
        lock.release()
        if job is not None:  # its earlier job has ended without an ok record: say so, then submit it again
            record = read_record(record_path(out_dir, spec))
            why = f"{record['status']}: {record['error']}" if record is not None else "it left no record"
            console.print(
                f"[red]failed[/red] {escape(spec.label)} (job {job['job_id']}; {escape(str(why))}): submitted again"
            )
        fresh.append(spec)
    if fresh:
        executor = submitit.AutoExecutor(folder=out_dir / "submitit" / "%j", cluster=cluster)
        params = {"timeout_min": 24 * 60, "slurm_array_parallelism": max(1, grid.workers), "name": "ptbench"}
        params.update({k: v for k, v in grid.slurm.items() if v is not None})
        executor.update_parameters(**params)
        jobs = executor.map_array(ArrayTask(), *array_task_arguments(grid, fresh))
        console.print(f"submitted {len(jobs)} runs as job array {jobs[0].job_id.split('_')[0]} ({cluster})")
        for spec, handle in zip(fresh, jobs, strict=True):
            job = {"job_id": str(handle.job_id), "cluster": cluster}
            remember(out_dir, spec.run_id, job["job_id"], cluster)
            waiting[spec.run_id] = (spec, job)
            if grid.detach:
                grid.pending(spec, "queued", job["job_id"])
    if grid.detach:
        return
    while waiting:
        time.sleep(POLL_S)
        squeue = squeue_states() if cluster == "slurm" else {}
        if squeue is None:  # squeue failed this time: ask again, never take the jobs for ended
            continue
        for run_id, (spec, job) in list(waiting.items()):
            if job_state(job, squeue) is None:
                del waiting[run_id]
                _collect(grid, spec, job["job_id"])


POLL_S = 2.0  # seconds between two looks at the queue while waiting for array tasks


def _collect(grid: Grid, spec: RunSpec, job_id: str) -> None:
    """An array task has ended: report its record, or the run as held elsewhere, or a failure without a record."""
    record = read_record(record_path(grid.out_dir, spec))
    if record is not None and record["status"] == "ok":
        grid.finished(spec, record)
        return
    lock = try_lock(grid.out_dir, spec.run_id)
    if lock is None:  # the task found the run locked: another process runs it
        grid.locked(spec)
        return
    lock.release()
    if record is None:
        record = failed_record(spec, f"array task {job_id} left no record", None)
        write_json_atomic(record_path(grid.out_dir, spec), record)
    grid.finished(spec, record)


EXECUTORS.register("sequential", sequential)
EXECUTORS.register("local", local)
EXECUTORS.register("slurm", submitit_array)
EXECUTORS.register("submitit-local", lambda grid, specs: submitit_array(grid, specs, cluster="local"))
