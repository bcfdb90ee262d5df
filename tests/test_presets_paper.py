"""The paper preset's per-task settings reach the planned specs for all 13 tasks, through the real planner.

The expected table is written out here from DePT's released per-task settings (docs/protocol.md), not read
from ``bench/presets.py``, so a wrong or unplumbed entry in the preset fails this test.
"""

from __future__ import annotations

import pytest

from bench.planning.plan import RunRequest, plan

# task: (m, r, prompt lr, low-rank lr, max_steps, s)
EXPECTED = {
    "cola": (80, 15, 0.3, 5e-4, 40_000, 256),
    "mrpc": (60, 30, 0.3, 5e-3, 10_000, 256),
    "rte": (60, 30, 0.4, 1e-4, 30_000, 256),
    "stsb": (60, 30, 0.3, 1e-4, 30_000, 256),
    "sst2": (60, 30, 0.3, 5e-4, 30_000, 256),
    "qnli": (60, 30, 0.4, 5e-3, 100_000, 256),
    "qqp": (60, 30, 0.4, 5e-3, 100_000, 256),
    "mnli": (60, 30, 0.3, 1e-4, 250_000, 256),
    "boolq": (40, 45, 0.3, 5e-3, 30_000, 256),
    "cb": (60, 30, 0.4, 1e-4, 30_000, 256),
    "multirc": (60, 30, 0.3, 5e-3, 30_000, 348),
    "wic": (60, 30, 0.3, 1e-3, 20_000, 256),
    "wsc": (60, 30, 0.3, 1e-4, 20_000, 256),
}
SUITES = {
    "glue": ["cola", "mrpc", "rte", "stsb", "sst2", "qnli", "qqp", "mnli"],
    "superglue": ["boolq", "cb", "multirc", "wic", "wsc"],
}


@pytest.fixture(scope="module")
def planned() -> dict[tuple[str, str], object]:
    """Planned with the hub data source: planning reads no data (the local folder lacks some train files)."""
    specs = {}
    for suite, tasks in SUITES.items():
        request = RunRequest(
            suite=suite, tasks=tasks, methods=["dept", "ept", "pt"], seeds=[42], preset="paper"
        )
        for spec in plan(request):
            specs[(spec.method, spec.task)] = spec
    return specs


@pytest.mark.parametrize("task", list(EXPECTED))
def test_per_task_settings_reach_the_specs(planned, task):
    m, r, lr, lr_low, steps, s = EXPECTED[task]
    for method in ("dept", "ept"):
        spec = planned[(method, task)]
        c = spec.method_config
        assert (c["num_tokens"], c["rank"], c["lr"], c["lr_lowrank"]) == (m, r, lr, lr_low), (method, task)
        assert (spec.train["max_steps"], spec.train["max_length"]) == (steps, s), (method, task)
        assert spec.model == "t5-base" and spec.train["batch_size"] == 32
    pt = planned[("pt", task)]  # PT: the per-task steps and s, its own defaults otherwise
    assert (pt.train["max_steps"], pt.train["max_length"]) == (steps, s)
    assert pt.method_config["num_tokens"] == 100 and pt.method_config["lr"] == 0.3


def test_every_task_is_planned(planned):
    assert {t for _, t in planned} == set(EXPECTED)


@pytest.mark.parametrize("task", ["cb", "rte"])
def test_smop_paper_settings_reach_the_specs(task):
    """The official README's k=4 prompts of l=5 at lr 0.5 with Adafactor, under the shared per-task steps."""
    suite = "superglue" if task == "cb" else "glue"
    (spec,) = plan(RunRequest(suite=suite, tasks=[task], methods=["smop"], seeds=[42], preset="paper"))
    c = spec.method_config
    assert (c["num_tokens"], c["num_experts"], c["top_k"], c["lr"], c["optimizer"]) == (
        5,
        4,
        1,
        0.5,
        "adafactor",
    )
    assert c["perturb_router"] is True and c["batch_mix"] is False
    assert spec.train["max_steps"] == EXPECTED[task][4] and spec.model == "t5-base"


@pytest.mark.parametrize("suite, task", [("glue", "rte"), ("superglue", "cb")])
def test_ptmoe_paper_settings(suite, task):
    """PT-MoE's paper-preset entry (docs/methods/ptmoe.md#defaults): its own shape on every task, DePT's steps."""
    (spec,) = plan(RunRequest(suite=suite, tasks=[task], methods=["ptmoe"], seeds=[42], preset="paper"))
    c = spec.method_config
    assert (c["num_tokens"], c["num_experts"], c["rank"], c["top_k"], c["lr"]) == (100, 4, 10, 1, 0.3)
    assert spec.train["max_steps"] == EXPECTED[task][4] and spec.train["batch_size"] == 32
    assert spec.model == "t5-base"


def test_accept_paper_settings():
    """ACCEPT's paper-preset entry (docs/methods/accept.md#defaults): the official T5-Base SCPP and SCAP shapes."""
    (spec,) = plan(RunRequest(suite="glue", tasks=["qnli"], methods=["accept"], seeds=[42], preset="paper"))
    c = spec.method_config
    assert (c["num_tokens"], c["sub_dim"], c["codewords"]) == (60, 32, 20)  # examples/run_qnli_pq_prompt.sh
    assert (c["added_sub_dim"], c["added_codewords"], c["lr"], c["lr_added"]) == (256, 20, 0.3, 1e-3)
    assert spec.train["max_steps"] == EXPECTED["qnli"][4] and spec.model == "t5-base"


@pytest.mark.parametrize("task", ["cb", "rte"])
def test_mept_paper_settings_reach_the_specs(task):
    """The official script's l=10, k=4 (40 tokens) at every encoder block, Adafactor with decay 1e-2, lr 0.5."""
    suite = "superglue" if task == "cb" else "glue"
    (spec,) = plan(RunRequest(suite=suite, tasks=[task], methods=["mept"], seeds=[42], preset="paper"))
    c = spec.method_config
    assert (c["num_tokens"], c["num_experts"], c["layers"], c["top_k"], c["lr"], c["optimizer"]) == (
        10,
        4,
        "all",
        1,
        0.5,
        "adafactor",
    )
    assert c["weight_decay"] == 0.01 and c["router_mean"] is None and c["batch_mix"] is False
    assert c["perturb_router"] is True
    assert spec.train["max_steps"] == EXPECTED[task][4] and spec.model == "t5-base"


@pytest.mark.parametrize("suite, task", [("superglue", "cb"), ("glue", "mnli")])
def test_lamp_paper_settings(suite, task):
    """LAMP under the paper preset (docs/methods/lamp.md#defaults): no entry of its own (arXiv 2502.12200's settings
    could not be read), so the placeholder-v0 shape and rates on every task, DePT's steps and batch, T5-Base."""
    (spec,) = plan(RunRequest(suite=suite, tasks=[task], methods=["lamp"], seeds=[42], preset="paper"))
    c = spec.method_config
    assert (c["num_tokens"], c["rank"], c["pool"], c["lr"], c["lr_values"]) == (100, 8, 2, 3e-3, 0.3)
    assert (c["interaction"], c["lamp_variant"]) == ("cosine", "placeholder-v0")
    assert spec.train["max_steps"] == EXPECTED[task][4] and spec.train["batch_size"] == 32
    assert spec.model == "t5-base"
