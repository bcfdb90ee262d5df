"""Every run record says whether its training loop shared the machine (``contention``, bench/measurement/contention.py).

The verdict is tested on fabricated measurements (a CI machine may itself be busy under ``pytest -n 2``, so no
test asserts that a real run was quiet); the measurement plumbing on a real busy-loop subprocess and on a real
tiny training run, with assertions that hold however busy the machine is.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench.measurement.contention import REQUIRED_KEYS, ContentionMeter, check, verdict


def quiet(**changes) -> dict:
    """Measurements of an undisturbed single run on 2 cores, with ``changes``."""
    base = {
        "workers": 1,
        "threads": 2,
        "cpu_count": 2,
        "usable_cores": 2,
        "wall_s": 100.0,
        "cpu_time_s": 180.0,
        "cpu_util": 1.8,
        "other_cpu_s": 5.0,
        "other_cpu_cores": 0.05,
        "loadavg_1m": [0.3, 2.1],
        "loadavg_1m_mean": 1.9,
        "loadavg_samples": 500,
    }
    return {**base, **changes}


def test_a_quiet_run_is_not_contended():
    assert verdict(quiet()) == (False, None)


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"other_cpu_cores": 0.9, "other_cpu_s": 90.0}, "other processes used 0.90 cores"),
        ({"workers": 2}, "2 workers x 2 threads > 2 usable cores"),
        ({"loadavg_1m_mean": 3.4}, "load average 3.40"),
        ({"loadavg_1m_mean": None, "loadavg_1m": [0.1, 4.0]}, "load average 4.00"),
    ],
)
def test_each_rule_marks_a_run_contended_and_says_why(changes, phrase):
    contended, why = verdict(quiet(**changes))
    assert contended and phrase in why


def test_every_rule_that_fires_is_named():
    contended, why = verdict(quiet(other_cpu_cores=4.5, workers=3, loadavg_1m_mean=6.0))
    assert contended and why.count(";") == 2


def test_unreadable_proc_stat_leaves_the_other_rules():
    """Without /proc/stat (not Linux) other_cpu_cores is null; the thread and load rules still apply."""
    assert verdict(quiet(other_cpu_cores=None, other_cpu_s=None)) == (False, None)
    assert verdict(quiet(other_cpu_cores=None, threads=4))[0]


@pytest.mark.slow
def test_a_busy_loop_beside_the_window_is_seen_as_other_cpu():
    """A busy-loop subprocess uses about a core while this process sleeps: the meter sees other CPU and calls
    the window contended (more load from other test workers only adds to it)."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # the interpreter started and spins
        with ContentionMeter(workers=1, threads=1) as meter:
            time.sleep(1.5)
    finally:
        busy.kill()
        busy.wait()
    result = meter.result
    assert result["other_cpu_cores"] > 0.3
    assert result["cpu_time_s"] < 0.5 * result["wall_s"]  # this process slept
    assert result["contended"] and "other processes" in result["why"]


def test_own_cpu_time_counts_this_process():
    with ContentionMeter(workers=1, threads=1) as meter:
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass
    assert meter.result["cpu_time_s"] >= 0.3
    assert 0 < meter.result["cpu_util"] <= meter.result["usable_cores"] + 0.1


def test_a_real_tiny_run_records_its_contention(tiny_bert_dir, monkeypatch):
    """The trainer measures its loop: every contract key, the torch thread count and the grid's worker count."""
    import torch

    from bench.backbones.load import load_backbone
    from bench.protocol import WORKERS_ENV
    from bench.spec import TrainConfig
    from bench.training.trainer import LoopInputs, train_and_evaluate
    from methods.pt import PromptTuning, PTConfig
    from suites.task import Example

    monkeypatch.setenv(WORKERS_ENV, "3")
    backbone = load_backbone(str(tiny_bert_dir), ["0", "1"], 16)
    backbone.attach(PromptTuning(PTConfig(num_tokens=2), backbone.dims))
    rows = [Example(f"row {i} is fine", str(i % 2), i % 2) for i in range(8)]
    split = backbone.encode(rows, ["0", "1"])

    class Task:
        selection_metric = "accuracy"

        @staticmethod
        def label_strings():
            return ["0", "1"]

        @staticmethod
        def compute_metrics(predictions, references):
            return {
                "accuracy": 100.0
                * sum(p == r for p, r in zip(predictions, references, strict=True))
                / len(references)
            }

    train = TrainConfig(batch_size=4, max_steps=4, warmup_steps=0, eval_every=2, max_length=16)
    result = train_and_evaluate(
        LoopInputs(backbone, Task(), split, split, None, train, 0, torch.device("cpu"))
    )
    contention = result.contention
    assert set(REQUIRED_KEYS) <= set(contention)
    check(contention)
    assert contention["workers"] == 3 and contention["threads"] == torch.get_num_threads()
    assert contention["wall_s"] > 0 and contention["cpu_time_s"] > 0
    assert len(contention["loadavg_1m"]) == 2 and contention["cpu_count"] >= 1
    # 3 workers x threads > cores on a machine with fewer than 3·threads cores: then the verdict says so.
    if 3 * contention["threads"] > contention["usable_cores"]:
        assert contention["contended"] and "3 workers" in contention["why"]


def test_the_record_schema_has_contention():
    from bench.results import empty_record, validate_record
    from bench.spec import RunSpec

    record = empty_record(RunSpec("glue", "sst2", "pt", {}, "minilm", "quick", 42, {}))
    assert record["contention"] is None
    validate_record(record)
    record["contention"] = {**quiet(), "contended": False, "why": None}
    validate_record(record)
    for bad in ("busy", {"contended": "no"}, {**quiet(), "contended": 1, "why": None}):
        record["contention"] = bad
        with pytest.raises(ValueError, match="contention"):
            validate_record(record)


def test_the_grid_tells_each_worker_how_many_run_beside_it(monkeypatch, tmp_path):
    """``bench.grid.execute`` passes the number of runs side by side to every worker process (WORKERS_ENV)."""
    from rich.console import Console

    import bench.grid.execute
    from bench.protocol import WORKERS_ENV
    from bench.spec import RunSpec

    seen = []

    def fake_run_locked(spec, out_dir, on_start=None, env=None, **options):
        seen.append(env[WORKERS_ENV])
        return None

    monkeypatch.setattr(bench.grid.execute, "run_locked", fake_run_locked)
    specs = [
        RunSpec("glue", "sst2", "pt", {}, "minilm", "quick", seed, {"max_steps": 1}) for seed in range(3)
    ]
    console = Console(file=open(tmp_path / "screen.txt", "w"))
    bench.grid.execute.execute_grid(specs, tmp_path, console, executor="local", workers=2)
    bench.grid.execute.execute_grid(specs, tmp_path, console, executor="sequential", workers=2)
    assert seen == ["2"] * 3 + ["1"] * 3


def test_the_grids_other_workers_are_expected_load():
    """2 one-thread workers on 2 cores: the sibling's core is the declared set-up, not contention; more is."""
    assert verdict(quiet(workers=2, threads=1, other_cpu_cores=1.05)) == (False, None)
    contended, why = verdict(quiet(workers=2, threads=1, other_cpu_cores=1.4))
    assert contended and "beyond the 1 expected" in why


def test_the_report_judges_old_records_by_the_current_rule():
    from bench.report.load import contended

    stored_by_an_older_rule = {
        "contention": {**quiet(workers=2, threads=1, other_cpu_cores=1.05), "contended": True}
    }
    assert contended(stored_by_an_older_rule) is False
    assert contended({"contention": None}) is None
