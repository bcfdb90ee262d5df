"""A worker stopped the way a cluster stops it (SIGUSR1 from its array task at Slurm's time-limit warning) notes
the step it reached and the training it loses, keeps its checkpoint, and leaves a ``cancelled`` record; run
again, it resumes and ends with the uninterrupted run's metrics and predictions, its record counting the
interruption. The real-Slurm version of this is tests/test_slurm_cluster.py."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from bench.cli import main
from bench.grid import runner
from bench.grid.runner import interrupt_workers, run_one
from bench.results import read_record, record_path


def interrupt_after_checkpoint(spec, out, every: int, monkeypatch) -> dict:
    """Run ``spec`` in a worker process (``run_one``, checkpoint every ``every`` steps), each step slowed
    down, and stop it with SIGUSR1 (what a Slurm array task sends at its time-limit warning) a little after
    its first checkpoint; the cancelled record. The worker has noted the interruption and kept its
    checkpoint."""
    monkeypatch.setenv("PTBENCH_FAULT", "sleep@*:0.5")
    checkpoint = out / "checkpoints" / f"{spec.run_id}.pt"
    first: list[dict] = []
    thread = threading.Thread(target=lambda: first.append(run_one(spec, out, checkpoint_every=every)))
    thread.start()
    deadline = time.monotonic() + 120
    while not checkpoint.exists():  # the first checkpoint; then a little more training that will be lost
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.1)
    time.sleep(1.2)
    assert runner._LIVE
    interrupt_workers(signal.SIGUSR1)
    thread.join(60)
    monkeypatch.delenv("PTBENCH_FAULT")
    return first[0]


@pytest.mark.slow(minutes=1)
def test_an_interrupted_run_notes_its_loss_and_resumes_to_the_same_result(
    tiny_bert_dir, make_spec, tmp_path, monkeypatch
):
    spec = make_spec(tiny_bert_dir, seed=3, steps=16, train={"max_length": "24", "eval_every": "4"})
    out, reference = tmp_path / "out", tmp_path / "reference"
    expected = run_one(spec, reference, checkpoint_every=4)
    assert expected["interruptions"] == {"count": 0, "lost_train_time_s": 0.0, "events": []}

    first = interrupt_after_checkpoint(spec, out, 4, monkeypatch)
    checkpoint = out / "checkpoints" / f"{spec.run_id}.pt"
    assert first["status"] == "cancelled"
    assert "interrupted" in first["error"]
    assert checkpoint.exists()
    (note,) = json.loads((out / "checkpoints" / f"{spec.run_id}.interruptions.json").read_text())
    assert note["signal"] == "SIGUSR1" and note["step"] >= note["resumes_from_step"] >= 4
    assert note["lost_train_time_s"] > 0.5  # at least the sleep of one step after the checkpoint

    record = run_one(spec, out, checkpoint_every=4)
    assert record["status"] == "ok", record["error"]
    assert record["metrics"] == expected["metrics"]
    assert record["predictions"] == expected["predictions"]
    assert record["final_loss"] == expected["final_loss"]
    assert record["interruptions"] == {
        "count": 1,
        "lost_train_time_s": note["lost_train_time_s"],
        "events": [note],
    }
    assert read_record(record_path(out, spec)) == record
    assert not checkpoint.exists()


def test_detach_needs_a_cluster_executor(tmp_path, capsys):
    code = main(["run", "--methods", "pt", "--tasks", "rte", "--out", str(tmp_path), "--detach"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--detach needs --executor slurm or submitit-local (got --executor sequential)" in err
    assert err.count("\n") == 1 and ": error: --detach" in err
    assert not any(tmp_path.iterdir())


def test_a_failing_squeue_never_passes_for_an_empty_queue(tmp_path, monkeypatch):
    """With runs noted as submitted, a squeue that fails must stop the command, not make it submit them again."""
    from rich.console import Console

    import bench.grid.executors
    from bench.errors import InputError
    from bench.grid.execute import execute_grid
    from bench.grid.slurm_jobs import remember
    from bench.spec import RunSpec

    spec = RunSpec("glue", "rte", "pt", {}, "t5-base", "quick", 1, {})
    remember(tmp_path, spec.run_id, "77_0", "slurm")
    monkeypatch.setattr(bench.grid.executors, "squeue_states", lambda: None)
    with pytest.raises(InputError, match="cannot tell which runs are still on Slurm"):
        execute_grid([spec], tmp_path, Console(file=open(tmp_path / "screen.txt", "w")), "slurm", detach=True)
    assert not (tmp_path / "submitit").exists()  # nothing submitted
