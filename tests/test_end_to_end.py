"""End to end: ``bench run`` writes valid records, a re-run skips them, and the same spec twice gives the
same metrics on CPU."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.planning.plan import RunRequest, plan
from bench.results import load_records, read_record
from bench.worker import execute


def _records(out):
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]


@pytest.mark.slow
def test_quick_preset_on_real_sst2_writes_records_and_skips_on_rerun(data_dir, tmp_path, capsys):
    """The real packaged MiniLM on real SST-2, shortened to 20 steps so it fits in CI."""
    args = [
        "run",
        "--suite",
        "glue",
        "--tasks",
        "sst2",
        "--methods",
        "ept,dept,pt",
        "--preset",
        "quick",
        "--seeds",
        "42",
        "--max-steps",
        "20",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path),
        "--set",
        "train.max_eval_samples=64",
        "--set",
        "train.eval_every=10",
    ]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "3 runs, 0 already done" in first
    records = _records(tmp_path)
    assert len(records) == 3
    for rec in records:
        assert read_record(tmp_path / f"{rec['spec']['method']}_sst2_seed42_{rec['run_id']}.json") is not None
        assert rec["status"] == "ok", rec["error"]
        assert rec["spec"]["model"] == "minilm" and rec["steps"] == 20
        assert rec["metrics"]["headline"]["name"] == "accuracy"
        assert 0 <= rec["metrics"]["headline"]["test"] <= 100
        assert rec["data"]["sizes"] == {"train": 1000, "dev": 64, "test": 64}
        assert rec["train_time_s"] > 0 and rec["step_time_ms_median"] > 0 and rec["tokens_per_s"] > 0
        assert rec["effective_tokens_per_s"] > rec["tokens_per_s"]
        assert rec["peak_rss_bytes"] > 0 and rec["peak_gpu_mem_allocated_bytes"] is None  # CPU
        assert rec["head_params"] == 384 * 2 + 2
    by_method = {r["spec"]["method"]: r for r in records}
    # The quick preset's budgets are matched: PT l=20 and DePT m=12, r=6 both train 7,680 on MiniLM.
    assert by_method["pt"]["trainable_params"] == by_method["dept"]["trainable_params"] == 7_680
    assert by_method["ept"]["trainable_params"] == 7_680 + by_method["ept"]["extra_params"]
    assert by_method["ept"]["method_record"]["ept_variant"] == "placeholder-v0"
    assert len(by_method["ept"]["method_record"]["gate_weights_best"]) == 4
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")}

    assert main(args) == 0
    second = capsys.readouterr().out
    assert "3 runs, 3 already done, 0 to run" in second
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")} == mtimes

    frame = load_records(tmp_path)
    assert sorted(frame["method"]) == ["dept", "ept", "pt"]
    assert set(frame["status"]) == {"ok"}


@pytest.mark.parametrize("method", ["dept", "ept"])
def test_same_spec_twice_gives_same_metrics(tiny_t5_dir, data_dir, method):
    request = RunRequest(
        suite="glue",
        tasks=["rte"],
        methods=[method],
        seeds=[7],
        preset="quick",
        model=str(tiny_t5_dir),
        data_dir=str(data_dir),
        max_steps=6,
        max_train_samples=32,
        overrides={
            "train": {"max_length": "32", "max_eval_samples": "16", "eval_every": "3", "batch_size": "4"},
            method: {"num_tokens": "4", "rank": "2"},
        },
    )
    (spec,) = plan(request)
    first, second = execute(spec), execute(spec)
    assert first["metrics"]["test"] == second["metrics"]["test"]
    assert first["metrics"]["dev_history"] == second["metrics"]["dev_history"]
    assert first["final_loss"] == second["final_loss"]


@pytest.mark.slow
def test_crashing_worker_leaves_a_failed_record(tmp_path, data_dir, monkeypatch):
    """A run whose model cannot load fails alone, with the error in its record."""
    from bench.grid.runner import run_one

    request = RunRequest(
        suite="glue",
        tasks=["rte"],
        methods=["pt"],
        seeds=[1],
        preset="quick",
        model=str(tmp_path / "missing"),
        data_dir=str(data_dir),
        max_steps=2,
    )
    (spec,) = plan(request)
    record = run_one(spec, tmp_path / "out")
    assert record["status"] == "failed"
    assert "missing" in record["error"]
    assert read_record(next((tmp_path / "out").glob("*.json")))["status"] == "failed"
