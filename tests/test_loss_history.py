"""The training-loss curve in the record (``metrics["loss_history"]``, bench/training/curves.py): window means of the
per-step losses, one entry per ``train.log_every`` updated steps, the learning rate each window's last step
used, kept through a kill and resume, across XPrompt's stages, and in failed records."""

from __future__ import annotations

import math

import pytest

from bench.errors import InputError
from bench.measurement.measure import StepTimes
from bench.results import empty_record, failed_record, validate_record
from bench.spec import TrainConfig
from bench.training.checkpoint import Checkpointer, checkpoint_path
from bench.training.curves import LossCurve
from bench.training.trainer import TrainResult
from bench.worker import run_spec
from tests.test_inputs import XP

# The runs of this file: RTE, PT with 4 tokens, 6 steps on 32 examples (``make_spec`` in conftest.py), on a
# linear decay (the paper preset's schedule; the quick preset ships a constant rate): the rates logged per
# window then show that each window records the rate its steps used.
RUN = {
    "seed": 5,
    "train": {
        "max_length": "24",
        "max_eval_samples": "8",
        "eval_every": "3",
        "batch_size": "4",
        "warmup_steps": "0",
        "schedule": "linear",
    },
}


def window_means(losses: list[float], every: int) -> list[float]:
    return [sum(losses[i : i + every]) / every for i in range(0, len(losses) - every + 1, every)]


class Recorder:
    """A logger that keeps what it is told."""

    def __init__(self) -> None:
        self.train: list[tuple] = []

    def log_train(self, step, loss, lrs, step_ms) -> None:
        self.train.append((step, loss, lrs, step_ms))


def test_windows_are_means_of_the_updated_steps_and_skip_nonfinite_batches():
    """Fabricated losses: 11 updated steps (one batch skipped at step 4) in windows of 3 -> 3 entries at the
    global steps that closed them; the open window's 2 losses stay open."""
    result, logger = TrainResult(step_times=StepTimes(0)), Recorder()
    curve = LossCurve(3, result, logger)
    losses = [2.0, 1.5, 1.25, 1.0, 0.5, 0.75, 0.25, 0.125, 0.5, 0.3, 0.1]
    steps = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12]  # step 4: a skipped (non-finite) batch, no update
    for n, (step, loss) in enumerate(zip(steps, losses, strict=True)):
        lrs = {"method": 0.1 * step, "head": 1.0} if curve.closes_with_next_update() else None
        result.step_times.add(0.001 * (n + 1))
        result.count_step((0, 0), 0, 1, loss)
        curve.updated(step, lrs)
    means = window_means(losses, 3)
    assert [e["step"] for e in result.loss_history] == [3, 7, 10]
    assert [e["loss"] for e in result.loss_history] == pytest.approx(means)
    assert [e["lr"] for e in result.loss_history] == pytest.approx([0.3, 0.7, 1.0])  # the first group's
    assert result.loss_window == losses[9:]
    assert [t[0] for t in logger.train] == [3, 7, 10]
    assert logger.train[0][2] == pytest.approx({"method": 0.3, "head": 1.0})  # every group, by name
    assert [t[3] for t in logger.train] == pytest.approx([2.0, 5.0, 8.0])  # window mean step time (ms)


def test_record_keeps_one_entry_per_window_with_the_rate_each_step_used(tiny_bert_dir, make_spec):
    """A real run: the per-step losses (captured through the progress hook, which gets every updated step's
    loss) averaged in windows of 3 are the record's entries; 10 steps -> 10 // 3 = 3 entries."""
    spec = make_spec(tiny_bert_dir, **RUN, steps=10, log_every=3)
    losses: list[float] = []
    record = run_spec(spec, progress=lambda step, loss: losses.append(loss))
    assert record["status"] == "ok", record["error"]
    validate_record(record)
    history = record["metrics"]["loss_history"]
    assert len(losses) == 10 and len(history) == 10 // 3
    assert [e["step"] for e in history] == [3, 6, 9]
    assert [e["loss"] for e in history] == pytest.approx(window_means(losses, 3), rel=1e-12)
    # Linear decay from the method's rate with no warm-up: step k trains at lr * (1 - (k - 1) / max_steps).
    base = spec.method_config["lr"]
    assert [e["lr"] for e in history] == pytest.approx([base * (1 - (k - 1) / 10) for k in (3, 6, 9)])
    assert all(math.isfinite(e["loss"]) for e in history)


