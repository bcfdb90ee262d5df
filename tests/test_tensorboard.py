"""``bench run --log-dir`` and ``bench tune --log-dir``: TensorBoard event files per run, read back with
TensorBoard's own reader; the folder is no part of the run id (bench/training/tensorboard_log.py)."""

from __future__ import annotations

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bench.cli import main
from bench.training.tensorboard_log import TensorBoardLogger


@pytest.fixture
def common(tiny_bert_dir, data_dir):
    return [
        "--suite", "glue", "--tasks", "rte", "--preset", "quick", "--model", str(tiny_bert_dir),
        "--data-dir", str(data_dir), "--max-steps", "6", "--max-train-samples", "16",
        "--set", "train.eval_every=3", "--set", "train.max_eval_samples=8", "--set", "train.max_length=32",
        "--set", "train.batch_size=4", "--set", "train.warmup_steps=0", "--set", "train.log_every=2",
    ]  # fmt: skip


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.slow
def test_run_writes_event_files_per_run_through_the_local_executor(common, tmp_path, capsys):
    out, logs = tmp_path / "results", tmp_path / "tb"
    run = ["run", "--methods", "pt", "--seeds", "1,2", "--executor", "local", "--workers", "2", *common]
    assert main([*run, "--out", str(out), "--log-dir", str(logs)]) == 0
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert len(records) == 2
    folders = sorted(p.name for p in logs.iterdir())
    assert folders == sorted(f"pt_rte_seed{r['spec']['seed']}_{r['run_id']}" for r in records)
    for record in records:
        folder = logs / f"pt_rte_seed{record['spec']['seed']}_{record['run_id']}"
        seen = scalars(folder)
        history = record["metrics"]["loss_history"]
        assert [s for s, _ in seen["train/loss"]] == [2, 4, 6] == [e["step"] for e in history]
        assert [v for _, v in seen["train/loss"]] == pytest.approx([e["loss"] for e in history], rel=1e-6)
        assert [s for s, _ in seen["train/lr/method"]] == [2, 4, 6]
        assert [v for _, v in seen["train/lr/method"]] == pytest.approx([e["lr"] for e in history], rel=1e-6)
        assert [s for s, _ in seen["train/lr/head"]] == [2, 4, 6]  # every optimiser group
        assert [s for s, _ in seen["time/step_ms"]] == [2, 4, 6] and all(
            v > 0 for _, v in seen["time/step_ms"]
        )
        dev = record["metrics"]["dev_history"]
        assert [s for s, _ in seen["dev/accuracy"]] == [h["step"] for h in dev] == [3, 6]
        assert [v for _, v in seen["dev/accuracy"]] == pytest.approx([h["metrics"]["accuracy"] for h in dev])
        ((step, value),) = seen["test/accuracy"]
        assert step == record["metrics"]["best_step"]
        assert value == pytest.approx(record["metrics"]["test"]["accuracy"])

    # --log-dir is not part of the spec: the same command without it finds both runs done.
    capsys.readouterr()
    assert main([*run, "--out", str(out)]) == 0
    assert "2 runs, 2 already done, 0 to run" in capsys.readouterr().out


@pytest.mark.slow
def test_tune_trial_writes_its_own_folder(common, tmp_path):
    out, logs = tmp_path / "results", tmp_path / "tb"
    tune = ["tune", "--method", "pt", "--trials", "1", "--pruner", "none", "--study", "s1", *common]
    assert main([*tune, "--out", str(out), "--reports", str(tmp_path / "r"), "--log-dir", str(logs)]) == 0
    (record,) = [json.loads(p.read_text()) for p in out.glob("*.json")]
    folder = logs / "s1" / f"trial0_pt_rte_seed42_{record['run_id']}"
    seen = scalars(folder)
    assert [s for s, _ in seen["train/loss"]] == [2, 4, 6]
    assert [s for s, _ in seen["dev/accuracy"]] == [3, 6]
    assert not any(tag.startswith("test/") for tag in seen)  # trials never evaluate test


def test_a_resumed_run_replaces_what_the_killed_attempt_wrote_after_its_step(tmp_path):
    """purge_step: the second writer starts at step 3, so TensorBoard keeps steps 1-2 of the first and 3-4
    of the second."""
    first = TensorBoardLogger(tmp_path)
    first.start(1)
    for step in (1, 2, 3, 4):
        first.log_train(step, float(step), {"method": 0.1}, 1.0)
    first.close()
    second = TensorBoardLogger(tmp_path)
    second.start(3)
    for step in (3, 4):
        second.log_train(step, 10.0 * step, {"method": 0.1}, 1.0)
    second.close()
    assert scalars(tmp_path)["train/loss"] == [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]


def test_log_dir_that_is_a_file_is_one_clear_line(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert main(["run", "--methods", "pt", "--tasks", "rte", "--log-dir", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"--log-dir {str(path)!r} is a file" in err
