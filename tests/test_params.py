"""Trainable-parameter counts on T5-Base dimensions match the papers (docs/methods/index.md#overview, docs/methods/ept.md#method)."""

from __future__ import annotations

import re

import pytest
import torch

from bench.backbones.load import meta_backbone
from bench.cli import main
from methods.registry import build_config, get_method_class

# docs/methods/index.md#t5-base-dimensions (input embedding tied with the LM head)
T5_BASE_TOTAL = 222_903_552


def count(backbone, name, **overrides):
    with torch.device("meta"):
        method = get_method_class(name)(build_config(name, overrides), backbone.dims)
    return method.counts()


def preset_counts(preset: str, model: str, names) -> dict[str, int]:
    """Each of ``names``' trainable count on ``model`` with ``preset``'s settings for RTE (its per-method
    overrides applied): what a quick preset's budget-matching is checked with."""
    from bench.presets import get_preset, method_overrides

    settings = get_preset(preset)
    backbone = meta_backbone(model, settings.train["max_length"])
    return {
        name: count(backbone, name, **method_overrides(settings, "rte", name)).trainable_params
        for name in names
    }


def test_t5_base_total_from_config(t5_base):
    assert t5_base.total_params() == T5_BASE_TOTAL


@pytest.mark.parametrize(
    "name, overrides, expected",
    [
        ("pt", {}, 76_800),  # l=100
        ("dept", {}, 76_800),  # m=60, r=30, s=256
        ("dept", {"num_tokens": 80, "rank": 15}, 76_800),  # CoLA
        ("dept", {"num_tokens": 40, "rank": 45}, 76_800),  # BoolQ
        ("ept", {}, 178_180),  # placeholder-v0: 76,800 + 101,380
    ],
)
def test_counts_on_t5_base(t5_base, name, overrides, expected):
    assert count(t5_base, name, **overrides).trainable_params == expected


def test_dept_multirc_length():
    assert count(meta_backbone("t5-base", 348), "dept").trainable_params == 79_560


def test_ept_extra_params_and_breakdown(t5_base):
    counts = count(t5_base, "ept")
    assert counts.extra_params == 101_380
    assert counts.breakdown == {
        "short_prompt": 46_080,
        "lowrank": 30_720,
        "fusion": 2 * 768 * 32,
        "projection": 4 * 2 * 768 * 8,
        "gate": 4 * 768 + 4,
    }


def test_ept_budget_variant_from_methods_md(t5_base):
    """The parameter-matched example of docs/methods/ept.md#method: d_a=8, k=2, N=4, m=40, r=17 -> 75,780 total."""
    counts = count(t5_base, "ept", **{"fusion.attn_dim": 8, "proj.rank": 2, "num_tokens": 40, "rank": 17})
    assert counts.extra_params == 27_652
    assert counts.trainable_params == 75_780


def test_ept_with_modules_off_counts_as_dept(t5_base):
    counts = count(t5_base, "ept", **{"fusion.kv_source": "none", "proj.num_spaces": 0})
    assert counts.trainable_params == 76_800 and counts.extra_params == 0


def test_bench_params_cli(capsys):
    assert main(["params", "--model", "t5-base", "--methods", "pt,dept,ept"]) == 0
    out = capsys.readouterr().out
    rows = {m: re.search(rf"│ {m}\s+│\s+([\d,]+)", out).group(1) for m in ("pt", "dept", "ept")}
    assert rows == {"pt": "76,800", "dept": "76,800", "ept": "178,180"}
    assert "222,903,552" in out
