"""Trainable-parameter counts of ADePT and ULPT on T5-Base dimensions and in the quick presets
(docs/methods/adept.md#trainable-parameters, docs/methods/ulpt.md#trainable-parameters)."""

from __future__ import annotations

import re

import pytest

from bench.backbones.load import meta_backbone
from bench.cli import main
from tests.test_params import count, preset_counts


def test_adept_on_t5_base(t5_base):
    counts = count(t5_base, "adept")  # m=60, r=19: 46,080 + 2·768·19 + 19 + 768
    assert counts.trainable_params == counts.saved_params == 76_051
    assert counts.breakdown == {"short_prompt": 46_080, "ffn": 29_971}


def test_adept_count_does_not_depend_on_s():
    """No row per position: MultiRC's s=348 costs nothing extra (DePT's A grows to 79,560)."""
    assert count(meta_backbone("t5-base", 348), "adept").trainable_params == 76_051


def test_ulpt_on_t5_base(t5_base):
    counts = count(t5_base, "ulpt")  # n=100, r=2: 200 + 2·768; the frozen projection is not counted
    assert counts.trainable_params == counts.saved_params == 1_736
    assert count(t5_base, "ulpt", rank=64).trainable_params == 100 * 64 + 2 * 768


def test_bench_params_cli(capsys):
    assert main(["params", "--model", "t5-base", "--methods", "adept,ulpt"]) == 0
    out = capsys.readouterr().out
    rows = {m: re.search(rf"│ {m}\s+│\s+([\d,]+)", out).group(1) for m in ("adept", "ulpt")}
    assert rows == {"adept": "76,051", "ulpt": "1,736"}


@pytest.mark.parametrize(
    "preset, model, expected",
    [
        ("quick", "minilm", {"pt": 7_680, "adept": 7_299, "ulpt": 808}),
        ("quick-decoder", "smollm2", {"pt": 5_760, "adept": 6_338, "ulpt": 1_172}),
    ],
)
def test_quick_presets_budgets(preset, model, expected):
    assert preset_counts(preset, model, expected) == expected


@pytest.mark.parametrize(
    "name, field, value, message",
    [
        ("adept", "rank", "0", "rank=0 must be between 1 and the hidden size 768"),
        ("adept", "ffn_dropout", "1.0", r"ffn_dropout=1.0 must be in \[0, 1\)"),
        ("ulpt", "rank", "769", "rank=769 must be between 1 and the hidden size 768"),
        ("ulpt", "projection_seed", "-1", r"projection_seed=-1 must be in \[0, 2\*\*63\) or none"),
    ],
)
def test_bad_values_are_rejected(t5_base, name, field, value, message):
    with pytest.raises(ValueError, match=message):
        count(t5_base, name, **{field: value})
