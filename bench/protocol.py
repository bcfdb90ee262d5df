"""The runner <-> worker protocol: the worker's command line, its lines on stdout, the runner's replies.

The runner (``bench/grid/runner.py``) starts ``python -m bench.worker SPEC.json RECORD.json [--checkpoint-every N]
[--no-artifacts] [--log-dir FOLDER] [--report-evaluations]`` (``FOLDER``: this run's own TensorBoard folder,
:func:`run_log_name`); the
worker prints ``@@progress {"step": .., "loss": ..}`` lines while it trains and writes the record itself. With
``--report-evaluations`` (a search trial) it also prints ``@@evaluation {"step": .., "metrics": {..},
"selection_metric": ..}`` after each periodic dev evaluation and waits for the runner's answer on its stdin:
``@@continue``, or ``@@stop REASON`` to end training there (the record then has status ``pruned``, ``error``
REASON). Both sides read this module, so neither imports the other.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.spec import RunSpec

PROGRESS_PREFIX = "@@progress "
EVALUATION_PREFIX = "@@evaluation "
CONTINUE = "@@continue"
STOP_PREFIX = "@@stop "
# A worker's stderr line that the runner passes on to its own stderr (the rest is kept for a crash's record): a
# warning the user must see, such as a refused checkpoint (``bench/training/checkpoint.py``).
WARNING_PREFIX = "ptbench: warning: "
# How many runs the grid runs at once on this machine, for the record's ``contention`` (``bench/measurement/contention.py``).
WORKERS_ENV = "PTBENCH_GRID_WORKERS"
# A worker's exit code after an ``Interrupted``: stopped by the cluster, its checkpoint kept; the parent writes no
# record (the run resumes when its array task is requeued).
INTERRUPTED_EXIT = 75
# SIGUSR1: sent by an array task that got the time-limit warning; SIGUSR2: that warning itself (Slurm signals every
# process of the job step: submitit asks for --signal=USR2@S); SIGTERM: preemption, requeue, cancel.
INTERRUPTS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class Interrupted(KeyboardInterrupt):
    """A worker told to stop by the cluster: SIGUSR1 (its array task got Slurm's time-limit warning and is being
    requeued) or SIGTERM (preempted, requeued or cancelled). ``signal``: the signal's name, for the record."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.signal = name


def _raise_interrupted(signum, frame) -> None:
    for sig in INTERRUPTS:  # once: a second signal must not cut the note short
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


def install_worker_interrupts() -> None:
    """In a worker process: SIGTERM, SIGUSR1 and SIGUSR2 raise :class:`Interrupted` wherever training is, so the loop notes
    the step reached and the training lost since the last checkpoint (``bench.training.checkpoint``) and the worker
    exits with ``INTERRUPTED_EXIT``."""
    for sig in INTERRUPTS:
        signal.signal(sig, _raise_interrupted)


def worker_command(
    spec_file: Path,
    record_file: Path,
    checkpoint_every: int | None = None,
    save_artifacts: bool = True,
    log_dir: Path | None = None,
    report_evaluations: bool = False,
) -> list[str]:
    """The worker process's argv for one run."""
    extra = ["--checkpoint-every", str(checkpoint_every)] if checkpoint_every else []
    extra += [] if save_artifacts else ["--no-artifacts"]
    extra += ["--log-dir", str(log_dir)] if log_dir is not None else []
    extra += ["--report-evaluations"] if report_evaluations else []
    return [sys.executable, "-m", "bench.worker", str(spec_file), str(record_file), *extra]


@dataclass
class WorkerArgs:
    spec_file: Path
    record_file: Path
    checkpoint_every: int | None
    save_artifacts: bool
    log_dir: Path | None = None
    report_evaluations: bool = False  # print each dev evaluation and wait for @@continue / @@stop on stdin


def parse_worker_args(argv: list[str]) -> WorkerArgs:
    """The inverse of :func:`worker_command` (without the interpreter)."""
    every = int(argv[argv.index("--checkpoint-every") + 1]) if "--checkpoint-every" in argv else None
    log_dir = Path(argv[argv.index("--log-dir") + 1]) if "--log-dir" in argv[2:] else None
    report = "--report-evaluations" in argv[2:]
    return WorkerArgs(Path(argv[0]), Path(argv[1]), every, "--no-artifacts" not in argv[2:], log_dir, report)


def progress_line(step: int, loss: float) -> str:
    return PROGRESS_PREFIX + json.dumps({"step": step, "loss": loss})


def parse_progress(line: str) -> dict | None:
    """The progress event of a worker's stdout line, or None for any other line."""
    return json.loads(line[len(PROGRESS_PREFIX) :]) if line.startswith(PROGRESS_PREFIX) else None


def evaluation_line(step: int, metrics: dict[str, float], selection_metric: str) -> str:
    """A dev evaluation (``--report-evaluations``): the step, every dev metric, and which one selects."""
    event = {"step": step, "metrics": metrics, "selection_metric": selection_metric}
    return EVALUATION_PREFIX + json.dumps(event)


def parse_evaluation(line: str) -> dict | None:
    """The evaluation event of a worker's stdout line, or None for any other line."""
    return json.loads(line[len(EVALUATION_PREFIX) :]) if line.startswith(EVALUATION_PREFIX) else None


def reply_line(stop: str | None) -> str:
    """The runner's answer to an evaluation: go on (``stop=None``), or stop training with this reason."""
    return (CONTINUE if stop is None else STOP_PREFIX + " ".join(stop.split())) + "\n"


def parse_reply(line: str) -> str | None:
    """The stop reason of a reply line, or None to go on; ``ValueError`` for anything else (or end of input)."""
    line = line.rstrip("\n")
    if line == CONTINUE:
        return None
    if line.startswith(STOP_PREFIX):
        return line[len(STOP_PREFIX) :]
    raise ValueError(f"the runner's reply to an evaluation is not @@continue or @@stop: {line!r}")


def run_log_name(spec: RunSpec) -> str:
    """The run's folder under ``--log-dir``: readable (method, task, seed) and unique (run id)."""
    stem = f"{spec.method}_{spec.task}_seed{spec.seed}_{spec.run_id}"
    if spec.trial is None:
        return stem
    study = str(spec.trial["study"]).replace("/", "_")
    return f"{study}/trial{spec.trial['trial']}_{stem}"
