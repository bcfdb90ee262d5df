"""The PostgreSQL path for real: two workers share one study in a PostgreSQL database (RDB storage with
heartbeats). `.ci/run` starts a server and sets PTBENCH_TEST_POSTGRES_URL; in CI a missing URL fails."""

from __future__ import annotations

import json
import os
import uuid

import optuna
import pytest

from bench.cli import main

# A PostgreSQL server and two bench tune worker processes.
pytestmark = pytest.mark.slow

URL = os.environ.get("PTBENCH_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url():
    if not URL:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                "PTBENCH_TEST_POSTGRES_URL is not set in CI; .ci/postgres.sh should have started a server"
            )
        pytest.skip("no PostgreSQL server (set PTBENCH_TEST_POSTGRES_URL, as .ci/run does)")
    return URL


def test_two_workers_share_a_study_in_postgres(postgres_url, tiny_bert_dir, data_dir, tmp_path, capsys):
    from bench.tune.storage import normalise_url

    study_name = f"pg-{uuid.uuid4().hex[:8]}"
    args = [
        "tune", "--method", "pt", "--trials", "2", "--workers", "2", "--pruner", "median", "--study", study_name,
        "--storage", postgres_url, "--suite", "glue", "--tasks", "rte", "--preset", "quick",
        "--model", str(tiny_bert_dir), "--data-dir", str(data_dir), "--max-steps", "4",
        "--max-train-samples", "16", "--set", "train.eval_every=2", "--set", "train.max_eval_samples=8",
        "--set", "train.max_length=32", "--set", "train.batch_size=4", "--set", "train.warmup_steps=0",
        "--out", str(tmp_path / "results"), "--reports", str(tmp_path / "reports"),
    ]  # fmt: skip
    assert main(args) == 0
    assert f"storage {postgres_url}" in capsys.readouterr().out
    study = optuna.load_study(study_name=study_name, storage=normalise_url(postgres_url))
    assert sorted(t.number for t in study.trials) == [0, 1]
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    assert all(t.intermediate_values for t in study.trials)  # reported from inside the runs
    records = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")]
    assert sorted(r["spec"]["trial"]["trial"] for r in records) == [0, 1]
    assert {t.user_attrs["run_id"] for t in study.trials} == {r["run_id"] for r in records}
    assert not (tmp_path / "results" / "tune.journal").exists()  # nothing went to the default file
