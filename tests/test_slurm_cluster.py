"""Runs that survive a real Slurm: a single-node cluster on localhost (slurmctld + slurmd, started by
``.ci/slurm.sh``; in CI a missing cluster fails these tests rather than skips them).

* A run stopped by its time limit (Slurm's warning signal: submitit requeues the array task) and then preempted
  (``scontrol requeue``) resumes twice from its checkpoint and ends with the record of an uninterrupted run; the
  record counts both interruptions and the training they lost.
* A detached submission, its submitter killed while waiting, the command run again: every run finishes exactly
  once, none is submitted twice, none is lost.

Slurm holds a requeued batch job back for about two minutes (its begin time); the tests move that begin time to
now (``scontrol update StartTime=now``) so they take a few minutes, not ten.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from bench.grid.execute import execute_grid
from bench.grid.slurm_jobs import submitted
from bench.results import read_record, record_path

# Record keys an interrupted run may differ in from an uninterrupted one (docs/records.md#interrupted-runs): when
# and how fast it ran, on which attempt's process, and the interruptions themselves.
TIMING = {
    "started_at", "finished_at", "train_time_s", "step_time_ms_median", "step_time_ms_p90", "eval_time_s",
    "load_time_s", "peak_rss_bytes", "peak_rss_train_bytes", "samples_per_s", "tokens_per_s",
    "effective_tokens_per_s", "contention", "interruptions",
}  # fmt: skip


def _slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(state in out for state in ("idle", "mixed", "allocated"))


@pytest.fixture
def slurm() -> None:
    if not _slurm_up():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("PTBENCH_TEST_SLURM"):
            pytest.fail("no Slurm cluster answers sinfo in CI; .ci/slurm.sh should have started one")
        pytest.skip("no Slurm cluster (bash .ci/slurm.sh starts a single-node one, as root)")


def _state(job_id: str) -> tuple[str, str]:
    """The job's (state, reason) in squeue; ("", "") once it has left the queue."""
    out = subprocess.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True)
    parts = out.stdout.split(maxsplit=1)
    return (parts[0], parts[1].strip()) if len(parts) == 2 else ("", "")


def _scontrol(*args: str) -> None:
    subprocess.run(["scontrol", *args], check=True, capture_output=True, timeout=30)


