"""MEPT against the official code (docs/methods/mept.md#side-by-side-with-the-official-forward), its per-layer
rewrite by hand, its router inputs on each family, and the router load it records.

The reference below is written here from reading runtsang/MEPT at commit
e29b808ec1fda99a6fd8d53626759a6c4494fb3b: ``transformers/src/transformers/models/t5/modeling_t5.py``
(``T5Block.__init__`` and the start of ``T5Block.forward`` for ``method == "prompt-expert"``: a new
``T5LayerNorm``, the router over positions ``l`` onward divided by the full length, ``nn.Embedding`` rows
``idx·l + arange(l)``, the probability broadcast as written, the shared prompt added, the first ``l`` states
replaced), ``peft_models/tuners/prompt_expert.py`` (``PromptExpertEncoder``: the input-level routed prompt in
front of the word embeddings) and ``scripts/train.py`` (parameters selected by name; Adafactor, decay 1e-2).
The official change sits at the top of ``T5Block.forward``; the reference runs it as a forward pre-hook of each
block of a separate copy of the model.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import T5ForConditionalGeneration
from transformers.optimization import Adafactor

from bench.spec import TrainConfig
from bench.training.optim import build_optimizer
from methods.mept import MEPT, MEPTConfig
from tests.test_methods_train import EXAMPLES, Ex, _build
from tests.test_params import count

K, L = 4, 10  # the official defaults: --num_virtual_tokens 10, --num_virtual_tokens_full 40


def _noisy_softmax(logits: torch.Tensor, training: bool) -> torch.Tensor:
    if training:  # GaussianNoise(σ=1): x + σ · N(0, 1) · (σ · x.detach())
        logits = logits + torch.empty_like(logits).normal_() * logits.detach()
    return torch.softmax(logits, dim=-1)


def _official_mix(embedding: nn.Embedding, probs: torch.Tensor) -> torch.Tensor:
    values, idx = torch.topk(probs, k=1, dim=-1)
    idx = idx * L + torch.arange(0, L).unsqueeze(0)  # [B, L]
    prompt = torch.sum(embedding(idx) * values.unsqueeze(-1).unsqueeze(-1), dim=1).squeeze()
    return prompt.unsqueeze(0) if prompt.dim() == 2 else prompt


class OfficialBlockExperts(nn.Module):
    """What ``T5Block`` gains for ``prompt-expert`` (the official names: ``prompt_embedding``, ``prompt_router``,
    ``shared_embedding``, and a new ``layer_norm`` that no name selection trains)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.prompt_embedding = nn.Embedding(K * L, d)
        self.prompt_router = nn.Linear(d, K, bias=False)
        self.shared_embedding = nn.Parameter(torch.zeros(1, L, d))
        self.layer_norm_weight = torch.ones(d)  # T5LayerNorm(d), weight 1, eps 1e-6: not a parameter here

    def rewrite(self, hidden_states: torch.Tensor) -> torch.Tensor:
        var = hidden_states.to(torch.float32).pow(2).mean(-1, keepdim=True)
        hiddens = self.layer_norm_weight * (hidden_states * torch.rsqrt(var + 1e-6))
        sentence = torch.sum(hiddens[:, L:, :], dim=1) / torch.full(
            (hidden_states.shape[0], 1), hidden_states.shape[1]
        )
        probs = _noisy_softmax(self.prompt_router(sentence), self.training)
        prompt = _official_mix(self.prompt_embedding, probs) + self.shared_embedding
        return torch.cat((prompt, hidden_states[:, L:, :]), dim=1)


class OfficialInputExperts(nn.Module):
    """``PromptExpertEncoder``: the input-level prompt (``embedding`` is not selected by name, so it stays frozen)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(K * L, d)
        self.router = nn.Linear(d, K, bias=False)
        self.shared_embedding = nn.Parameter(torch.zeros(1, L, d))

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mean = (
            torch.sum(embeds * mask.unsqueeze(-1), 1) / torch.clamp(mask.sum(1, keepdim=True), min=1).float()
        )
        return (
            _official_mix(self.embedding, _noisy_softmax(self.router(mean), self.training))
            + self.shared_embedding
        )


def _official_trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``scripts/train.py``: ``router``, ``prompt_embedding`` or ``shared_embedding`` in the name trains."""
    keys = ("router", "prompt_embedding", "shared_embedding")
    return [(n, p) for n, p in model.named_parameters() if any(k in n for k in keys)]


