"""ATTEMPT and MPT trainable/transfer counts on T5-Base dimensions (docs/methods/attempt.md#trainable-parameters, docs/methods/mpt.md#trainable-parameters)."""

from __future__ import annotations

import pytest
import torch

from methods.registry import build_config, get_method_class


def counts(backbone, name, num_sources=0, **overrides):
    with torch.device("meta"):
        method = get_method_class(name)(build_config(name, overrides), backbone.dims)
        if num_sources:
            length = method.config.num_tokens
            method.load_sources([torch.zeros(length, 768) for _ in range(num_sources)])
    return method.counts()


def test_attempt_t5_base_with_six_sources(t5_base):
    c = counts(t5_base, "attempt", num_sources=6, sources="mnli,qnli,qqp,sst2,squad,record")
    assert c.trainable_params == 231_936  # l·d + 2·d·b_a + 2d = 76,800 + 153,600 + 1,536
    assert c.transfer_params == 6 * 76_800
    assert c.breakdown == {"target_prompt": 76_800, "attention": 2 * 768 * 100 + 2 * 768}


def test_attempt_random_sources_are_not_transfer_params(t5_base):
    c = counts(t5_base, "attempt", sources="random")
    assert c.trainable_params == 231_936 and c.transfer_params == 0


def test_mpt_t5_base(t5_base):
    c = counts(t5_base, "mpt", num_sources=4)
    assert c.trainable_params == 77_668  # l·d + l + d
    assert c.transfer_params == 4 * 76_800
    assert counts(t5_base, "mpt", sources="none").transfer_params == 0


@pytest.mark.parametrize("rank", [2, 4])
def test_mpt_rank_generalisation(t5_base, rank):
    assert counts(t5_base, "mpt", rank=rank).trainable_params == 76_800 + rank * (100 + 768)


def test_attempt_code_parity_frozen_layer_norm(t5_base):
    """The official freezing code trains only W_down, W_up and the target prompt: 230,400."""
    assert counts(t5_base, "attempt", train_layer_norm=False).trainable_params == 230_400


def test_attempt_attention_learning_rate(t5_base):
    with torch.device("meta"):
        config = build_config("attempt", {"lr_attention": "0.01"})
        method = get_method_class("attempt")(config, t5_base.dims)
    rates = {g.name: g.lr for g in method.param_groups()}
    assert rates == {"prompt": 0.3, "attention": 0.01}
