"""ATTEMPT and MPT behaviour on tiny backbones: instance-dependent mixtures, frozen sources, MPT's init."""

from __future__ import annotations

import pytest
import torch

from bench.backbones.load import load_backbone
from bench.spec import TrainConfig
from bench.training.optim import build_optimizer
from methods.registry import build_config, get_method_class
from tests.test_methods_train import EXAMPLES, synthetic_source_prompts

MAX_LENGTH = 16
LENGTH = 4


def build(model_dir, name, num_sources=2, load=True, **overrides):
    torch.manual_seed(0)
    backbone = load_backbone(str(model_dir), ["0", "1"], MAX_LENGTH)
    config = build_config(name, {"num_tokens": LENGTH, "lr": "0.05", **overrides})
    method = get_method_class(name)(config, backbone.dims)
    sources = synthetic_source_prompts(backbone, num=num_sources, length=LENGTH) if num_sources else []
    if load:
        method.load_sources(sources)
    method.initialize(backbone, torch.Generator().manual_seed(0))
    backbone.attach(method)
    return backbone, method, sources


def batch_of(backbone):
    return backbone.encode(EXAMPLES[:4], ["0", "1"]).batch(slice(None))


# ---- ATTEMPT ------------------------------------------------------------------------------------------


def test_attempt_prompt_is_per_instance_and_weights_sum_to_one(tiny_t5_dir):
    backbone, method, _ = build(tiny_t5_dir, "attempt", sources="a,b")
    batch = batch_of(backbone)
    embeds = backbone.embed_ids(batch["input_ids"])
    prompt = method.prompt(embeds, batch["attention_mask"])
    assert prompt.shape == (4, LENGTH, backbone.dims.hidden_size)
    assert not torch.allclose(prompt[0], prompt[1])  # different inputs, different prompts
    weights = method.attention_weights(embeds, batch["attention_mask"])
    assert weights.shape == (4, 3)  # t = 2 sources + the target
    assert torch.allclose(weights.sum(-1), torch.ones(4))
    # P(x) = P_tgt + Σ a_j P_j over the sources and the target, exactly.
    candidates = torch.cat([method.source_prompts, method.target_prompt.detach().unsqueeze(0)])
    expected = method.target_prompt + torch.einsum("bj,jld->bld", weights, candidates)
    assert torch.allclose(prompt, expected)


def test_attempt_sources_stay_frozen_and_outside_the_optimizer(tiny_bert_dir):
    backbone, method, sources = build(tiny_bert_dir, "attempt", sources="a,b", summary_over="real_tokens")
    assert torch.equal(method.source_prompts, torch.stack(sources))
    optimizer = build_optimizer(method, backbone, TrainConfig(head_lr=0.05))
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert id(method.source_prompts) not in in_optimizer and not method.source_prompts.requires_grad
    before_sources, before_target = method.source_prompts.clone(), method.target_prompt.detach().clone()
    batch = batch_of(backbone)
    backbone.train(True)
    for _ in range(3):
        backbone.loss(batch).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert torch.equal(method.source_prompts, before_sources)
    assert not torch.equal(method.target_prompt, before_target)


def test_attempt_summary_over_real_tokens_ignores_pads(tiny_t5_dir):
    backbone, method, _ = build(tiny_t5_dir, "attempt", sources="a,b")
    batch = batch_of(backbone)
    mask = batch["attention_mask"]
    assert (mask == 0).any()
    embeds = backbone.embed_ids(batch["input_ids"])
    noisy = torch.where(mask.unsqueeze(-1) == 0, embeds + 100.0, embeds)  # change only the pad positions
    method.config.summary_over = "real_tokens"
    assert torch.allclose(method.attention_weights(embeds, mask), method.attention_weights(noisy, mask))
    method.config.summary_over = "all"  # the official T5 behaviour: pads enter the max
    assert not torch.allclose(method.attention_weights(embeds, mask), method.attention_weights(noisy, mask))


def test_attempt_random_sources_and_record(tiny_t5_dir):
    backbone, method, _ = build(tiny_t5_dir, "attempt", num_sources=0, sources="random", num_random_sources=3)
    assert method.source_prompts.shape == (3, LENGTH, backbone.dims.hidden_size)
    assert method.source_prompts.abs().sum() > 0  # filled with sampled vocabulary rows
    record = method.record()
    assert record["sources_kind"] == "random" and record["num_sources"] == 3
    assert "attention_weights_last_eval" not in record
    backbone.train(False)
    batch = batch_of(backbone)
    with torch.inference_mode():
        backbone.predict(batch, "score", ["0", "1"])
    weights = method.record()["attention_weights_last_eval"]
    assert len(weights) == 4 and abs(sum(weights) - 1) < 1e-5
    assert method.record()["attention_candidates"][-1] == "target"


