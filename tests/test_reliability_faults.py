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


class _Marker:
    """Unpickling this calls ``open(path, "w")``: a pickled object that runs code when loaded."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_and_the_run_starts_clean(
    tiny_bert_dir, make_spec, tmp_path, capsys
):
    """A shared results folder is data: a checkpoint holding a code-running object is never unpickled."""
    import torch

    from bench.training.checkpoint import FORMAT, VERSION

    spec = make_spec(tiny_bert_dir, **RUN)
    clean = run_spec(spec)
    path, marker = checkpoint_path(tmp_path, spec.run_id), tmp_path / "marker"
    path.parent.mkdir()
    header = {"format": FORMAT, "version": VERSION, "run_id": spec.run_id}
    torch.save({**header, "result": {"steps": 4}, "payload": _Marker(marker)}, path)
    malicious = path.read_bytes()
    capsys.readouterr()

    record = run_spec(spec, checkpoint=Checkpointer(path, 2, spec.run_id))
    assert record["status"] == "ok", record["error"]
    assert not marker.exists()
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "checkpoint" in ln]
    assert line.startswith(f"ptbench: warning: ignoring checkpoint {path}: not a ptbench checkpoint (")
    assert "it would import io.open" in line and line.endswith("; starting the run from step 0")
    assert record["metrics"]["dev_history"] == clean["metrics"]["dev_history"]  # from step 0: the same run
    assert record["steps"] == 6 and record["final_loss"] == clean["final_loss"]
    (tmp_path / "copy.pt").write_bytes(malicious)  # the run has since saved its own checkpoint at `path`
    torch.load(tmp_path / "copy.pt", weights_only=False)  # what the file does if it is loaded as a pickle
    assert marker.exists()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x00garbage, not a torch file", "not a ptbench checkpoint (UnpicklingError: "),
        ({"run_id": "RUN", "result": {}}, "not a ptbench checkpoint (no ptbench header)"),
        ({"format": "ptbench-checkpoint", "version": 1, "run_id": "other"}, "it belongs to run 'other'"),
        ({"format": "ptbench-checkpoint", "version": 99, "run_id": "RUN"}, "checkpoint format 99"),
        ({"format": "ptbench-checkpoint", "version": 1, "run_id": "RUN"}, "not a ptbench checkpoint (no "),
    ],
)
def test_a_foreign_or_unreadable_checkpoint_is_ignored_with_one_warning(tmp_path, capsys, content, why):
    import torch

    path = checkpoint_path(tmp_path, "RUN")
    path.parent.mkdir()
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    assert Checkpointer(path, 2, "RUN").load() is None
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"ptbench: warning: ignoring checkpoint {path}: {why}"), line


def test_checkpoint_state_is_stored_in_types_weights_only_reads(tmp_path):
    """numpy values become Python numbers and tensors; an object that cannot be stored fails at the save."""
    import numpy as np
    import torch

    checkpointer = Checkpointer(checkpoint_path(tmp_path, "RUN"), 2, "RUN")
    state = {key: {} for key in ("trainable", "optimizer", "scheduler", "order", "torch_rng", "permutation")}
    state["result"] = {"score": np.float64(0.5), "counts": np.arange(3), "history": [(1, np.int64(2))]}
    checkpointer.save(state)
    result = checkpointer.load()["result"]
    assert result["score"] == 0.5 and type(result["score"]) is float
    assert torch.equal(result["counts"], torch.arange(3)) and result["history"] == [(1, 2)]
    with pytest.raises(TypeError, match=r"checkpoint state\['result'\]\['bad'\]: a _Marker cannot be stored"):
        checkpointer.save({**state, "result": {"bad": _Marker(tmp_path / "x")}})


@pytest.mark.slow
def test_a_refused_checkpoint_is_reported_on_the_runners_stderr(tiny_bert_dir, make_spec, tmp_path, capsys):
    """The worker's warning reaches the user: the runner passes ``ptbench: warning:`` lines on to its stderr."""
    spec = make_spec(tiny_bert_dir, **RUN)
    path = checkpoint_path(tmp_path, spec.run_id)
    path.parent.mkdir()
    path.write_bytes(b"not a checkpoint")
    record = run_one(spec, tmp_path, checkpoint_every=2)
    assert record["status"] == "ok", record["error"]
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "checkpoint" in ln]
    assert line.startswith(f"ptbench: warning: ignoring checkpoint {path}: not a ptbench checkpoint (")
    assert not path.exists()  # finished ok: its own checkpoints are deleted
