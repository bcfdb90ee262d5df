"""The quick recipe's levers as recorded spec fields: ``train.dropout`` (the backbone's dropout) and
``train.schedule`` (linear decay or a constant rate after warm-up)."""

from __future__ import annotations

import pytest
import torch

from bench.backbones.load import load_backbone
from bench.errors import InputError
from bench.spec import RunSpec, TrainConfig
from bench.training.optim import build_scheduler


def _spec(**train) -> RunSpec:
    return RunSpec("glue", "sst2", "pt", {}, "minilm", "quick", 42, train)


def test_dropout_and_schedule_are_part_of_the_run_id():
    base = _spec().run_id
    assert _spec(dropout=0.0).run_id != base
    assert _spec(schedule="constant").run_id != base
    assert _spec(dropout=0.0).run_id != _spec(dropout=0.1).run_id


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [("dropout", 1.5, "in [0, 1)"), ("dropout", -0.1, "in [0, 1)"), ("schedule", "cosine", "'constant'")],
)
def test_bad_values_name_the_value_and_what_is_allowed(field, value, allowed):
    with pytest.raises(InputError) as err:
        TrainConfig(**{field: value}).validate()
    assert f"train.{field}={value!r}" in str(err.value) and allowed in str(err.value)


def test_dropout_zero_reaches_every_dropout_module(tiny_bert_dir):
    backbone = load_backbone(str(tiny_bert_dir), ["0", "1"], 32, dropout=0.0)
    rates = [m.p for m in backbone.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates and all(p == 0.0 for p in rates)
    assert backbone.dropout["hidden_dropout_prob"] == 0.0
    assert backbone.dropout["attention_probs_dropout_prob"] == 0.0


def test_dropout_none_keeps_the_checkpoints_values(tiny_bert_dir):
    from transformers import AutoConfig

    saved = AutoConfig.from_pretrained(tiny_bert_dir)
    backbone = load_backbone(str(tiny_bert_dir), ["0", "1"], 32)
    assert backbone.dropout["hidden_dropout_prob"] == saved.hidden_dropout_prob
    rates = {m.p for m in backbone.model.modules() if isinstance(m, torch.nn.Dropout)}
    assert saved.hidden_dropout_prob in rates


def _rates(schedule: str) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    scheduler = build_scheduler(optimizer, TrainConfig(warmup_steps=4, schedule=schedule), max_steps=10)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_constant_schedule_keeps_the_peak_after_warmup_and_linear_decays():
    constant, linear = _rates("constant"), _rates("linear")
    assert constant[:4] == linear[:4] == [0.0, 0.25, 0.5, 0.75]
    assert constant[4:] == [1.0] * 6
    assert (
        linear[4] == 1.0
        and linear[-1] < 0.2
        and linear == sorted(linear[:5]) + sorted(linear[5:], reverse=True)
    )


def test_head_weight_decay_is_hashed_only_when_set():
    """Added after records existed: at its default 0 the run id is the one the spec had without the field."""
    base = _spec().run_id
    with_default = dict(vars(TrainConfig()))
    without = {k: v for k, v in with_default.items() if k != "head_weight_decay"}
    assert _spec(**with_default).run_id == _spec(**without).run_id
    assert _spec(head_weight_decay=0.01).run_id not in (base, _spec(**with_default).run_id)
    assert _spec(**without).train_config().head_weight_decay == 0.0  # an old record's spec loads


def test_the_shipped_records_keep_their_run_ids():
    """Every committed record (the results page's and the diagnostics') is found again by the spec it holds (a new
    field must not move it)."""
    import json

    from tests.conftest import REPO

    # The folders .gitignore lets in.
    committed = ("cpu-minilm", "cpu-smollm2", "quick-2026-12-02", "cb-lora-diagnostics", "peft-recipe-twin")
    paths = sorted(p for folder in committed for p in (REPO / "results" / folder).rglob("*.json"))
    assert paths
    for path in paths:
        record = json.loads(path.read_text())
        assert RunSpec.from_dict(record["spec"]).run_id == record["run_id"], path.name


def test_head_weight_decay_reaches_the_heads_group(tiny_bert_dir):
    from bench.run.assemble import attach_method
    from bench.training.optim import build_optimizer
    from methods.registry import build_config

    backbone = load_backbone(str(tiny_bert_dir), ["0", "1"], 32)
    method = attach_method(backbone, "pt", build_config("pt", {"num_tokens": "2"}), seed=0)
    for decay in (0.0, 0.01):
        optimizer = build_optimizer(method, backbone, TrainConfig(head_weight_decay=decay))
        (head,) = [g for g in optimizer.param_groups if g["name"] == "head"]
        assert head["weight_decay"] == decay
    with pytest.raises(InputError, match=r"train.head_weight_decay=-1.0 must be >= 0"):
        TrainConfig(head_weight_decay=-1.0).validate()
