"""Process supervision: one run in one worker subprocess (``python -m bench.worker``), under its lock.

A crash, a kill or an interrupt of the worker still leaves a record (``failed`` or ``cancelled``). The
runner names no method or task; planning is ``bench/planning/plan.py``, the grid around it ``bench/grid/execute.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.grid.locks import try_lock
from bench.grid.signals import Terminated
from bench.protocol import (
    INTERRUPTED_EXIT,
    WARNING_PREFIX,
    parse_evaluation,
    parse_progress,
    reply_line,
    run_log_name,
    worker_command,
)
from bench.results import failed_record, read_record, record_path, write_json_atomic
from bench.spec import RunSpec

# A search's hook: an evaluation event (``bench.protocol.parse_evaluation``) -> None to go on, or why to stop.
EvaluationHook = Callable[[dict[str, Any]], str | None]


def run_one(
    spec: RunSpec,
    out_dir: Path,
    on_progress=None,
    save_artifacts: bool = True,
    checkpoint_every: int | None = None,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    on_evaluation: EvaluationHook | None = None,
) -> dict[str, Any]:
    """Execute ``spec`` in a subprocess; a crash of that process still leaves a ``failed`` record.

    ``save_artifacts=False`` skips the artifact (the record's ``artifact`` is null); it is not part of the spec,
    so it does not change the run id. If this process is interrupted (KeyboardInterrupt, or
    ``bench.grid.signals.Terminated`` on SIGTERM) the worker is stopped, the run is recorded as ``cancelled`` (it runs
    again next time) and the interrupt propagates.

    ``env``: extra environment variables for the run's process (a GPU assignment).
    ``log_dir`` (``--log-dir``): the worker writes TensorBoard event files to its own folder under it
    (``bench.protocol.run_log_name``); not part of the spec either.
    ``on_evaluation`` (a search trial): the worker reports each dev evaluation (``--report-evaluations``) and this
    hook answers; a reason to stop ends the run there with status ``pruned``. If the hook raises, the worker is
    stopped and the run recorded as ``failed`` with the hook's error.
    """
    path = record_path(out_dir, spec)
    before = _mtime(path)  # a record left by an earlier attempt must not pass for this attempt's
    with tempfile.TemporaryDirectory(prefix="ptbench-") as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec.to_dict()))
        logs = Path(log_dir).resolve() / run_log_name(spec) if log_dir is not None else None
        reports = on_evaluation is not None
        command = worker_command(spec_file, path, checkpoint_every, save_artifacts, logs, reports)
        worker = _Worker(command, env, answers=reports)
        try:
            code = worker.follow(on_progress, on_evaluation)
        except KeyboardInterrupt as exc:
            worker.stop()
            _record_cancelled(spec, path, worker.progress(), exc)
            raise
        except _HookFailed as failed:  # the run fails, its caller goes on
            worker.stop()
            exc = failed.__cause__
            tail = "".join(traceback.format_exception(exc))[-4000:]
            record = failed_record(spec, _one_line(exc), tail, progress=worker.progress())
            write_json_atomic(path, record)
            return record
    record = read_record(path) if _mtime(path) != before else None
    if code == INTERRUPTED_EXIT and record is None:  # stopped by a signal from outside: it runs again
        why = "cancelled: the worker was interrupted (a cluster's time limit or preemption?); its checkpoint is kept"
        record = failed_record(spec, why, None, status="cancelled", progress=worker.progress())
        write_json_atomic(path, record)
    if record is None or record["run_id"] != spec.run_id:
        record = failed_record(
            spec, worker.crash_error(code), worker.stderr_tail(), progress=worker.progress()
        )
        write_json_atomic(path, record)
    return record


class _HookFailed(Exception):
    """The evaluation hook raised (its exception is the ``__cause__``)."""


_LIVE: set[subprocess.Popen] = set()  # this process's running workers (interrupt_workers)
_LIVE_LOCK = threading.Lock()


def interrupt_workers(signum: int = signal.SIGUSR1, grace_s: float = 60.0) -> None:
    """Stop this process's workers the way the cluster would: ``signum`` makes each note the training it loses
    (``bench.protocol.Interrupted``) and exit; one still running after ``grace_s`` seconds is killed. A Slurm array
    task calls it before it is requeued (``bench.grid.slurm_jobs.ArrayTask``)."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signum)
    for proc in procs:
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Worker:
    """One worker process: started in the repository root, its stdout followed, the tail of its stderr kept."""

    def __init__(self, command: list[str], env: dict[str, str] | None, answers: bool = False) -> None:
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if answers else None,  # answers: replies to evaluations go to its stdin
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
            cwd=Path(__file__).resolve().parents[2],
        )
        with _LIVE_LOCK:
            _LIVE.add(self.proc)
        self.last: dict[str, Any] = {}  # the last progress event
        self.stderr_lines: list[str] = []
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            if line.startswith(WARNING_PREFIX):  # for the user: on the screen (or an array task's log)
                sys.stderr.write(line)
            self.stderr_lines.append(line)
            del self.stderr_lines[:-200]

    def follow(self, on_progress, on_evaluation: EvaluationHook | None) -> int:
        """Read the worker's protocol lines until it exits; its exit code."""
        for line in self.proc.stdout:
            if (event := parse_progress(line)) is not None:
                self.last = event
                if on_progress:
                    on_progress(event)
            elif on_evaluation is not None and (event := parse_evaluation(line)) is not None:
                try:
                    stop = on_evaluation(event)
                except Exception as exc:
                    raise _HookFailed from exc
                self._answer(stop)
        code = self.proc.wait()
        with _LIVE_LOCK:
            _LIVE.discard(self.proc)
        self._drainer.join()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        return code

    def _answer(self, stop: str | None) -> None:
        try:
            self.proc.stdin.write(reply_line(stop))
            self.proc.stdin.flush()
        except OSError:  # BrokenPipeError: the worker died meanwhile; its exit code tells
            pass

    def stop(self) -> None:
        stop_worker(self.proc)

    def progress(self) -> dict[str, Any]:
        """The record's ``progress`` fields: the step reached and the last loss."""
        return {"steps": self.last.get("step"), "final_loss": self.last.get("loss")}

    def stderr_tail(self) -> str:
        return "".join(self.stderr_lines)[-4000:]

    def crash_error(self, code: int) -> str:
        """The error of a worker that left no record: the signal that killed it, or its last stderr line."""
        if code < 0:  # killed by a signal: a segfault, or the OS (SIGKILL from the out-of-memory killer)
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            hint = " (out of memory? the OS kills with SIGKILL)" if -code == signal.SIGKILL else ""
            return f"worker killed by {name}{hint} at step {self.last.get('step', 0)}"
        last_line = next((ln.strip() for ln in reversed(self.stderr_lines) if ln.strip()), "no output")
        return f"worker exited with code {code}: {last_line}"


