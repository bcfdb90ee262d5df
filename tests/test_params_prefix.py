"""Prefix tuning's parameter counts on T5-Base dimensions (meta device, no weights): PEFT's PrefixEncoder sizes
for the 24 self-attention modules (12 encoder + 12 decoder), and ``bench params``."""

from __future__ import annotations

import pytest

from bench.cli import main
from tests.test_params_wrap import T5_BASE_TOTAL, attach_meta

K = 768  # H·d_h = 12·64 on T5-Base
M = 24  # encoder + decoder self-attention; cross-attention adds 12
L = 20  # default prefix length
H = 512  # default MLP hidden size


@pytest.mark.parametrize(
    "overrides, modules, trainable",
    [
        ({}, M, L * K + K * H + H + H * M * 2 * K + M * 2 * K),  # 19,320,320 with the MLP
        ({"projection": "false"}, M, L * M * 2 * K),  # 737,280: the prefixes themselves
        ({"projection": "false", "cross_attention": "true"}, 36, L * 36 * 2 * K),
        ({"num_tokens": "10", "hidden_size": "768"}, M, 10 * K + K * 768 + 768 + 768 * M * 2 * K + M * 2 * K),
    ],
)
def test_counts_on_t5_base(overrides, modules, trainable):
    backbone, method = attach_meta("prefix", **overrides)
    counts = method.counts()
    assert method.num_modules == modules
    assert counts.trainable_params == trainable
    assert counts.saved_params == method.config.num_tokens * modules * 2 * K  # computed prefixes only
    assert backbone.total_params() == T5_BASE_TOTAL + trainable


def test_default_counts_are_the_documented_numbers():
    counts = attach_meta("prefix")[1].counts()
    assert (counts.trainable_params, counts.saved_params) == (19_320_320, 737_280)


def test_bench_params_cli(capsys):
    assert main(["params", "--model", "t5-base", "--methods", "prefix"]) == 0
    assert "19,320,320" in capsys.readouterr().out
