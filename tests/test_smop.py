"""SMoP against the official code (docs/methods/smop.md#side-by-side-with-the-official-forward), its routing by
hand, and the router load it records.

The reference below is written here from reading jyjohnchoi/SMoP at commit
34da5e2e033c5079329491c8a1cf6ead429ea4c1: ``peft_models/tuners/prompt_routing.py`` (``PromptRoutingEmbedding``,
``routing_level="prompt"``, ``stochastic=False``, ``perturb_router=True``, ``GaussianNoise``),
``peft_models/peft_model.py`` (``PeftModelForSeq2SeqLM.forward``: the prompt in front of the word embeddings, a
mask of ones in front of the attention mask) and ``scripts/train.py`` (Adafactor for T5). It keeps the official
layout: one ``nn.Embedding`` of k·l rows, a ``Linear`` router, prompt rows picked by ``idx·l + arange(l)``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import T5ForConditionalGeneration
from transformers.optimization import Adafactor

from bench.spec import TrainConfig
from bench.training.optim import build_optimizer
from methods.smop import mean_embedding
from tests.test_methods_train import EXAMPLES, _build

K, L = 4, 5  # experts, tokens per expert (the official README's 20 = 4 · 5)


class OfficialRouting(nn.Module):
    """The official prompt-level router and prompt table, as read (not imported: the repository needs CUDA)."""

    def __init__(self, d: int, sigma: float = 1.0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(K * L, d)
        self.linear = nn.Linear(d, K, bias=False)
        self.sigma = sigma

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        summed = torch.sum(inputs_embeds * attention_mask.unsqueeze(-1), dim=1)
        count = torch.clamp(torch.sum(attention_mask, dim=1, keepdim=True), min=1)
        logits = self.linear(summed / count.float())
        if self.training:  # GaussianNoise: x + σ · N(0, 1) · (σ · x.detach())
            logits = logits + self.sigma * torch.empty_like(logits).normal_() * (self.sigma * logits.detach())
        probs = torch.softmax(logits, dim=-1)
        values, idx = torch.topk(probs, k=1, dim=-1)
        idx = idx * L + torch.arange(0, L).unsqueeze(0)  # [B, L] rows of the chosen prompt
        prompt = self.embedding(idx) * values.unsqueeze(-1).unsqueeze(-1)  # [B, 1, L, d]
        return torch.sum(prompt, dim=1)


def _official_loss(model, routing, batch) -> torch.Tensor:
    embeds = model.get_input_embeddings()(batch["input_ids"])
    mask = batch["attention_mask"]
    prompts = routing(embeds, mask)
    embeds = torch.cat([prompts, embeds], dim=1)
    mask = torch.cat([torch.ones(mask.shape[0], L, dtype=mask.dtype), mask], dim=1)
    return model(inputs_embeds=embeds, attention_mask=mask, labels=batch["labels"]).loss


def _side_by_side(tiny_t5_dir, rows: int, **overrides) -> list[float]:
    """|Δloss| of each of 10 Adafactor steps (lr 0.5, decay 1e-5) on the first ``rows`` examples, from the same
    initial weights, with the same router noise on both sides (the global generator seeded before each forward)."""
    backbone, method = _build(tiny_t5_dir, "smop", lr="0.5", **overrides)
    batch = backbone.encode(EXAMPLES[:rows], ["0", "1"]).batch(slice(None))
    model = T5ForConditionalGeneration.from_pretrained(str(tiny_t5_dir))
    model.requires_grad_(False)
    routing = OfficialRouting(backbone.dims.hidden_size)
    with torch.no_grad():
        routing.embedding.weight.copy_(method.prompts)
        routing.linear.weight.copy_(method.router)
    ours = build_optimizer(method, backbone, TrainConfig())
    groups = [{"params": routing.embedding.parameters()}, {"params": routing.linear.parameters()}]
    official = Adafactor(groups, lr=0.5, relative_step=False, weight_decay=1e-5, scale_parameter=False)
    backbone.train(True)
    routing.train(True)
    deltas = []
    for step in range(10):
        losses = []
        for loss_fn, optimizer in (
            (lambda: backbone.loss(batch), ours),
            (lambda: _official_loss(model, routing, batch), official),
        ):
            torch.manual_seed(100 + step)
            loss = loss_fn()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        deltas.append(abs(losses[0] - losses[1]))
    assert sum(method.load.counts) == 10 * rows  # one expert per row per step
    return deltas


@pytest.mark.slow
@pytest.mark.parametrize(
    "rows, overrides, same",
    [
        (8, {"batch_mix": "true"}, True),  # the official code's own top-1 broadcast
        (1, {}, True),  # one row: the broadcast sums one prompt, so the paper's routing and the code agree
        (8, {}, False),  # the default (each row its own prompt) against the official broadcast
    ],
)
def test_ten_steps_against_the_official_forward_and_optimiser(tiny_t5_dir, rows, overrides, same):
    deltas = _side_by_side(tiny_t5_dir, rows, **overrides)
    print(f"smop side-by-side rows={rows} {overrides}: max |Δloss| over 10 steps = {max(deltas):.3g}")
    assert (max(deltas) < 1e-5) == same, deltas


def test_prompt_is_the_chosen_expert_scaled_by_its_probability(tiny_t5_dir):
    _, method = _build(tiny_t5_dir, "smop")
    method.train(False)  # no perturbation: the router is deterministic
    g = torch.Generator().manual_seed(1)
    embeds = torch.randn(3, 6, method.dims.hidden_size, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1] * 6, [0] * 6])
    embeds[0, 3:] = 50.0  # pads must not move the mean
    mean = mean_embedding(embeds, mask)
    torch.testing.assert_close(mean[0], embeds[0, :3].mean(dim=0))
    assert torch.equal(mean[2], torch.zeros_like(mean[2]))
    probs = torch.softmax(mean @ method.router.detach().T, dim=-1)
    prompt = method.prompt(embeds, mask)
    assert prompt.shape == (3, L, method.dims.hidden_size)
    for b in range(3):
        e = int(probs[b].topk(1).indices)  # the official topk (the empty row: a tie, all 1/k)
        torch.testing.assert_close(prompt[b], probs[b, e] * method.prompts.view(K, L, -1)[e].detach())
    assert method.load.rows == 0  # evaluation forwards are not counted


def test_top_k_sums_the_chosen_experts_and_counts_each(tiny_t5_dir):
    _, method = _build(tiny_t5_dir, "smop", top_k="2", perturb_router="false", router_dropout="0")
    method.train(True)
    embeds = torch.randn(2, 4, method.dims.hidden_size, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 4, dtype=torch.long)
    probs = torch.softmax(mean_embedding(embeds, mask) @ method.router.detach().T, dim=-1)
    values, chosen = probs.topk(2, dim=-1)
    table = method.prompts.detach().view(K, L, -1)
    expected = torch.stack(
        [sum(v * table[e] for v, e in zip(values[b], chosen[b], strict=True)) for b in range(2)]
    )
    torch.testing.assert_close(method.prompt(embeds, mask), expected)
    summary = method.record()["router_load"]
    assert summary["rows"] == 2 and summary["experts"] == K
    assert sum(summary["share"]) == pytest.approx(1.0)
    expected_share = torch.bincount(chosen.reshape(-1), minlength=K).float() / 4
    assert summary["share"] == pytest.approx(expected_share.tolist())


def test_perturbation_is_multiplicative_noise_on_the_logits_in_training_only(tiny_t5_dir):
    _, method = _build(tiny_t5_dir, "smop")
    embeds = torch.randn(16, 4, method.dims.hidden_size, generator=torch.Generator().manual_seed(3))
    mask = torch.ones(16, 4, dtype=torch.long)
    method.train(False)
    clean = method.route(embeds, mask)
    method.train(True)
    torch.manual_seed(0)
    noisy = method.route(embeds, mask)
    assert not torch.allclose(noisy, clean)
    logits = mean_embedding(embeds, mask) @ method.router.detach().T
    torch.manual_seed(0)
    expected = torch.softmax(logits * (1 + torch.randn(logits.shape)), dim=-1)  # z + ε ⊙ z, σ = 1
    torch.testing.assert_close(noisy, expected)
    with torch.no_grad():
        method.prompt(embeds, mask)
    assert method.load.rows == 0  # a training-mode forward without gradients (an export) is not counted
