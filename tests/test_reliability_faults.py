"""Faults inside a run: NaN loss (stop / skip), out of memory, an exception, a segfault; checkpoint resume.

Faults are injected with the test-only ``PTBENCH_FAULT`` variable (``bench/training/faults.py``). In-process tests
call ``bench.worker.run_spec`` (what the worker process runs); the hard crash needs a real worker process.
"""

from __future__ import annotations

import pytest

from bench.grid.runner import run_one
from bench.results import read_record, validate_record
from bench.training.checkpoint import Checkpointer, checkpoint_path
from bench.worker import run_spec

# The runs of this file: RTE, PT with 4 tokens, 6 steps on 32 examples (``make_spec`` in conftest.py).
RUN = {
    "seed": 7,
    "train": {"max_length": "24", "max_eval_samples": "8", "eval_every": "2", "batch_size": "4"},
}


def test_nan_loss_stops_the_run_with_step_and_last_metrics(tiny_bert_dir, make_spec, monkeypatch):
    monkeypatch.setenv("PTBENCH_FAULT", "nan@5")
    record = run_spec(make_spec(tiny_bert_dir, **RUN))
    validate_record(record)
    assert record["status"] == "failed"
    assert record["error"].startswith("FloatingPointError: non-finite loss nan at step 5")
    assert record["steps"] == 5 and record["final_loss"] is not None  # the loss of step 4
    assert [h["step"] for h in record["metrics"]["dev_history"]] == [2, 4]  # evaluated every 2 steps
    assert "injected" not in record["error"] and record["traceback"]


def test_nan_skip_policy_skips_and_counts_the_batch(tiny_bert_dir, make_spec, monkeypatch):
    monkeypatch.setenv("PTBENCH_FAULT", "nan@3")
    record = run_spec(make_spec(tiny_bert_dir, **RUN, nan_policy="skip"))
    assert record["status"] == "ok", record["error"]
    assert record["nan_skipped_batches"] == 1 and record["steps"] == 6


def test_nan_skip_policy_stops_after_too_many_consecutive_skips(tiny_bert_dir, make_spec, monkeypatch):
    monkeypatch.setenv("PTBENCH_FAULT", "nan@*")
    record = run_spec(make_spec(tiny_bert_dir, **RUN, nan_policy="skip", max_nan_skips=2))
    assert record["status"] == "failed"
    assert "at step 3 (3 in a row > max_nan_skips)" in record["error"]
    assert record["nan_skipped_batches"] == 2


def test_out_of_memory_is_its_own_status(tiny_bert_dir, make_spec, monkeypatch):
    monkeypatch.setenv("PTBENCH_FAULT", "oom@2")
    record = run_spec(make_spec(tiny_bert_dir, **RUN))
    assert record["status"] == "oom", record["error"]
    assert "can't allocate memory" in record["error"] or "OutOfMemoryError" in record["error"]
    assert record["steps"] == 2
    validate_record(record)


def test_exception_in_a_run_keeps_progress(tiny_bert_dir, make_spec, monkeypatch):
    monkeypatch.setenv("PTBENCH_FAULT", "raise@4/seed=7")
    record = run_spec(make_spec(tiny_bert_dir, **RUN))
    assert record["status"] == "failed" and record["error"] == "RuntimeError: injected fault at step 4"
    assert record["steps"] == 4 and len(record["metrics"]["dev_history"]) == 1
    monkeypatch.setenv("PTBENCH_FAULT", "raise@4/seed=8")  # another seed's fault: this run is fine
    assert run_spec(make_spec(tiny_bert_dir, **RUN))["status"] == "ok"


@pytest.mark.slow
def test_segfault_of_the_worker_is_recorded_by_the_parent(tiny_bert_dir, make_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("PTBENCH_FAULT", "segfault@2")
    spec = make_spec(tiny_bert_dir, **RUN)
    record = run_one(spec, tmp_path)
    assert record["status"] == "failed"
    assert record["error"].startswith("worker killed by SIGSEGV at step")
    assert read_record(next(tmp_path.glob("*.json")))["status"] == "failed"


def test_resume_from_checkpoint_gives_the_same_metrics(tiny_t5_dir, make_spec, tmp_path, monkeypatch):
    """Crash at step 5 with a checkpoint every 2 steps, resume: same final metrics as one clean run."""
    spec = make_spec(tiny_t5_dir, **RUN, steps=8, method="dept", eval_every=3, eval_mode="score")
    clean = run_spec(spec)
    assert clean["status"] == "ok", clean["error"]

    path = checkpoint_path(tmp_path, spec.run_id)
    monkeypatch.setenv("PTBENCH_FAULT", "raise@5")
    crashed = run_spec(spec, checkpoint=Checkpointer(path, 2, spec.run_id))
    assert crashed["status"] == "failed" and path.exists()
    saved = Checkpointer(path, 2, spec.run_id).load()
    assert saved["result"]["steps"] == 4
    assert Checkpointer(path, 2, "another-run").load() is None  # a checkpoint only resumes its own run

    monkeypatch.delenv("PTBENCH_FAULT")
    resumed = run_spec(spec, checkpoint=Checkpointer(path, 2, spec.run_id))
    assert resumed["status"] == "ok", resumed["error"]
    assert resumed["metrics"]["dev_history"] == clean["metrics"]["dev_history"]
    assert resumed["metrics"]["test"] == clean["metrics"]["test"]
    assert resumed["final_loss"] == pytest.approx(clean["final_loss"], abs=0)
    assert resumed["steps"] == 8 and resumed["samples_per_s"] > 0
    assert resumed["run_id"] == clean["run_id"]
