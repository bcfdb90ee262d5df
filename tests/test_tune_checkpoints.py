"""`bench tune`'s trials checkpoint as `bench run`'s runs do: on the paper preset at each dev evaluation
unless ``--checkpoint-every`` says otherwise (0: never), the interval reaching each trial's worker; a trial
Optuna retries after its process died runs the dead trial's run again (same run id), so it resumes from that
checkpoint."""

from __future__ import annotations

import json
import warnings

import optuna
import pytest

import bench.tune.search
from bench.cli import main
from bench.planning.plan import RunRequest
from bench.tune.search import TuneRequest, make_objective, study_jobs


def _job(tmp_path, preset: str, every: int | None = None):
    """The one study of a PT-on-RTE search (hub data source: planning reads no data)."""
    request = RunRequest(suite="glue", tasks=["rte"], methods=["pt"], seeds=[42], preset=preset)
    storage = str(tmp_path / "tune.journal")
    (job,) = study_jobs(TuneRequest(request, str(tmp_path), 2, storage, checkpoint_every=every))
    return job


def _trials(job, monkeypatch, study, n: int = 1) -> list[tuple]:
    """Run ``n`` trials of ``study`` with ``run_locked`` replaced: what each trial's run was asked to do."""
    seen = []

    def fake_run_locked(spec, out_dir, **options):
        seen.append((spec, options))
        metrics = {"selection_metric": "accuracy", "best_step": 2, "dev": {"accuracy": 50.0}}
        return {"status": "ok", "metrics": metrics}

    monkeypatch.setattr(bench.tune.search, "run_locked", fake_run_locked)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(make_objective(job), n_trials=n)
    return seen


@pytest.mark.parametrize(
    ("preset", "every", "expected"),
    [("paper", None, 1_000), ("paper", 7, 7), ("paper", 0, None), ("quick", None, None), ("quick", 3, 3)],
)
def test_each_trial_gets_the_runs_checkpoint_interval(tmp_path, monkeypatch, preset, every, expected):
    job = _job(tmp_path, preset, every)
    seen = _trials(job, monkeypatch, optuna.create_study(direction="maximize"), n=2)
    assert [options["checkpoint_every"] for _, options in seen] == [expected, expected]


def test_a_retried_trial_runs_the_dead_trials_run_again(tmp_path, monkeypatch):
    job = _job(tmp_path, "paper")
    study = optuna.create_study(direction="maximize")
    (first,) = _trials(job, monkeypatch, study)
    with warnings.catch_warnings():  # experimental, and deprecated from Optuna 4.9 (same copy, renamed)
        warnings.simplefilter("ignore")
        retry = optuna.storages.RetryFailedTrialCallback(max_retry=2)  # bench.tune.storage's
        retry(study, study.trials[0])  # what the storage calls on a trial whose heartbeat stopped
    (retried,) = _trials(job, monkeypatch, study)
    (fresh,) = _trials(job, monkeypatch, study)
    assert retried[0].run_id == first[0].run_id and retried[0].trial == {"study": job.name, "trial": 0}
    assert study.trials[1].user_attrs["run_trial"] == 0 and study.trials[1].params == study.trials[0].params
    assert fresh[0].trial["trial"] == 2 and fresh[0].run_id != first[0].run_id


def test_checkpoint_every_below_zero_is_refused(tmp_path, capsys):
    code = main(
        ["tune", "--method", "pt", "--tasks", "rte", "--checkpoint-every", "-1", "--out", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(": error: --checkpoint-every -1 must be >= 0\n")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_paper_trial_checkpoints_in_its_worker(tiny_bert_dir, data_dir, tmp_path, monkeypatch, capsys):
    """A real trial on the paper preset (evaluating every 2 steps) fails at step 3 by a fault: its worker has
    written the checkpoint of step 2 without being asked; a pruned trial deletes its own."""
    out = tmp_path / "results"
    args = [
        "tune", "--method", "pt", "--suite", "glue", "--tasks", "rte", "--preset", "paper", "--trials", "1",
        "--model", str(tiny_bert_dir), "--data-dir", str(data_dir), "--max-steps", "4",
        "--max-train-samples", "16", "--set", "train.eval_every=2", "--set", "train.max_eval_samples=8",
        "--set", "train.max_length=32", "--set", "train.batch_size=4", "--set", "pt.num_tokens=4",
        "--out", str(out), "--reports", str(tmp_path / "reports"),
    ]  # fmt: skip
    monkeypatch.setenv("PTBENCH_FAULT", "raise@3")
    assert main([*args, "--study", "crash", "--pruner", "none"]) == 1  # no complete trial
    (record,) = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert record["status"] == "failed" and record["steps"] == 3
    (checkpoint,) = (out / "checkpoints").glob("*.pt")
    assert checkpoint.name == f"{record['run_id']}.pt"
    checkpoint.unlink()

    monkeypatch.delenv("PTBENCH_FAULT")
    pruned = ["--study", "pruned", "--pruner", "threshold:lower=1000", "--checkpoint-every", "1"]
    assert main([*args, *pruned]) == 1  # pruned at step 2, after the checkpoint of step 1
    assert "| pruned | pt | rte | paper | 1 | 0 | 1 | 0 |" in capsys.readouterr().out
    assert not list((out / "checkpoints").glob("*.pt"))  # pruned: never resumed, so not kept