class OfficialMEPT(nn.Module):
    def __init__(self, d: int, num_layers: int) -> None:
        super().__init__()
        self.prompt_encoder = OfficialInputExperts(d)
        self.blocks = nn.ModuleList(OfficialBlockExperts(d) for _ in range(num_layers))


def _official_loss(model, official: OfficialMEPT, batch) -> torch.Tensor:
    embeds = model.get_input_embeddings()(batch["input_ids"])
    mask = batch["attention_mask"]
    embeds = torch.cat([official.prompt_encoder(embeds, mask)[:, :L], embeds], dim=1)
    mask = torch.cat([torch.ones(mask.shape[0], L, dtype=mask.dtype), mask], dim=1)
    return model(inputs_embeds=embeds, attention_mask=mask, labels=batch["labels"]).loss


def _side_by_side(tiny_t5_dir, rows: int, **overrides) -> list[float]:
    """|Δloss| of each of 10 Adafactor steps (lr 0.5, decay 1e-2) on the first ``rows`` examples, from the same
    initial weights, with the same router noise on both sides (the global generator seeded before each forward;
    the official input-level router runs without noise: its prompt is replaced at block 0 before anything reads
    it, and its draws would only shift the blocks' noise)."""
    backbone, method = _build(tiny_t5_dir, "mept", lr="0.5", **overrides)
    batch = backbone.encode(EXAMPLES[:rows], ["0", "1"]).batch(slice(None))
    model = T5ForConditionalGeneration.from_pretrained(str(tiny_t5_dir))
    model.requires_grad_(False)
    official = OfficialMEPT(backbone.dims.hidden_size, len(method.layers))
    with torch.no_grad():
        for block, ours in zip(official.blocks, method.experts, strict=True):
            block.prompt_embedding.weight.copy_(ours.prompts)
            block.prompt_router.weight.copy_(ours.router)
            block.shared_embedding.copy_(ours.shared.unsqueeze(0))
    for block, experts in zip(model.get_encoder().block, official.blocks, strict=True):
        block.register_forward_pre_hook(lambda _m, args, ex=experts: (ex.rewrite(args[0]), *args[1:]))
    official.prompt_encoder.embedding.requires_grad_(False)
    ours = build_optimizer(method, backbone, TrainConfig())
    params = [p for _, p in _official_trainable(official)]
    reference = Adafactor(params, lr=0.5, relative_step=False, weight_decay=1e-2, scale_parameter=False)
    backbone.train(True)
    official.train(True)
    official.prompt_encoder.train(False)
    deltas = []
    for step in range(10):
        losses = []
        for loss_fn, optimizer in (
            (lambda: backbone.loss(batch), ours),
            (lambda: _official_loss(model, official, batch), reference),
        ):
            torch.manual_seed(100 + step)
            loss = loss_fn()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        deltas.append(abs(losses[0] - losses[1]))
    assert official.prompt_encoder.router.weight.grad is None  # the input-level router never reaches the loss
    assert all(
        int(load.counts.sum()) == 10 * rows for load in method.loads
    )  # one expert per row, step, layer
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
    print(f"mept side-by-side rows={rows} {overrides}: max |Δloss| over 10 steps = {max(deltas):.3g}")
    assert (max(deltas) < 1e-5) == same, deltas


def test_t5_base_count_and_the_official_selection(t5_base):
    counts = count(t5_base, "mept")  # 12 blocks · (4·10·768 + 10·768 + 4·768)
    assert counts.trainable_params == counts.saved_params == 497_664
    assert counts.breakdown == {"prompts": 368_640, "shared": 92_160, "router": 36_864}
    # The official name selection also trains the input-level router and shared prompt: 10,752 more.
    official = OfficialMEPT(768, 12)
    official.prompt_encoder.embedding.requires_grad_(False)
    assert sum(p.numel() for _, p in _official_trainable(official)) == 508_416 == 497_664 + 4 * 768 + 10 * 768
    assert count(t5_base, "mept", layers="0,6").trainable_params == 2 * 41_472


