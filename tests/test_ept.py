"""EPT (placeholder-v0, an assumption of this harness) behaves as documented: it starts exactly as DePT,
turning both modules off recovers DePT, every config alternative builds and runs, and the record names the
variant and the gate weights."""

from __future__ import annotations

import pytest
import torch

from methods.base import BackboneDims
from methods.registry import build_config, get_method_class

DIMS = BackboneDims("seq2seq", 32, 2, 16, 100)


class FakeEmbeddings:
    def embed_text(self, text: str, length: int, special_tokens: bool = False) -> torch.Tensor:
        return torch.arange(length * 32, dtype=torch.float).view(length, 32) / 100

    def embed_random_vocab(self, length: int, generator: torch.Generator, max_id=None) -> torch.Tensor:
        return torch.randn(length, 32, generator=generator)


def build(name: str, **overrides):
    method = get_method_class(name)(build_config(name, {"num_tokens": 6, "rank": 4, **overrides}), DIMS)
    method.initialize(FakeEmbeddings(), torch.Generator().manual_seed(0))
    return method


def forward(method, embeds, mask):
    return method.prompt(embeds, mask), method.update_embeds(embeds)


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(3, 16, 32, generator=g), torch.ones(3, 16, dtype=torch.long)


def test_ept_starts_as_dept(inputs):
    dept, ept = build("dept"), build("ept")
    for a, b in zip(forward(dept, *inputs), forward(ept, *inputs), strict=True):
        torch.testing.assert_close(a, b)


def test_ept_with_both_modules_off_is_dept_after_training(inputs):
    """Same init, same updates: with fusion and projection off EPT computes DePT exactly."""
    dept, ept = build("dept"), build("ept", **{"fusion.kv_source": "none", "proj.num_spaces": 0})
    assert ept.fusion is None and ept.projection is None
    for method in (dept, ept):
        opt = torch.optim.AdamW([p for g in method.param_groups() for p in g.params], lr=0.1)
        for _ in range(3):
            prompt, embeds = forward(method, *inputs)
            (prompt.sum() + embeds.pow(2).mean()).backward()
            opt.step()
            opt.zero_grad()
    for a, b in zip(forward(dept, *inputs), forward(ept, *inputs), strict=True):
        torch.testing.assert_close(a, b)


def test_ept_modules_matter_once_trained(inputs):
    """After B and D_i leave zero, fusion and projection change the prompt (the modules are live)."""
    ept = build("ept")
    with torch.no_grad():
        ept.decomposition.lora_b.normal_()
        ept.projection.up.normal_()
    short = ept.decomposition.short_prompt
    assert not torch.allclose(ept.prompt(*inputs), short)


ALTERNATIVES = [
    {"fusion.kv_source": "AB"},
    {"fusion.heads": 2, "fusion.attn_dim": 8},
    {"fusion.value_proj": "linear"},
    {"fusion.residual": "false"},
    {"fusion.scale_init": "0.0"},
    {"proj.kind": "full"},
    {"proj.kind": "orthogonal"},
    {"proj.input": "short"},
    {"gate.input": "input_mean"},
    {"gate.input": "per_token"},
    {"gate.activation": "sigmoid", "gate.temperature": "2.0"},
    {"reconstruct": "short+proj"},
    {"reconstruct": "proj"},
    {"reconstruct": "short+fused+proj"},
    {"lowrank_scaling": "alpha/r"},
    {"init": "vocab"},
]


@pytest.mark.parametrize("overrides", ALTERNATIVES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_every_alternative_builds_and_backpropagates(inputs, overrides):
    ept = build("ept", **overrides)
    with torch.no_grad():
        ept.decomposition.lora_b.normal_()
    prompt, embeds = forward(ept, *inputs)
    batch_dim = overrides.get("gate.input") == "input_mean"
    assert prompt.shape == ((3, 6, 32) if batch_dim else (6, 32))
    (prompt.sum() + embeds.sum()).backward()
    assert ept.decomposition.short_prompt.grad is not None


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"fusion.kv_source": "AB2"}, "did you mean .AB."),
        ({"fusion.attn_dim": "30", "fusion.heads": "4"}, "divisible"),
        ({"proj.num_spaces": "-1"}, "proj.num_spaces=-1"),
        ({"gate.temperature": "0"}, "gate.temperature=0"),
        ({"rank": "99"}, "rank=99"),
        ({"fusion.atn_dim": "8"}, "did you mean 'attn_dim'"),
    ],
)
def test_bad_config_is_a_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        build("ept", **overrides)


def test_record_names_variant_and_gate_weights():
    record = build("ept").record()
    assert record["ept_variant"] == "placeholder-v0"
    weights = record["gate_weights"]
    assert len(weights) == 4 and abs(sum(weights) - 1) < 1e-5
