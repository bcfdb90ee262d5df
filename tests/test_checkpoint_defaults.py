"""Long runs checkpoint without being asked: the paper preset's runs save their state at each dev evaluation,
``--checkpoint-every`` overrides that (0: off), and the interval reaches every executor, Slurm array tasks
included. The interval is not part of the spec, so run ids do not depend on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

import bench.grid.execute
import bench.grid.slurm_jobs
from bench.grid.executors import Grid, array_task_arguments
from bench.grid.slurm_jobs import _array_task
from bench.planning.plan import RunRequest, plan
from bench.presets import checkpoint_interval
from bench.protocol import parse_worker_args, worker_command
from bench.spec import RunSpec
from bench.training.checkpoint import Checkpointer


def planned(preset: str, **train: str) -> RunSpec:
    """One planned RTE run (hub data source: planning reads no data)."""
    request = RunRequest(suite="glue", tasks=["rte"], methods=["pt"], seeds=[42], preset=preset)
    if train:
        request.overrides = {"train": dict(train)}
    (spec,) = plan(request)
    return spec


def test_paper_runs_checkpoint_at_each_dev_evaluation_by_default():
    spec = planned("paper")
    assert (
        spec.train["max_steps"] == 30_000 and checkpoint_interval(spec) == 1_000 == spec.train["eval_every"]
    )
    assert checkpoint_interval(planned("paper", eval_every="500")) == 500  # follows the run's evaluations
    argv = worker_command(Path("spec.json"), Path("record.json"), checkpoint_interval(spec))
    assert argv[argv.index("--checkpoint-every") + 1] == "1000"
    assert parse_worker_args(argv[3:]).checkpoint_every == 1_000  # after "python -m bench.worker"
    assert "checkpoint" not in json.dumps(spec.identity())  # not hashed: run ids are unchanged


def test_quick_presets_have_no_default_and_the_override_wins():
    paper, quick, decoder = planned("paper"), planned("quick"), planned("quick-decoder")
    assert checkpoint_interval(quick) is None and checkpoint_interval(decoder) is None
    assert [checkpoint_interval(s, 7) for s in (paper, quick, decoder)] == [7, 7, 7]
    assert checkpoint_interval(paper, 0) is None  # --checkpoint-every 0: no checkpoints
    assert "--checkpoint-every" not in worker_command(Path("s"), Path("r"), checkpoint_interval(paper, 0))


def _specs() -> list[RunSpec]:
    train = {"max_steps": 30_000, "eval_every": 1_000}
    return [RunSpec("glue", "rte", "pt", {}, "t5-base", p, 1, train) for p in ("paper", "quick")]


@pytest.mark.parametrize("executor", ["sequential", "local"])
@pytest.mark.parametrize(("override", "expected"), [(None, [1_000, None]), (3, [3, 3]), (0, [None, None])])
def test_the_grid_gives_each_run_its_interval(monkeypatch, tmp_path, executor, override, expected):
    seen = {}

    def fake_run_locked(spec, out_dir, on_start=None, checkpoint_every=None, **options):
        seen[spec.preset] = checkpoint_every

    monkeypatch.setattr(bench.grid.execute, "run_locked", fake_run_locked)
    console = Console(file=open(tmp_path / "screen.txt", "w"))
    bench.grid.execute.execute_grid(_specs(), tmp_path, console, executor, 2, checkpoint_every=override)
    assert [seen["paper"], seen["quick"]] == expected


@pytest.mark.parametrize(("override", "expected"), [(None, [1_000, None]), (3, [3, 3]), (0, [None, None])])
def test_slurm_array_tasks_get_each_runs_interval(monkeypatch, tmp_path, override, expected):
    grid = Grid(tmp_path, 1, Console(), print, print, print, checkpoint_every=override)
    columns = array_task_arguments(grid, _specs())
    assert columns[3] == expected
    seen = []

    def fake_run_locked(spec, out_dir, on_start=None, checkpoint_every=None, **options):
        seen.append(checkpoint_every)

    monkeypatch.setattr(bench.grid.slurm_jobs, "run_locked", fake_run_locked)
    for task_args in zip(*columns, strict=True):  # what submitit's map_array calls, one task per spec
        _array_task(*task_args)
    assert seen == expected


@pytest.mark.slow
def test_an_array_task_checkpoints_and_resumes(tiny_bert_dir, make_spec, tmp_path, monkeypatch):
    """A real array task (worker process): killed by a fault at step 5, it leaves the checkpoint of step 4;
    run again, it resumes from it and finishes ok, and the checkpoint is deleted."""
    spec = make_spec(tiny_bert_dir, seed=7, train={"max_length": "24", "eval_every": "2", "batch_size": "4"})
    out = tmp_path / "out"
    grid = Grid(out, 1, Console(), print, print, print, checkpoint_every=2)
    (task_args,) = zip(*array_task_arguments(grid, [spec]), strict=True)
    monkeypatch.setenv("PTBENCH_FAULT", "raise@5")
    assert _array_task(*task_args)["status"] == "failed"
    checkpoint = out / "checkpoints" / f"{spec.run_id}.pt"
    assert Checkpointer(checkpoint, 2, spec.run_id).load()["result"]["steps"] == 4
    monkeypatch.delenv("PTBENCH_FAULT")
    assert _array_task(*task_args)["status"] == "ok"
    assert not checkpoint.exists()
