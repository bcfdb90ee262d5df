"""`bench run --executor`: the Slurm path through submitit's local executor, and finished runs skipped by
another executor."""

from __future__ import annotations

import json

import pytest

from bench.cli import main


@pytest.mark.slow
def test_submitit_array_then_local_executor_skips_finished(tiny_t5_dir, data_dir, tmp_path, capsys):
    out = tmp_path / "results"
    args = [
        "run", "--suite", "glue", "--tasks", "rte", "--methods", "pt", "--seeds", "1,2", "--preset", "quick",
        "--model", str(tiny_t5_dir), "--data-dir", str(data_dir), "--max-steps", "2",
        "--max-train-samples", "8", "--set", "train.max_eval_samples=4", "--set", "train.max_length=32",
        "--set", "train.batch_size=4", "--set", "pt.num_tokens=4", "--out", str(out), "--workers", "2",
    ]  # fmt: skip
    assert main([*args, "--executor", "submitit-local"]) == 0
    printed = capsys.readouterr().out
    assert "submitted 2 runs as job array" in printed
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert sorted(r["spec"]["seed"] for r in records) == [1, 2]
    assert all(r["status"] == "ok" for r in records)
    assert list((out / "submitit").iterdir())  # submitit's job folders (logs, pickles)

    assert main([*args, "--executor", "local"]) == 0
    assert "2 runs, 2 already done, 0 to run" in capsys.readouterr().out
    assert main([*args, "--executor", "slrum"]) == 2
    assert "did you mean 'slurm'" in capsys.readouterr().err
