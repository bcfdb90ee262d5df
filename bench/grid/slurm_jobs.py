"""Array tasks that survive the cluster, and the jobs a results folder has on it.

* :class:`ArrayTask` is what each Slurm array task runs. It is submitit-checkpointable (it has a ``checkpoint``
  method): at Slurm's time-limit warning (submitit asks for ``--signal=USR2@<slurm_signal_delay_s>``, which reaches
  every process of the task) the worker notes the training it loses since its last checkpoint and exits
  (``bench.protocol.Interrupted``); submitit calls ``checkpoint``, which makes sure the worker has stopped (SIGUSR1),
  and requeues the task, which resumes from the checkpoint. On
  SIGTERM (a preemption, ``scontrol requeue``, ``scancel``) it stops the worker the same way and exits without a
  result: Slurm requeues a preempted task itself.
* Every submitted run leaves ``<results>/.jobs/<run_id>.json`` (its job id), so the same command run again (after
  ``--detach``, or after the submitting process died) finds which runs are queued or running instead of
  submitting them twice, and collects the records of those that ended. The job states come from ``squeue`` (an
  ended job has left it, or shows an ended state); submitit's local executor's jobs are processes on this machine.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from bench.grid.runner import interrupt_workers, run_locked
from bench.results import write_json_atomic
from bench.spec import RunSpec

# squeue's states of a job that is not over, as this module reports them.
LIVE = {
    **dict.fromkeys(("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED"), "queued"),
    **dict.fromkeys(
        ("CONFIGURING", "RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING"), "running"
    ),
}


def _array_task(
    spec: dict[str, Any],
    out_dir: str,
    log_dir: str | None = None,
    checkpoint_every: int | None = None,
    save_artifacts: bool = True,
) -> dict[str, Any]:
    """One array task: run one spec under its lock; return a small summary (the record is on disk)."""
    options: dict[str, Any] = {"log_dir": Path(log_dir)} if log_dir else {}
    options.update(checkpoint_every=checkpoint_every, save_artifacts=save_artifacts)
    record = run_locked(RunSpec.from_dict(spec), Path(out_dir), **options)
    if record is None:
        return {"run_id": None, "status": "locked", "error": None}
    return {"run_id": record["run_id"], "status": record["status"], "error": record["error"]}


class ArrayTask:
    """The function of a Slurm array task (``map_array``); ``checkpoint`` makes submitit requeue it on the
    time-limit warning rather than lose it. Arguments: those of :func:`_array_task`."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _preempted)  # submitit only logs SIGTERM; the run must stop cleanly
        return _array_task(*args, **kwargs)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on the time-limit warning: stop the worker (its checkpoint stays), requeue as is."""
        import submitit  # noqa: PLC0415 - optional dependency, present in an array task

        interrupt_workers(signal.SIGUSR1)
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _preempted(signum: int, frame: Any) -> None:
    """SIGTERM in an array task: stop the worker (it notes the lost training), leave no result, exit."""
    interrupt_workers(signal.SIGTERM)
    raise SystemExit(128 + signum)


def job_file(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / ".jobs" / f"{run_id}.json"


def remember(out_dir: Path, run_id: str, job_id: str, cluster: str) -> None:
    """Note that run ``run_id`` was submitted as job ``job_id`` (``cluster``: slurm or local)."""
    write_json_atomic(job_file(out_dir, run_id), {"job_id": job_id, "cluster": cluster})


def submitted(out_dir: Path, run_id: str) -> dict[str, str] | None:
    """The job a run was last submitted as ({"job_id", "cluster"}), or None."""
    try:
        job = json.loads(job_file(out_dir, run_id).read_text())
    except (OSError, ValueError):
        return None
    return job if isinstance(job, dict) and {"job_id", "cluster"} <= set(job) else None


def squeue_states() -> dict[str, str] | None:
    """Every job and array task ``squeue`` lists, by id (``123_4``), with its Slurm state; None when squeue is
    missing or fails (then nothing can be said about any job, which is not the same as "no job is queued")."""
    if shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return dict(line.split(maxsplit=1) for line in out.splitlines() if len(line.split()) == 2)


def job_state(job: dict[str, str], slurm: dict[str, str]) -> str | None:
    """``queued`` or ``running`` for a job that is not over, else None. ``slurm``: :func:`squeue_states`."""
    if job["cluster"] == "local":  # submitit's local executor: the job id is the task's process id
        try:  # "pid (name) S ...": a process that has exited but is not reaped yet is a zombie (Z)
            stat = Path(f"/proc/{int(job['job_id'])}/stat").read_text()
        except (OSError, ValueError):
            return None
        return None if stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"]) else "running"
    return LIVE.get(slurm.get(job["job_id"], ""))