def _wait(what: str, ready, timeout_s: float, job_id: str | None = None, logs: Path | None = None) -> None:
    """Poll ``ready()`` until true; a requeued job held back by its begin time is released meanwhile. On a
    timeout the failure shows the tails of the array tasks' logs under ``logs``."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if job_id is not None and _state(job_id) == ("PENDING", "BeginTime"):
            _scontrol("update", f"jobid={job_id}", "StartTime=now")
        if time.monotonic() > deadline:
            tails = "\n".join(
                p.read_text()[-1500:] for p in sorted((logs or Path("/nonexistent")).rglob("*.err"))
            )
            pytest.fail(f"timed out waiting for {what} (job {job_id}: {_state(job_id or '')})\n{tails}")
        time.sleep(1)


@pytest.mark.slow(minutes=5)
def test_time_limit_then_preemption_resume_to_the_uninterrupted_record(
    slurm, tiny_bert_dir, make_spec, tmp_path, monkeypatch
):
    spec = make_spec(tiny_bert_dir, seed=5, steps=80, train={"max_length": "24", "eval_every": "4"})
    out, reference = tmp_path / "slurm", tmp_path / "reference"
    console = Console(file=open(tmp_path / "screen.txt", "w"), width=200)
    # A time limit of 2 minutes, warned 30 s before: Slurm looks at time limits every 30 s or so, so the first
    # attempt is stopped 60 to 120 s after it starts, while it trains (2 s per step, 160 s in all: at least 20
    # steps, five checkpoints, are left for the second attempt, which the test then preempts).
    params = {"timeout_min": 2, "slurm_signal_delay_s": 30}
    monkeypatch.setenv("PTBENCH_FAULT", "sleep@*:2")  # slow steps (sbatch passes the environment on)
    assert execute_grid([spec], out, console, "slurm", 1, params, checkpoint_every=4, detach=True) == 0
    monkeypatch.delenv("PTBENCH_FAULT")
    job_id = submitted(out, spec.run_id)["job_id"]
    checkpoint = out / "checkpoints" / f"{spec.run_id}.pt"
    notes = out / "checkpoints" / f"{spec.run_id}.interruptions.json"

    # The uninterrupted run, on this machine meanwhile (steps at full speed: timings differ, results do not).
    assert execute_grid([spec], reference, console, checkpoint_every=4) == 0
    expected = read_record(record_path(reference, spec))

    # 1. The time limit: Slurm's warning, the worker notes its loss, submitit requeues the task.
    _wait("the time-limit interruption", notes.exists, 240, logs=out)
    assert json.loads(notes.read_text())[0]["signal"] in ("SIGUSR1", "SIGUSR2")
    _wait("the requeued task to wait", lambda: _state(job_id)[0] == "PENDING", 60, logs=out)
    _scontrol("update", f"jobid={job_id}", "TimeLimit=10")  # the next attempts are not stopped by the limit
    # 2. Preemption: once the second attempt has saved a checkpoint of its own, requeue it from outside.
    # (Under load the first attempt may have been stopped before its first checkpoint: then none exists yet.)
    saved = checkpoint.stat().st_mtime if checkpoint.exists() else 0.0
    _wait(
        "the second attempt's checkpoint",
        lambda: checkpoint.exists() and checkpoint.stat().st_mtime > saved,
        240,
        job_id,
        out,
    )
    _scontrol("requeue", job_id)
    _wait("the preemption note", lambda: len(json.loads(notes.read_text())) == 2, 60, logs=out)
    # 3. The third attempt finishes the run.
    _wait("the run to finish", lambda: _state(job_id)[0] in ("", "COMPLETED"), 300, job_id, out)

    # The same command collects it: nothing to run, exit 0.
    assert execute_grid([spec], out, console, "slurm", 1, params, checkpoint_every=4, detach=True) == 0
    record = read_record(record_path(out, spec))
    assert record["status"] == "ok", record["error"]
    same = set(record) - TIMING
    assert {k: record[k] for k in same} == {k: expected[k] for k in same}
    assert record["predictions"]["test"]["predicted"]  # the test predictions are among the equal keys
    assert expected["interruptions"] == {"count": 0, "lost_train_time_s": 0.0, "events": []}
    first, second = record["interruptions"]["events"]
    assert record["interruptions"]["count"] == 2
    assert first["signal"] in ("SIGUSR1", "SIGUSR2") and second["signal"] == "SIGTERM"
    assert (first["slurm_restart_count"] or 0) == 0 and second["slurm_restart_count"] == 1
    # Each attempt resumes from the checkpoint the one before left (the second may be preempted before it saves
    # one of its own beyond it): steps never go back, and the record above equals the uninterrupted one.
    assert 0 <= first["resumes_from_step"] <= first["step"]
    assert first["resumes_from_step"] <= second["resumes_from_step"] <= second["step"]
    assert all(e["lost_train_time_s"] > 0 for e in (first, second))
    assert record["interruptions"]["lost_train_time_s"] == pytest.approx(
        first["lost_train_time_s"] + second["lost_train_time_s"]
    )
    assert not checkpoint.exists() and not notes.exists()  # deleted with the finished run


def _command(tiny_t5_dir, data_dir, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "bench.cli", "run", "--suite", "glue", "--tasks", "rte", "--methods", "pt",
        "--seeds", "1,2,3", "--preset", "quick", "--model", str(tiny_t5_dir), "--data-dir", str(data_dir),
        "--max-steps", "8", "--max-train-samples", "16", "--set", "train.max_eval_samples=4",
        "--set", "train.max_length=32", "--set", "train.batch_size=4", "--set", "pt.num_tokens=4",
        "--out", str(out), "--executor", "slurm", "--workers", "3", "--checkpoint-every", "2", *extra,
    ]  # fmt: skip


@pytest.mark.slow(minutes=3)
def test_a_killed_submitter_then_the_same_command_finishes_every_run_once(
    slurm, tiny_t5_dir, data_dir, tmp_path
):
    out = tmp_path / "results"
    env = {**os.environ, "PTBENCH_FAULT": "sleep@*:1", "PYTHONUNBUFFERED": "1"}  # ~8 s of training per run
    cwd = Path(__file__).resolve().parents[1]
    detached = subprocess.run(
        _command(tiny_t5_dir, data_dir, out, "--detach"), env=env, cwd=cwd, capture_output=True, text=True
    )
    assert detached.returncode == 0, detached.stderr
    assert "submitted 3 runs as job array" in detached.stdout
    jobs = {p.stem: json.loads(p.read_text())["job_id"] for p in (out / ".jobs").glob("*.json")}
    assert len(jobs) == 3

    # The same command again, waiting this time: it submits nothing, it waits for the array; killed meanwhile.
    waiting = subprocess.Popen(
        _command(tiny_t5_dir, data_dir, out), env=env, cwd=cwd, stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(waiting.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while sum(line.startswith(("queued", "running")) for line in lines) < 3:  # it waits for the three jobs
        assert time.monotonic() < deadline and waiting.poll() is None, "".join(lines)
        time.sleep(0.2)
    waiting.send_signal(signal.SIGKILL)
    waiting.wait()
    reader.join(10)
    assert not any("submitted" in line for line in lines), "".join(lines)

    # Again, until every run is collected; no run is ever submitted a second time.
    deadline = time.monotonic() + 420  # CI runs the other Slurm test beside it on the same two cores
    while True:
        again = subprocess.run(
            _command(tiny_t5_dir, data_dir, out), env=env, cwd=cwd, capture_output=True, text=True
        )
        assert "submitted" not in again.stdout, again.stdout
        if again.returncode == 0 and "3 already done" in again.stdout:
            break
        assert time.monotonic() < deadline, again.stdout + again.stderr
        time.sleep(5)
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert sorted(r["spec"]["seed"] for r in records) == [1, 2, 3]
    assert all(r["status"] == "ok" and r["interruptions"]["count"] == 0 for r in records)
    # One array task per run, each run once: the job ids noted at submission are the only ones that ran.
    assert {json.loads(p.read_text())["job_id"] for p in (out / ".jobs").glob("*.json")} == set(jobs.values())
    # submitit's folders: one per array task (<array>_<index>) beside the array's own (<array>)
    ran = sorted(p.name for p in (out / "submitit").iterdir() if p.is_dir() and "_" in p.name)
    assert ran == sorted(jobs.values())