def _record_cancelled(spec: RunSpec, path: Path, progress: dict[str, Any], exc: KeyboardInterrupt) -> None:
    """Record an interrupted run as ``cancelled``, unless it finished ``ok`` just before the interrupt."""
    finished = read_record(path)
    if finished is not None and finished["run_id"] == spec.run_id and finished["status"] == "ok":
        return  # keep it
    why = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
    record = failed_record(
        spec, f"cancelled: bench run received {why}", None, status="cancelled", progress=progress
    )
    write_json_atomic(path, record)


def _one_line(exc: BaseException) -> str:
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {message}"


def run_locked(
    spec: RunSpec,
    out_dir: Path,
    on_start: Callable[[RunSpec], Callable[[dict], None] | None] | None = None,
    **options: Any,
) -> dict[str, Any] | None:
    """``run_one`` under the run's lock (``bench.grid.locks``): None if another live process holds it; the finished
    record if another process completed the run meanwhile; else the new record.

    ``on_start(spec)``, called once the run really starts, returns its progress callback (or None);
    ``options`` go to ``run_one``."""

    lock = try_lock(out_dir, spec.run_id)
    if lock is None:
        return None
    with lock:
        finished = existing(spec, out_dir)  # another process may have finished it meanwhile
        if finished is not None and finished["status"] == "ok":
            return finished
        on_progress = on_start(spec) if on_start is not None else None
        return run_one(spec, out_dir, on_progress, **options)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def stop_worker(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the worker, then SIGKILL it if it has not exited after ``grace_s`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def existing(spec: RunSpec, out_dir: Path) -> dict[str, Any] | None:
    path = record_path(out_dir, spec)
    return read_record(path) if path.exists() else None
