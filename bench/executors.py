"""Executors for a run grid beyond the sequential default: N local worker processes, or a Slurm job array.

Either way each run is the same worker subprocess (``bench.runner.run_one``) writing the same record, and runs
with an ``ok`` record are skipped before anything starts, whichever executor wrote them.

* ``local`` with ``--workers N``: N threads, each taking the next spec from one shared queue and running it in
  its own process, so two workers never take the same spec and memory peaks stay per run. On a GPU machine
  worker ``k`` runs on GPU ``k mod #GPUs``. Every run holds its per-run lock (``bench.locks``) while it runs,
  so concurrent commands on one results folder never run the same run twice (a locked run is skipped).
* ``slurm``: the unfinished specs become one Slurm job array through submitit (``pip install
  'ptbench[slurm]'``), at most ``--workers`` tasks at a time; each array task runs one spec. ``submitit-local``
  runs the same path with submitit's local executor (processes on this machine), which is how it is tested.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.runner import existing, run_locked
from bench.spec import RunSpec
from bench.terminal import escape, show

EXECUTORS = ("sequential", "local", "slurm", "submitit-local")


def unfinished(specs: list[RunSpec], out_dir: Path) -> tuple[dict[str, dict], list[RunSpec]]:
    done = {
        s.run_id: rec for s in specs if (rec := existing(s, out_dir)) is not None and rec["status"] == "ok"
    }
    return done, [s for s in specs if s.run_id not in done]


def run_local(
    specs: list[RunSpec], out_dir: Path, workers: int, console: Console, **run_options: Any
) -> dict[str, dict]:
    """Run ``specs`` with ``workers`` concurrent run processes; return their records by run_id.

    ``run_options`` go to ``bench.runner.run_one`` (``save_artifacts``, ``checkpoint_every``)."""
    from bench.tune.search import visible_gpus

    todo: queue.Queue[RunSpec] = queue.Queue()
    for spec in specs:
        todo.put(spec)
    records: dict[str, dict] = {}
    lock = threading.Lock()
    gpus = visible_gpus()

    def work(index: int) -> None:
        env = {"CUDA_VISIBLE_DEVICES": gpus[index % len(gpus)]} if gpus else None
        while True:
            try:
                spec = todo.get_nowait()
            except queue.Empty:
                return
            record = run_locked(spec, out_dir, env=env, **run_options)
            if record is None:
                console.print(f"[yellow]skipped[/yellow] {spec.label}: running in another bench process")
                continue
            with lock:
                records[spec.run_id] = record
                console.print(
                    f"[worker {index}] {spec.label}: {record['status']} ({len(records)}/{len(specs)})"
                )

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(max(1, workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return records


def _array_task(spec: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """One Slurm array task: run one spec; return a small summary (the record is on disk)."""
    record = run_locked(RunSpec.from_dict(spec), Path(out_dir))
    if record is None:
        return {"run_id": spec["run_id"] if "run_id" in spec else None, "status": "locked", "error": None}
    return {"run_id": record["run_id"], "status": record["status"], "error": record["error"]}


def run_submitit(
    specs: list[RunSpec],
    out_dir: Path,
    workers: int,
    console: Console,
    cluster: str = "slurm",
    slurm: dict[str, Any] | None = None,
) -> dict[str, dict]:
    """Submit ``specs`` as one job array (``cluster``: ``slurm`` or ``local``) and wait for it."""
    try:
        import submitit
    except ImportError:
        raise ValueError("--executor slurm needs submitit: pip install 'ptbench[slurm]'") from None
    from bench.results import read_record, record_path

    folder = Path(out_dir) / "submitit" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params = {"timeout_min": 24 * 60, "slurm_array_parallelism": max(1, workers), "name": "ptbench"}
    params.update({k: v for k, v in (slurm or {}).items() if v is not None})
    executor.update_parameters(**params)
    jobs = executor.map_array(_array_task, [s.to_dict() for s in specs], [str(out_dir)] * len(specs))
    console.print(f"submitted {len(jobs)} runs as job array {jobs[0].job_id.split('_')[0]} ({cluster})")
    records: dict[str, dict] = {}
    for spec, job in zip(specs, jobs, strict=True):
        try:
            job.result()
        except Exception as exc:  # noqa: BLE001 - a lost array task: its record (if any) says more
            console.print(
                f"[red]array task {job.job_id} ({spec.label}) failed[/red]: {str(exc).splitlines()[-1]}"
            )
        record = read_record(record_path(out_dir, spec))
        if record is None:
            from bench.results import failed_record, write_json_atomic

            record = failed_record(spec, f"array task {job.job_id} left no record", None)
            write_json_atomic(record_path(out_dir, spec), record)
        records[spec.run_id] = record
        console.print(f"{spec.label}: {record['status']}")
    return records


def execute_grid(
    specs: list[RunSpec],
    out_dir: Path,
    console: Console,
    executor: str,
    workers: int,
    slurm: dict[str, Any] | None = None,
    **run_options: Any,
) -> int:
    """Skip finished runs, run the rest with ``executor``, print the summary; 0 if every run is ``ok``.

    ``run_options`` (``save_artifacts``, ``checkpoint_every``) apply to the ``local`` executor."""
    from bench.ui import summary_table

    done, todo = unfinished(specs, out_dir)
    console.print(
        f"[bold]plan[/bold]: {len(specs)} runs, {len(done)} already done, {len(todo)} to run -> {out_dir}/ "
        f"({executor}, {workers} worker(s))"
    )
    records = dict(done)
    if todo:
        if executor == "local":
            records.update(run_local(todo, out_dir, workers, console, **run_options))
        else:
            cluster = "local" if executor == "submitit-local" else "slurm"
            records.update(run_submitit(todo, out_dir, workers, console, cluster, slurm))
    ordered = [records[s.run_id] for s in specs if s.run_id in records]  # locked elsewhere: not here
    show(console, summary_table(ordered))
    failed = [r for r in ordered if r["status"] != "ok"]
    for rec in failed:
        spec = RunSpec.from_dict(rec["spec"])
        console.print(
            f"[red]failed[/red] {escape(spec.label)} ({rec['run_id']}): {escape(str(rec['error']))}"
        )
    return 1 if failed else 0
