"""LPT's trainable-parameter counts match docs/methods/lpt.md#trainable-parameters (T5-Base, and RoBERTa-large via custom dims)."""

from __future__ import annotations

import pytest
import torch

from bench.backbones.load import meta_backbone
from methods.base import BackboneDims
from methods.registry import build_config, get_method_class


def _method(dims, **overrides):
    with torch.device("meta"):
        return get_method_class("lpt")(build_config("lpt", overrides), dims)


@pytest.fixture(scope="module")
def t5_base_dims():
    return meta_backbone("t5-base", 256).dims


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, 593_792),  # NPG, l=5, b=128
        ({"num_tokens": 10}, 1_089_152),  # NPG, l=10
        ({"generator": "mppg"}, 197_504),  # PPG: independent of l
        ({"generator": "appg", "num_tokens": 10}, 197_504),
    ],
)
def test_counts_on_t5_base(t5_base_dims, overrides, expected):
    counts = _method(t5_base_dims, **overrides).counts()
    assert counts.trainable_params == expected == counts.saved_params
    assert sum(counts.breakdown.values()) == expected


def test_npg_count_on_roberta_large():
    dims = BackboneDims("encoder", 1024, 24, 512, 50265, 514)
    assert _method(dims).counts().trainable_params == 791_680
    assert _method(dims, generator="mppg").counts().trainable_params == 263_296


def test_insert_layer_resolves_to_mid_depth(t5_base_dims):
    assert _method(t5_base_dims).insert_layer == 6  # 6 of 12 encoder blocks
    minilm = BackboneDims("encoder", 384, 6, 128, 30522, 512)
    assert _method(minilm).insert_layer == 3
    assert _method(minilm, insert_layer=5).record()["insert_layer"] == 5


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"insert_layer": 12}, "insert_layer=12 must be between 1 and 11"),
        ({"insert_layer": 0}, "insert_layer=0"),
        ({"generator": "xpg"}, "generator='xpg'"),
        ({"pool": "max"}, "pool='max'"),
        ({"num_tokens": 0}, "num_tokens=0"),
    ],
)
def test_bad_config_is_one_line_error(t5_base_dims, overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        _method(t5_base_dims, **overrides)
