"""`bench run --executor`: the Slurm path through submitit's local executor, and finished runs skipped by
another executor."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

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


@pytest.mark.slow
def test_no_artifacts_reaches_the_array_tasks(tiny_t5_dir, data_dir, tmp_path):
    """`--no-artifacts` with the Slurm path (submitit's local executor): the array task's run saves none."""
    out = tmp_path / "results"
    args = [
        "run", "--suite", "glue", "--tasks", "rte", "--methods", "pt", "--seeds", "1", "--preset", "quick",
        "--model", str(tiny_t5_dir), "--data-dir", str(data_dir), "--max-steps", "2",
        "--max-train-samples", "8", "--set", "train.max_eval_samples=4", "--set", "train.max_length=32",
        "--set", "train.batch_size=4", "--set", "pt.num_tokens=4", "--out", str(out),
    ]  # fmt: skip
    assert main([*args, "--executor", "submitit-local", "--no-artifacts"]) == 0
    (record,) = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert record["status"] == "ok" and record["artifact"] is None
    assert not list(out.glob("artifacts/*"))


def test_array_tasks_get_whether_their_run_saves_an_artifact(monkeypatch, tmp_path):
    """Each array task's arguments end with the grid's answer for its run (source runs always save)."""
    import bench.grid.slurm_jobs
    from bench.grid.executors import Grid, array_task_arguments
    from bench.grid.slurm_jobs import _array_task
    from bench.spec import RunSpec

    specs = [RunSpec("glue", "rte", "pt", {}, "t5-base", "quick", seed, {}) for seed in (1, 2)]
    source = specs[0].run_id
    grid = Grid(tmp_path, 1, Console(), print, print, print, saves=lambda spec: spec.run_id == source)
    columns = array_task_arguments(grid, specs)
    assert columns[-1] == [True, False]
    seen = []

    def fake_run_locked(spec, out_dir, on_start=None, save_artifacts=True, **options):
        seen.append(save_artifacts)

    monkeypatch.setattr(bench.grid.slurm_jobs, "run_locked", fake_run_locked)
    for task_args in zip(*columns, strict=True):  # what submitit's map_array calls, one task per spec
        _array_task(*task_args)
    assert seen == [True, False]
    _array_task(specs[0].to_dict(), str(tmp_path))  # a task submitted before the argument existed
    assert seen[-1] is True