def test_rewrite_by_hand(tiny_t5_dir):
    _, method = _build(tiny_t5_dir, "mept", num_tokens="3")
    method.train(False)  # no perturbation
    d = method.dims.hidden_size
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(2, 8, d, generator=g)
    slots = torch.arange(3).expand(2, 3)
    readable = torch.tensor([[0, 0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1, 1]])
    normed = hidden / hidden.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
    ex = method.experts[1]
    for mean, pooled in (
        ("all", normed[:, 3:].sum(1) / 8),  # every non-prompt column, pads included, over the full length
        ("real", (normed * readable[..., None]).sum(1) / readable.sum(1, keepdim=True)),
    ):
        method.router_mean = mean
        probs = torch.softmax(pooled @ ex.router.detach().T, dim=-1)
        new = method.rewrite_prompt(1, hidden, slots, readable)
        table = ex.prompts.detach().view(4, 3, d)
        for b in range(2):
            e = int(probs[b].argmax())
            torch.testing.assert_close(new[b], probs[b, e] * table[e] + ex.shared.detach())
    assert all(load.rows == 0 for load in method.loads)  # evaluation forwards are not counted


def test_every_listed_layer_rewrites_and_the_input_placeholder_is_inert(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "mept")
    batch = backbone.encode(EXAMPLES[:2], ["0", "1"]).batch(slice(None))
    backbone.train(False)  # no router noise
    seen = []
    original = method.rewrite_prompt
    method.rewrite_prompt = lambda layer, *a: seen.append(layer) or original(layer, *a)
    with torch.no_grad():
        before = backbone.loss(batch)
        method.prompt = lambda embeds, mask: torch.randn(L, embeds.shape[-1])  # replaced at block 0 anyway
        assert torch.equal(backbone.loss(batch), before)
    assert seen == [0, 1, 0, 1]


def test_official_router_mean_reads_pads_so_batches_stay_full_width(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "mept")
    assert method.pad_positions_matter and not backbone.trims_batches("longest")
    backbone.train(False)
    split = backbone.encode(EXAMPLES, ["0", "1"])
    with torch.no_grad():
        assert not torch.allclose(
            backbone.loss(split.batch(slice(None))), backbone.loss(split.batch(slice(None), trim=True))
        )
    _, real = _build(tiny_t5_dir, "mept", router_mean="real")
    assert not real.pad_positions_matter


def test_decoder_router_never_reads_the_target(tiny_llama_dir):
    backbone, method = _build(tiny_llama_dir, "mept", num_tokens="2")
    assert method.router_mean == "real"
    backbone.train(False)  # no router noise
    captured = []
    original = method.router_input
    method.router_input = lambda *a: captured.append(original(*a).detach().clone()) or captured[-1]
    with torch.no_grad():
        for target in ("0", "1"):
            backbone.loss(backbone.encode([Ex(EXAMPLES[0].source, target, 0)], ["0", "1"]).batch(slice(None)))
        n = len(method.layers)
        assert len(captured) == 2 * n
        for a, b in zip(captured[:n], captured[n:], strict=True):
            assert torch.equal(a, b)
        batch = backbone.encode([EXAMPLES[0]], ["0", "1"]).batch(slice(None))
        backbone.predict(batch, mode="generate")  # the prefill rewrites; cached one-token steps do not
    assert len(captured) == 3 * n
    for a, b in zip(captured[:n], captured[2 * n :], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_record_sums_layers_and_keeps_each(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "mept")
    batch = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    backbone.train(True)
    backbone.loss(batch).backward()
    rec = method.record()
    assert rec["router_load"]["rows"] == 8 and rec["router_load"]["layers"] == 2
    assert sum(rec["router_load"]["share"]) == pytest.approx(1.0)
    per = rec["router_load_per_layer"]
    assert set(per) == {"0", "1"} and all(v["rows"] == 8 for v in per.values())
    summed = torch.tensor(per["0"]["share"]) + torch.tensor(per["1"]["share"])
    assert rec["router_load"]["share"] == pytest.approx((summed / 2).tolist())


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"layers": "1,2"}, "layers='1,2' must include 0"),
        ({"layers": "0,12"}, r"must include 0 and lie in 0..11"),
        ({"layers": "0,a"}, "must be 'all' or comma-separated integers"),
        ({"router_mean": "max"}, "router_mean='max' is not one of 'all', 'real'"),
        ({"top_k": "5"}, "top_k=5 must be between 1 and num_experts=4"),
    ],
)
def test_bad_values_are_rejected(t5_base, fields, message):
    with pytest.raises(ValueError, match=message):
        count(t5_base, "mept", **fields)


def test_decoder_rejects_the_official_mean():
    from methods.base import BackboneDims

    dims = BackboneDims("decoder", 32, 2, 24, 100, 512)
    with pytest.raises(ValueError, match="would read the target tokens"):
        MEPT(MEPTConfig(router_mean="all"), dims)
