"""Runs side by side on one machine share its cores (``bench.grid.execute.threads_env``): without it, every local worker
starts one torch thread per core and 2 workers on 2 cores preempt each other."""

from __future__ import annotations

import pytest

from bench.grid.execute import threads_env


@pytest.fixture(autouse=True)
def _four_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("bench.measurement.contention.usable_cores", lambda: 4)


@pytest.mark.parametrize(
    ("executor", "workers", "expected"),
    [("local", 2, "2"), ("local", 3, "1"), ("local", 8, "1"), ("submitit-local", 4, "1")],
)
def test_local_workers_share_the_cores(executor, workers, expected):
    assert threads_env(executor, workers) == {"OMP_NUM_THREADS": expected}


@pytest.mark.parametrize(("executor", "workers"), [("sequential", 1), ("local", 1), ("slurm", 8)])
def test_one_run_or_other_machines_keep_torch_default(executor, workers):
    assert threads_env(executor, workers) == {}


def test_the_users_setting_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads_env("local", 2) == {}
