"""SPoT's counts on T5-Base dimensions (docs/methods/spot.md#trainable-parameters) and its refusal of missing or wrong sources."""

from __future__ import annotations

import pytest
import torch

from methods.registry import build_config, get_method_class


def test_spot_counts_on_t5_base(t5_base):
    with torch.device("meta"):
        method = get_method_class("spot")(build_config("spot"), t5_base.dims)
    counts = method.counts()
    assert counts.trainable_params == 76_800  # l·d, l=100, d=768
    assert counts.transfer_params == 76_800  # one source prompt
    assert build_config("spot").source == "mnli" and build_config("spot").lr == 0.3  # the paper's defaults


def test_spot_needs_exactly_one_source_of_the_right_length(t5_base):
    cls = get_method_class("spot")
    with pytest.raises(ValueError, match="spot.source is required"):
        cls.check_sources([])
    with pytest.raises(ValueError, match="at most 1 source"):
        cls.check_sources(["sst2", "mrpc"])
    method = cls(build_config("spot", {"num_tokens": "4"}), t5_base.dims)
    with pytest.raises(ValueError, match=r"spot.num_tokens=4 .* need \(4, 768\)"):
        method.load_sources([torch.zeros(5, 768)])
    with pytest.raises(ValueError, match="spot.source is required"):
        method.load_sources([])
