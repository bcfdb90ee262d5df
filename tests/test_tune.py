"""`bench tune` end to end on a tiny BERT: two workers share a journal-file study, every trial is a normal
dev-only record, pruning stops a run and marks it, plots and summaries are written, `tune show` prints the
study, and `bench run --params best:STUDY` re-runs the best settings over two seeds (local executor)."""

from __future__ import annotations

import json

import optuna
import pytest

from bench.cli import main

# bench tune: two worker processes train the trials.
pytestmark = pytest.mark.slow


@pytest.fixture
def common(tiny_bert_dir, data_dir):
    return [
        "--suite", "glue", "--tasks", "rte", "--preset", "quick", "--model", str(tiny_bert_dir),
        "--data-dir", str(data_dir), "--max-steps", "4", "--max-train-samples", "16",
        "--set", "train.eval_every=2", "--set", "train.max_eval_samples=8", "--set", "train.max_length=32",
        "--set", "train.batch_size=4", "--set", "train.warmup_steps=0", "--set", "train.timing_warmup_steps=0",
    ]  # fmt: skip


def _records(out):
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]


def test_two_workers_share_a_study_and_best_settings_rerun(common, tmp_path, capsys):
    out, reports = tmp_path / "results", tmp_path / "reports"
    args = ["tune", "--method", "pt", "--trials", "3", "--workers", "2", "--pruner", "none", "--study", "s1"]
    assert main([*args, *common, "--out", str(out), "--reports", str(reports)]) == 0
    printed = capsys.readouterr().out
    assert "| s1 | pt | rte | quick | 3 | 3 | 0 | 0 |" in printed  # 3 trials, all complete

    trials = _records(out)
    assert len(trials) == 3 and len({r["run_id"] for r in trials}) == 3
    for rec in trials:
        assert rec["status"] == "ok", rec["error"]
        assert rec["spec"]["trial"]["study"] == "s1"
        assert rec["metrics"]["test"] == {} and rec["metrics"]["headline"]["test"] is None  # dev only
        assert [h["step"] for h in rec["metrics"]["dev_history"]] == [2, 4]
    assert len({r["spec"]["method_config"]["lr"] for r in trials}) == 3  # the workers sampled apart

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "tune.journal"))
    )
    study = optuna.load_study(study_name="s1", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert all(len(t.intermediate_values) == 2 for t in study.trials)  # reported at each dev evaluation
    best = study.best_trial
    by_run = {r["run_id"]: r for r in trials}
    assert best.value == by_run[best.user_attrs["run_id"]]["metrics"]["dev"]["accuracy"]
    for name in ("history.png", "intermediate.png", "summary.md", "summary.csv"):
        assert (reports / "tune" / "s1" / name).stat().st_size > 0

    assert main(["tune", "show", "s1", "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "3 complete" in shown and best.user_attrs["run_id"] in shown

    run = ["run", "--methods", "pt", "--seeds", "1,2", "--params", "best:s1", "--executor", "local"]
    assert main([*run, "--workers", "2", *common, "--out", str(out)]) == 0
    finals = [r for r in _records(out) if r["spec"]["trial"] is None]
    assert sorted(r["spec"]["seed"] for r in finals) == [1, 2]
    for rec in finals:
        assert rec["status"] == "ok" and rec["metrics"]["test"]  # final runs do evaluate test
        assert rec["spec"]["method_config"]["lr"] == pytest.approx(best.params["lr"])
    assert main([*run, "--workers", "2", *common, "--out", str(out)]) == 0
    assert "2 runs, 2 already done, 0 to run" in capsys.readouterr().out


def test_pruned_trial_stops_early_and_is_recorded(common, tmp_path, capsys):
    """A pruner that prunes everything (threshold above 100) stops the run at its first dev evaluation."""
    out = tmp_path / "results"
    args = ["tune", "--method", "dept", "--trials", "1", "--pruner", "threshold:lower=1000", "--study", "p"]
    assert (
        main([*args, *common, "--out", str(out), "--reports", str(tmp_path / "r")]) == 1
    )  # no complete trial
    assert "| p | dept | rte | quick | 1 | 0 | 1 | 0 |" in capsys.readouterr().out
    (rec,) = _records(out)
    assert rec["status"] == "pruned" and rec["error"].startswith("pruned at step 2")
    assert rec["steps"] == 2 and rec["metrics"]["test"] == {}
    assert set(rec["spec"]["method_config"]) >= {"lr", "lr_lowrank"}
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "tune.journal"))
    )
    (trial,) = optuna.load_study(study_name="p", storage=storage).trials
    assert trial.state.name == "PRUNED" and list(trial.intermediate_values) == [2]
    assert main(["run", "--methods", "dept", "--params", "best:p", "--seeds", "1", "--out", str(out)]) == 2
    assert "no complete trial" in capsys.readouterr().err
