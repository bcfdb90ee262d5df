"""A mixture's router load survives a checkpoint: the counts of rows per expert
(``methods.routing.RouterLoad``, outside ``state_dict``) travel in the training checkpoint's ``method_state``,
so a run interrupted mid-training and resumed reports the rows of every attempt, the uninterrupted run's
``method_record.router_load``.

Interrupted two ways: as tests/test_reliability_faults.py does (a fault raised at step 5 with a checkpoint
every 2 steps, the step-4 state kept, then the same run again in process, ``bench.worker.run_spec``), for each
mixture; and as a cluster does (SIGUSR1 to the worker process after its first checkpoint,
tests/test_interruptions.py), for one.
"""

from __future__ import annotations

import pytest
import torch

from bench.grid.runner import run_one
from bench.training.checkpoint import Checkpointer, checkpoint_path
from bench.worker import run_spec
from methods.base import BackboneDims
from methods.mept import MEPT, MEPTConfig
from methods.routing import RouterLoad
from tests.test_interruptions import interrupt_after_checkpoint
from tests.test_slurm_cluster import TIMING

STEPS, BATCH = 8, 4
RUN = {"seed": 7, "steps": STEPS, "train": {"max_length": "24", "eval_every": "2", "batch_size": str(BATCH)}}
MIXTURES = {  # two experts, two virtual tokens each: small enough for tiny BERT, routed by a trained router
    "smop": {"num_tokens": 2, "num_experts": 2},
    "mept": {"num_tokens": 2, "num_experts": 2, "layers": "0,1"},
    "ptmoe": {"num_tokens": 2, "num_experts": 2, "rank": 2},
}


@pytest.mark.slow(minutes=1)
@pytest.mark.parametrize("method", sorted(MIXTURES))
def test_a_resumed_mixture_run_reports_the_uninterrupted_router_load(
    method, tiny_bert_dir, make_spec, tmp_path, monkeypatch
):
    spec = make_spec(tiny_bert_dir, method=method, method_config=MIXTURES[method], **RUN)
    clean = run_spec(spec)
    assert clean["status"] == "ok", clean["error"]
    load = clean["method_record"]["router_load"]
    assert load["rows"] == STEPS * BATCH and sum(load["share"]) == pytest.approx(1.0)

    path = checkpoint_path(tmp_path, spec.run_id)
    monkeypatch.setenv("PTBENCH_FAULT", "raise@5")
    crashed = run_spec(spec, checkpoint=Checkpointer(path, 2, spec.run_id))
    assert crashed["status"] == "failed" and path.exists()
    saved = Checkpointer(path, 2, spec.run_id).load()
    assert saved["result"]["steps"] == 4
    assert {state["rows"] for state in saved["method_state"].values()} == {4 * BATCH}  # every counter's

    monkeypatch.delenv("PTBENCH_FAULT")
    resumed = run_spec(spec, checkpoint=Checkpointer(path, 2, spec.run_id))
    assert resumed["status"] == "ok", resumed["error"]
    assert resumed["method_record"]["router_load"] == load  # rows and shares of all 8 steps
    assert resumed["method_record"] == clean["method_record"]  # MEPT: router_load_per_layer too
    same = set(clean) - TIMING
    assert {k: resumed[k] for k in same} == {k: clean[k] for k in same}


@pytest.mark.slow(minutes=1)
def test_a_mixture_stopped_by_the_cluster_resumes_to_the_same_router_load(
    tiny_bert_dir, make_spec, tmp_path, monkeypatch
):
    train = {"max_length": "24", "eval_every": "4", "batch_size": str(BATCH)}
    spec = make_spec(
        tiny_bert_dir, method="ptmoe", method_config=MIXTURES["ptmoe"], seed=3, steps=16, train=train
    )
    expected = run_one(spec, tmp_path / "reference", checkpoint_every=4)
    assert expected["status"] == "ok", expected["error"]
    out = tmp_path / "out"
    assert interrupt_after_checkpoint(spec, out, 4, monkeypatch)["status"] == "cancelled"
    record = run_one(spec, out, checkpoint_every=4)
    assert record["status"] == "ok", record["error"]
    assert record["interruptions"]["count"] == 1
    assert record["method_record"]["router_load"]["rows"] == 16 * BATCH
    same = set(record) - TIMING
    assert {k: record[k] for k in same} == {k: expected[k] for k in same}


def test_router_load_counts_travel_outside_the_state_dict():
    load = RouterLoad(3)
    load.add(torch.tensor([0, 2, 2]))
    state = load.counter_state()
    load.add(torch.tensor([1]))  # the saved state is a copy
    assert state["rows"] == 3 and state["counts"].tolist() == [1, 0, 2]
    again = RouterLoad(3)
    again.load_counter_state(state)
    assert again.summary() == {"experts": 3, "rows": 3, "share": [0.333333, 0.0, 0.666667]}
    assert dict(again.state_dict()) == {}  # artifacts and parameter counts still ignore it
    with pytest.raises(ValueError, match="router load counts for 2 experts"):
        RouterLoad(2).load_counter_state(state)


def test_a_method_gathers_its_counters_by_module_name():
    """MEPT's one counter per listed layer, keyed ``loads.<i>``: given back, the record is the same."""
    dims = BackboneDims("encoder", 8, 2, 16, 100, 512)
    method = MEPT(MEPTConfig(num_tokens=2, num_experts=3), dims)
    assert sorted(method.checkpoint_state()) == ["loads.0", "loads.1"]
    method.loads[1].add(torch.tensor([2, 2]))
    fresh = MEPT(MEPTConfig(num_tokens=2, num_experts=3), dims)
    fresh.load_checkpoint_state(method.checkpoint_state())
    assert fresh.record() == method.record()
    assert set(fresh.state_dict()) == set(method.state_dict()) and "loads.0.counts" not in fresh.state_dict()
    with pytest.raises(ValueError, match=r"counter states for \['loads.0'\]"):
        fresh.load_checkpoint_state({"loads.0": method.loads[0].counter_state()})


def test_a_checkpoint_without_the_methods_counters_is_refused_cleanly(tmp_path, capsys):
    """A file written before checkpoints kept ``method_state`` still resumes a method without counters; for a
    mixture it is ignored with one warning (its record would count only the rows after the resume)."""
    path = checkpoint_path(tmp_path, "RUN")
    checkpointer = Checkpointer(path, 2, "RUN")
    keys = ("trainable", "optimizer", "scheduler", "order", "torch_rng", "permutation")
    checkpointer.save({**{key: {} for key in keys}, "result": {"steps": 4}})  # no method_state: an older file
    assert checkpointer.load({})["method_state"] == {}
    assert capsys.readouterr().err == ""
    assert checkpointer.load({"load": RouterLoad(2).counter_state()}) is None
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"ptbench: warning: ignoring checkpoint {path}: it holds training counters (none), the run's method "
        "keeps 'load'; starting the run from step 0"
    )