def test_attempt_bad_sources(tiny_t5_dir):
    with pytest.raises(ValueError, match="sources='none'"):
        build(tiny_t5_dir, "attempt", num_sources=0, sources="none")
    with pytest.raises(RuntimeError, match="never loaded"):
        build(tiny_t5_dir, "attempt", num_sources=0, load=False, sources="mnli")
    with pytest.raises(ValueError, match="resolved to no source prompts"):
        build(tiny_t5_dir, "attempt", num_sources=0, sources="mnli")
    with pytest.raises(ValueError, match="source prompt 0 has shape"):
        backbone = load_backbone(str(tiny_t5_dir), ["0", "1"], MAX_LENGTH)
        method = get_method_class("attempt")(build_config("attempt", {"num_tokens": 5}), backbone.dims)
        method.load_sources([torch.zeros(4, backbone.dims.hidden_size)])


def test_attempt_saved_state_round_trip(tiny_t5_dir):
    backbone, method, _ = build(tiny_t5_dir, "attempt", sources="a,b")
    with torch.no_grad():
        method.target_prompt.add_(0.5)
    state = method.saved_state()
    assert "source_prompts" in state
    fresh = get_method_class("attempt")(method.config, backbone.dims)
    fresh.load_saved_state(state)
    batch = batch_of(backbone)
    embeds = backbone.embed_ids(batch["input_ids"])
    assert torch.equal(
        fresh.prompt(embeds, batch["attention_mask"]), method.prompt(embeds, batch["attention_mask"])
    )


# ---- MPT ----------------------------------------------------------------------------------------------


def test_mpt_starts_at_the_mean_of_the_sources(tiny_t5_dir):
    backbone, method, sources = build(tiny_t5_dir, "mpt", num_sources=3, sources="a,b,c")
    assert torch.equal(method.shared_prompt.detach(), torch.stack(sources).mean(0))
    batch = batch_of(backbone)
    prompt = method.prompt(backbone.embed_ids(batch["input_ids"]), batch["attention_mask"])
    assert torch.equal(prompt, method.shared_prompt)  # u = v = 1: P̂ = P* exactly
    record = method.record()
    assert record["mpt_variant"] == "mpt(src=avg:a,b,c)" and "no distillation" in record["source_stage"]


def test_mpt_without_sources_is_labelled(tiny_bert_dir):
    backbone, method, _ = build(tiny_bert_dir, "mpt", num_sources=0, sources="none")
    batch = batch_of(backbone)
    prompt = method.prompt(backbone.embed_ids(batch["input_ids"]), batch["attention_mask"])
    assert torch.equal(prompt, method.shared_prompt) and prompt.abs().sum() > 0
    assert method.record()["mpt_variant"] == "mpt(src=none)"
    assert method.counts().transfer_params == 0


def test_mpt_higher_rank_starts_at_p_star_and_every_factor_learns(tiny_t5_dir):
    backbone, method, _ = build(tiny_t5_dir, "mpt", num_sources=0, sources="none", rank=3)
    u, v = method.factor_u.detach().clone(), method.factor_v.detach().clone()
    assert torch.allclose(u[0] @ v[0], torch.ones(LENGTH, backbone.dims.hidden_size))
    optimizer = build_optimizer(method, backbone, TrainConfig())
    backbone.loss(batch_of(backbone)).backward()
    optimizer.step()
    assert (method.factor_u - u).abs().amax(dim=(0, 1)).gt(0).all()  # every rank's column moved
    assert (method.factor_v - v).abs().amax(dim=(0, 2)).gt(0).all()


def test_mpt_peft_factor_init_shrinks_the_prompt(tiny_t5_dir):
    """The PEFT pitfall of docs/methods/mpt.md, kept as an option: both factors ~ Normal(0, 0.02)."""
    backbone, method, _ = build(tiny_t5_dir, "mpt", num_sources=0, sources="none", factor_init="peft")
    batch = batch_of(backbone)
    prompt = method.prompt(backbone.embed_ids(batch["input_ids"]), batch["attention_mask"])
    assert prompt.norm() < 0.01 * method.shared_prompt.norm()


def test_mpt_refuses_random_sources(tiny_t5_dir):
    with pytest.raises(ValueError, match="sources='random'"):
        build(tiny_t5_dir, "mpt", num_sources=0, sources="random")
