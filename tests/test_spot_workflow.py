"""The source-prompt workflow on tiny T5 and real data: a PT source run on MRPC, then SPoT on RTE that names
the source by task; the target starts from exactly the source's exported prompt, the source run id is in the
spec (and its hash) and in the record, and a missing source is planned ahead of the runs that need it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.artifact_file import load_prompt
from bench.cli import main
from bench.planning.plan import RunRequest, plan_with_sources
from bench.planning.sources import _pick, transfer_record
from bench.worker import build
from suites import get_task
from tests.test_artifacts_eval import run_worker, train_for


def test_spot_starts_from_the_source_prompt_and_records_it(tiny_t5_dir, make_spec, tmp_path):
    out = tmp_path / "results"
    train = train_for(tiny_t5_dir)
    source = make_spec(tiny_t5_dir, train=train, method="pt", task="mrpc", out=out)
    source_record = run_worker(source, out)
    assert source_record["status"] == "ok", source_record["error"]
    source_prompt, metadata = load_prompt(out / source_record["artifact"])
    assert metadata["run_id"] == source.run_id and metadata["task"] == "mrpc"

    target = make_spec(
        tiny_t5_dir,
        train=train,
        method="spot",
        task="rte",
        out=out,
        method_config={"num_tokens": "4", "source": "mrpc"},
    )
    assert [s["run_id"] for s in target.sources] == [source.run_id]
    _, method = build(target, get_task("rte"), target.train_config(), out)
    assert torch.equal(method.soft_prompt.detach(), source_prompt)  # initial prompt = the source's export

    record = run_worker(target, out)
    assert record["status"] == "ok", record["error"]
    assert record["transfer"]["source_run_ids"] == [source.run_id]
    assert record["transfer"]["self_transfer"] is False
    assert record["transfer_params"] == record["trainable_params"] == 4 * 32
    assert main(["eval", target.run_id, "--out", str(out)]) == 0  # rebuilt with its source, reproduced

    # The source is part of the run's identity: another source prompt is another run.
    other = dataclasses.replace(target, sources=[{**target.sources[0], "run_id": "0" * 16}])
    assert other.run_id != target.run_id
    from_file = make_spec(
        tiny_t5_dir,
        train=train,
        method="spot",
        task="rte",
        out=out,
        method_config={"num_tokens": "4", "source": str(out / source_record["artifact"])},
    )
    assert from_file.sources[0]["kind"] == "file" and from_file.run_id != target.run_id
    # Self-transfer is flagged when the target task is a source.
    assert transfer_record(dataclasses.replace(target, task="mrpc"))["self_transfer"] is True


def test_missing_source_is_planned_first_with_the_preset_settings(data_dir, tmp_path, capsys):
    request = RunRequest(
        suite="glue",
        tasks=["rte"],
        methods=["spot"],
        seeds=[42, 43],
        preset="quick",
        data_dir=str(data_dir),
        out=str(tmp_path),
        max_steps=5,
    )
    sources, specs = plan_with_sources(request)
    assert [(s.method, s.task, s.seed) for s in sources] == [("pt", "sst2", 42), ("pt", "sst2", 43)]
    assert sources[0].train["max_steps"] == 200 and sources[0].method_config["num_tokens"] == 20  # preset's
    assert [s.sources[0]["run_id"] for s in specs] == [s.run_id for s in sources]
    # MNLI (the paper's source) is not in the local data: one line naming the task and what to do.
    assert main(["run", "--tasks", "rte", "--methods", "spot", "--preset", "quick", "--seeds", "42",
                 "--data-dir", str(data_dir), "--out", str(tmp_path), "--set", "spot.source=mnli"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "'mnli'" in err and "MNLI" in err and "pick another source" in err and len(err.splitlines()) == 1
    assert main(["run", "--tasks", "rte", "--methods", "spot", "--preset", "quick",
                 "--out", str(tmp_path), "--set", "spot.source=random"]) == 2  # fmt: skip
    assert "spot.source is required" in capsys.readouterr().err


def _rec(seed, run_id, finished):
    return {"spec": {"seed": seed}, "run_id": run_id, "finished_at": finished}


@pytest.mark.parametrize(
    "seeds, target, expected",
    [((42, 43, 7), 43, 43), ((42, 43, 7), 44, 42), ((9, 7), 44, 7)],
)
def test_source_seed_rule(seeds, target, expected):
    records = [_rec(s, f"{s:016d}", "2026-01-01") for s in seeds]
    assert _pick(records, target, None)["spec"]["seed"] == expected


def test_source_tie_break_prefers_the_planned_run_then_the_latest():
    records = [_rec(42, "b", "2026-01-02"), _rec(42, "a", "2026-01-02"), _rec(42, "c", "2026-01-01")]
    assert _pick(records, 42, "c")["run_id"] == "c"
    assert _pick(records, 42, None)["run_id"] == "a"
