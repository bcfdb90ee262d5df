"""Trainable-parameter counts of SMoP and MEPT on T5-Base dimensions and in the quick presets
(docs/methods/smop.md#trainable-parameters, docs/methods/mept.md#trainable-parameters; MEPT's T5-Base count
against the official selection: tests/test_mept.py)."""

from __future__ import annotations

import re

import pytest

from bench.cli import main
from tests.test_params import count, preset_counts


def test_smop_on_t5_base(t5_base):
    counts = count(t5_base, "smop")  # k=4 prompts of l=5: 4·5·768 + a 768→4 router without bias
    assert counts.trainable_params == counts.saved_params == 18_432
    assert counts.breakdown == {"prompts": 15_360, "router": 3_072}
    assert count(t5_base, "smop", num_experts=8, num_tokens=10).trainable_params == 8 * 10 * 768 + 8 * 768


def test_bench_params_cli(capsys):
    assert main(["params", "--model", "t5-base", "--methods", "all"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"│ smop\s+│\s+([\d,]+)", out).group(1) == "18,432"
    assert re.search(r"│ mept\s+│\s+([\d,]+)", out).group(1) == "497,664"


@pytest.mark.parametrize(
    "preset, model, expected",
    [
        ("quick", "minilm", {"pt": 7_680, "smop": 7_680, "mept": 7_680}),
        ("quick-decoder", "smollm2", {"pt": 5_760, "smop": 6_912, "mept": 5_760}),
    ],
)
def test_quick_presets_budgets(preset, model, expected):
    assert preset_counts(preset, model, expected) == expected


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_experts", "0", "num_experts=0 must be >= 1"),
        ("top_k", "5", "top_k=5 must be between 1 and num_experts=4"),
        ("noise_sigma", "-1", "noise_sigma=-1.0 must be >= 0"),
        ("router_dropout", "1", r"router_dropout=1.0 must be in \[0, 1\)"),
    ],
)
def test_bad_values_are_rejected(t5_base, field, value, message):
    with pytest.raises(ValueError, match=message):
        count(t5_base, "smop", **{field: value})
