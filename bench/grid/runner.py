"""Process supervision: one run in one worker subprocess (``python -m bench.worker``), under its lock.

A crash, a kill or an interrupt of the worker still leaves a record (``failed`` or ``cancelled``). The
runner names no method or task; planning is ``bench/planning/plan.py``, the grid around it ``bench/grid/execute.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.grid.locks import try_lock
from bench.grid.signals import Terminated
from bench.protocol import parse_progress, run_log_name, worker_command
from bench.results import failed_record, read_record, record_path, write_json_atomic
from bench.spec import RunSpec


def run_one(
    spec: RunSpec,
    out_dir: Path,
    on_progress=None,
    save_artifacts: bool = True,
    checkpoint_every: int | None = None,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """Execute ``spec`` in a subprocess; a crash of that process still leaves a ``failed`` record.

    ``save_artifacts=False`` skips the artifact (the record's ``artifact`` is null); it is not part of the spec,
    so it does not change the run id. If this process is interrupted (KeyboardInterrupt, or
    ``bench.grid.signals.Terminated`` on SIGTERM) the worker is stopped, the run is recorded as ``cancelled`` (it runs
    again next time) and the interrupt propagates.

    ``env``: extra environment variables for the run's process (a GPU assignment, a search trial's address).
    ``log_dir`` (``--log-dir``): the worker writes TensorBoard event files to its own folder under it
    (``bench.training.tensorboard_log.run_log_name``); not part of the spec either.
    """
    path = record_path(out_dir, spec)
    last: dict[str, Any] = {}
    before = _mtime(path)  # a record left by an earlier attempt must not pass for this attempt's
    with tempfile.TemporaryDirectory(prefix="ptbench-") as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec.to_dict()))
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        proc = subprocess.Popen(
            worker_command(
                spec_file,
                path,
                checkpoint_every,
                save_artifacts,
                Path(log_dir).resolve() / run_log_name(spec) if log_dir is not None else None,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        stderr_lines: list[str] = []

        def drain() -> None:
            for line in proc.stderr:
                stderr_lines.append(line)
                del stderr_lines[:-200]

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        try:
            for line in proc.stdout:
                if (event := parse_progress(line)) is not None:
                    last = event
                    if on_progress:
                        on_progress(last)
            code = proc.wait()
        except KeyboardInterrupt as exc:
            stop_worker(proc)
            finished = read_record(path)
            if finished is not None and finished["run_id"] == spec.run_id and finished["status"] == "ok":
                raise  # it finished just before the interrupt: keep it
            why = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
            record = failed_record(
                spec,
                f"cancelled: bench run received {why}",
                None,
                status="cancelled",
                progress={"steps": last.get("step"), "final_loss": last.get("loss")},
            )
            write_json_atomic(path, record)
            raise
        drainer.join()
    record = read_record(path) if _mtime(path) != before else None
    if record is None or record["run_id"] != spec.run_id:
        tail = "".join(stderr_lines)[-4000:]
        last_line = next((ln.strip() for ln in reversed(stderr_lines) if ln.strip()), "no output")
        if code < 0:  # killed by a signal: a segfault, or the OS (SIGKILL from the out-of-memory killer)
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            hint = " (out of memory? the OS kills with SIGKILL)" if -code == signal.SIGKILL else ""
            error = f"worker killed by {name}{hint} at step {last.get('step', 0)}"
        else:
            error = f"worker exited with code {code}: {last_line}"
        progress = {"steps": last.get("step"), "final_loss": last.get("loss")}
        record = failed_record(spec, error, tail, progress=progress)
        write_json_atomic(path, record)
    return record


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
