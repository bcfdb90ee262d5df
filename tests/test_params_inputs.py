"""Trainable/saved parameter counts of Residual PT, DPT and XPrompt on T5 dimensions (docs/methods/index.md#overview, docs/methods/residual_pt.md#trainable-parameters,
docs/methods/xprompt.md#trainable-parameters, docs/methods/dpt.md#trainable-parameters)."""

from __future__ import annotations

import pytest

from bench.backbones.load import meta_backbone
from tests.test_params import count


@pytest.mark.parametrize(
    "name, overrides, trainable, saved",
    [
        ("residual_pt", {}, 693_904, 76_800),  # l=100, b=400: 76,800 + 614,400 + 400 + 768 + 1,536
        ("residual_pt", {"bottleneck": 800}, 1_308_704, 76_800),  # repository default b
        ("dpt", {}, 8_680, 8_680),  # l=100, b=10: 1,000 + 7,680
        ("xprompt", {}, 76_800, 76_800),  # stage 1 is PT with l=100
    ],
)
def test_counts_on_t5_base(t5_base, name, overrides, trainable, saved):
    counts = count(t5_base, name, **overrides)
    assert (counts.trainable_params, counts.saved_params) == (trainable, saved)


def test_residual_pt_separate_mlps_multiply_the_mlp_by_l(t5_base):
    shared = count(t5_base, "residual_pt", num_tokens=10)
    separate = count(t5_base, "residual_pt", num_tokens=10, separate_mlps=True)
    assert (
        separate.breakdown["mlp"] == 10 * shared.breakdown["mlp"] == 10 * (2 * 768 * 400 + 400 + 768 + 1_536)
    )
    assert separate.saved_params == shared.saved_params == 7_680


def test_residual_pt_without_layer_norm(t5_base):
    assert count(t5_base, "residual_pt", layer_norm=False).trainable_params == 693_904 - 1_536


def test_t5_large_counts_match_the_dpt_abstract():
    """DPT's abstract: 11.2K (DPT) against Residual PT's 925K on T5-Large (d=1024)."""
    large = meta_backbone("t5-large", 256)
    assert count(large, "dpt").trainable_params == 11_240
    assert count(large, "residual_pt").trainable_params == 925_072


def test_bad_xprompt_pieces_are_rejected(t5_base):
    with pytest.raises(ValueError, match="num_pieces=7 must divide the hidden size 768"):
        count(t5_base, "xprompt", num_pieces=7)
