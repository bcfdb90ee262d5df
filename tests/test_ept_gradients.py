"""Every tensor of every EPT alternative that is meant to learn gets a non-zero gradient, from the real init.

A test that only checks ``grad is not None`` passes for a tensor that never learns (an all-zero gradient), so
these check the gradient's norm. EPT starts as DePT (``B = 0``, ``D_i = 0``), so some tensors see zeros at the
very first step by design (methods/ept.py); after a few real AdamW steps from the real init every learnable
tensor must have a non-zero gradient. The proj-only reconstruction must give ``P_s`` a gradient at step one.
"""

from __future__ import annotations

import pytest
import torch

from tests.test_ept import ALTERNATIVES, build

ALL = [
    {},
    *ALTERNATIVES,
    {"reconstruct": "proj", "proj.kind": "full"},
    {"reconstruct": "proj", "proj.kind": "orthogonal"},
    {"reconstruct": "proj", "gate.input": "input_mean"},
    {"reconstruct": "short+proj", "proj.input": "short", "fusion.kv_source": "none"},
    {"fusion.value_proj": "linear", "fusion.scale_init": "1.0", "fusion.kv_source": "AB"},
]


def _ids(o: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in o.items()) or "default"


def _loss(method, embeds, mask, targets):
    """A loss that depends on every prompt row and every input position (fixed random directions)."""
    prompt = method.prompt(embeds, mask)  # [m, d] or [B, m, d]
    return (prompt * targets[0]).sum() + (method.update_embeds(embeds) * targets[1]).sum()


def _grads(method, inputs, targets, steps: int) -> dict[str, torch.Tensor]:
    params = dict(method.named_parameters())
    optimizer = torch.optim.AdamW([p for g in method.param_groups() for p in g.params], lr=0.05)
    for _ in range(steps):
        _loss(method, *inputs, targets).backward()
        optimizer.step()
        optimizer.zero_grad()
    _loss(method, *inputs, targets).backward()
    return {n: p.grad for n, p in params.items() if p.requires_grad}


@pytest.fixture
def inputs_and_targets():
    g = torch.Generator().manual_seed(1)
    embeds, mask = torch.randn(3, 16, 32, generator=g), torch.ones(3, 16, dtype=torch.long)
    mask[0, 10:] = 0
    return (embeds, mask), (torch.randn(6, 32, generator=g), torch.randn(3, 16, 32, generator=g))


@pytest.mark.parametrize("overrides", ALL, ids=_ids)
def test_every_learnable_tensor_gets_a_nonzero_gradient(inputs_and_targets, overrides):
    inputs, targets = inputs_and_targets
    ept = build("ept", **overrides)
    optimised = {id(p) for g in ept.param_groups() for p in g.params}
    named = dict(ept.named_parameters())
    assert {id(p) for p in named.values() if p.requires_grad} == optimised, (
        "a trainable tensor is not optimised"
    )
    grads = _grads(ept, inputs, targets, steps=3)
    dead = [n for n, g in grads.items() if g is None or float(g.abs().sum()) == 0.0]
    assert not dead, f"tensors with an all-zero gradient: {dead}"


@pytest.mark.parametrize("kind", ["bottleneck", "full", "orthogonal"])
def test_proj_only_reconstruction_trains_the_short_prompt_from_step_one(inputs_and_targets, kind):
    inputs, targets = inputs_and_targets
    ept = build("ept", reconstruct="proj", **{"proj.kind": kind})
    assert float(ept.prompt(*inputs).detach().abs().sum()) > 0, "the proj-only prompt starts as all zeros"
    grads = _grads(ept, inputs, targets, steps=0)
    assert float(grads["decomposition.short_prompt"].abs().sum()) > 0


def test_default_starts_as_dept_so_only_the_documented_tensors_learn_at_step_one(inputs_and_targets):
    """At the real init (B = 0, D_i = 0) exactly P_s, B and D_i have a gradient; this pins the docstring."""
    inputs, targets = inputs_and_targets
    grads = _grads(build("ept"), inputs, targets, steps=0)
    live = sorted(n for n, g in grads.items() if g is not None and float(g.abs().sum()) > 0)
    assert live == ["decomposition.lora_b", "decomposition.short_prompt", "projection.up"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"reconstruct": "proj", "proj.num_spaces": "0"}, "needs proj.num_spaces"),
        ({"reconstruct": "short+proj", "proj.input": "short"}, "fusion.kv_source='B' is unused"),
        ({"fusion.value_proj": "linear", "fusion.scale_init": "0"}, "would both stay at zero"),
    ],
)
def test_configs_that_leave_a_tensor_dead_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        build("ept", **overrides)