def test_history_survives_a_kill_and_resume(tiny_t5_dir, make_spec, tmp_path, monkeypatch):
    """Crash at step 6 with a checkpoint every 4 steps (its window half full), resume: the same history as a
    clean run; the failed record keeps the partial history."""
    spec = make_spec(tiny_t5_dir, **RUN, steps=8, method="dept", log_every=3, eval_mode="score")
    clean = run_spec(spec)
    assert clean["status"] == "ok", clean["error"]
    assert [e["step"] for e in clean["metrics"]["loss_history"]] == [3, 6]

    path = checkpoint_path(tmp_path, spec.run_id)
    monkeypatch.setenv("PTBENCH_FAULT", "raise@7")
    crashed = run_spec(spec, checkpoint=Checkpointer(path, 4, spec.run_id))
    assert crashed["status"] == "failed"
    validate_record(crashed)
    assert crashed["metrics"]["loss_history"] == clean["metrics"]["loss_history"]  # both windows closed
    saved = Checkpointer(path, 4, spec.run_id).load()
    assert saved["result"]["steps"] == 4 and len(saved["result"]["loss_window"]) == 1  # step 4's loss

    monkeypatch.delenv("PTBENCH_FAULT")
    resumed = run_spec(spec, checkpoint=Checkpointer(path, 4, spec.run_id))
    assert resumed["status"] == "ok", resumed["error"]
    assert resumed["metrics"]["loss_history"] == clean["metrics"]["loss_history"]


def test_failed_run_keeps_the_partial_history(tiny_bert_dir, make_spec, monkeypatch):
    monkeypatch.setenv("PTBENCH_FAULT", "raise@5")
    record = run_spec(make_spec(tiny_bert_dir, **RUN, steps=8, log_every=2))
    assert record["status"] == "failed" and record["steps"] == 5
    assert [e["step"] for e in record["metrics"]["loss_history"]] == [2, 4]


def test_multi_stage_method_counts_steps_across_stages(tiny_t5_dir, make_spec):
    """XPrompt trains two stages of 4 steps: windows of 2 close at global steps 2, 4, 6, 8."""
    config = {**XP, "score_batches": "2"}
    spec = make_spec(tiny_t5_dir, **RUN, steps=4, method="xprompt", method_config=config, log_every=2)
    record = run_spec(spec)
    assert record["status"] == "ok", record["error"]
    history = record["metrics"]["loss_history"]
    assert [e["step"] for e in history] == [2, 4, 6, 8]
    # Each stage has a fresh linear schedule: stage 2's step 6 is its 2nd step (no warm-up, 4 steps).
    base = spec.method_config["lr"]
    assert [e["lr"] for e in history] == pytest.approx([base * (1 - k / 4) for k in (1, 3, 1, 3)])


def test_log_every_is_validated_and_hashed(tiny_bert_dir, make_spec):
    with pytest.raises(InputError, match=r"train.log_every=0 must be >= 1"):
        TrainConfig(log_every=0).validate()
    assert make_spec(tiny_bert_dir, **RUN).train["log_every"] == 10  # the quick preset's
    ten, five = (make_spec(tiny_bert_dir, **RUN, log_every=n) for n in (10, 5))
    assert ten.run_id != five.run_id


def test_schema_has_loss_history_and_checks_its_type():
    record = failed_record(
        empty_spec := plan_free_spec(),
        "RuntimeError: x",
        None,
        progress={"steps": 4, "loss_history": [{"step": 2, "loss": 1.0, "lr": 0.1}]},
    )
    assert record["metrics"]["loss_history"] == [{"step": 2, "loss": 1.0, "lr": 0.1}]
    assert empty_record(empty_spec)["metrics"]["loss_history"] == []
    validate_record(record)
    record["metrics"]["loss_history"] = {"step": 2}
    with pytest.raises(ValueError, match="loss_history must be JSON arrays"):
        validate_record(record)
    del record["metrics"]["loss_history"]  # records written before the key existed stay valid
    validate_record(record)


def plan_free_spec():
    from bench.spec import RunSpec

    return RunSpec("glue", "rte", "pt", {}, "model", "quick", 0, {})
