"""Behaviour that follows the methods' official code, each checked against a computation written here.

ATTEMPT's input summary, attention weights and mixture are recomputed with plain loops from the formula; its
target prompt starts as the first source prompt (official single-task path) or, with ``target_init=vocab``, as
embeddings of ids below 5,000; text inits carry the tokenizer's special tokens; the Adapter's non-linearity is
transformers' ``gelu_new``; LPT does not decay its biases; SPoT and ATTEMPT use no weight decay; the record's
dtype is the parameters' own.
"""

from __future__ import annotations

import math

import pytest
import torch

from bench.backbones.load import load_backbone
from bench.measurement.measure import environment, parameter_dtypes
from methods.base import BackboneDims
from methods.registry import build_config, get_method_class

D, L, S, T = 8, 3, 5, 2  # hidden size, prompt length, input length, sources
DIMS = BackboneDims("seq2seq", D, 2, S, 100)


class FakeEmbeddings:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def embed_text(self, text: str, length: int, special_tokens: bool = False) -> torch.Tensor:
        self.calls.append(("text", special_tokens))
        return torch.ones(length, D)

    def embed_random_vocab(self, length: int, generator: torch.Generator, max_id=None) -> torch.Tensor:
        self.calls.append(("vocab", max_id))
        return torch.randn(length, D, generator=generator)


def _attempt(summary_over: str = "all", **overrides):
    config = build_config("attempt", {"num_tokens": L, "attn_dim": 4, "temperature": 3.0, **overrides})
    config.summary_over = summary_over
    method = get_method_class("attempt")(config, DIMS)
    g = torch.Generator().manual_seed(0)
    sources = [torch.randn(L, D, generator=g) for _ in range(T)]
    method.load_sources(sources)
    method.initialize(FakeEmbeddings(), g)
    with torch.no_grad():  # move every tensor off its init so nothing is trivially zero or one
        for p in method.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return method, sources


def _reference_weights(method, embeds, mask, real_only: bool) -> list[list[float]]:
    """a_j = softmax_j(p̂_j · h / T), h = LN(W_up SiLU(W_down x̂)), x̂ = max over positions; by hand."""
    w_down, w_up = method.attn_down.weight.tolist(), method.attn_up.weight.tolist()
    ln_w, ln_b, eps = method.attn_norm.weight.tolist(), method.attn_norm.bias.tolist(), method.attn_norm.eps
    candidates = [*method.source_prompts.tolist(), method.target_prompt.tolist()]
    p_hat = [[max(row[k] for row in cand) for k in range(D)] for cand in candidates]
    out = []
    for b in range(embeds.shape[0]):
        positions = [i for i in range(S) if not real_only or mask[b, i]]
        x_hat = [max(float(embeds[b, i, k]) for i in positions) for k in range(D)]
        down = [sum(w * x for w, x in zip(row, x_hat, strict=True)) for row in w_down]
        act = [v / (1 + math.exp(-v)) for v in down]  # SiLU
        up = [sum(w * x for w, x in zip(row, act, strict=True)) for row in w_up]
        mean = sum(up) / D
        var = sum((v - mean) ** 2 for v in up) / D
        h = [(v - mean) / math.sqrt(var + eps) * w + c for v, w, c in zip(up, ln_w, ln_b, strict=True)]
        logits = [sum(p * q for p, q in zip(ph, h, strict=True)) / 3.0 for ph in p_hat]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        out.append([e / sum(exps) for e in exps])
    return out


@pytest.mark.parametrize("summary_over", ["all", "real_tokens"])
def test_attempt_summary_weights_and_mixture_match_a_hand_computation(summary_over):
    method, _ = _attempt(summary_over)
    g = torch.Generator().manual_seed(3)
    embeds = torch.randn(2, S, D, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    embeds[0, 3:] = 5.0  # large pad embeddings: they win the max only when pads are included
    expected = torch.tensor(_reference_weights(method, embeds, mask, summary_over == "real_tokens"))
    got = method.attention_weights(embeds, mask)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    other = _reference_weights(method, embeds, mask, summary_over != "real_tokens")
    assert not torch.allclose(got, torch.tensor(other), atol=1e-4), "pads did not change the summary"
    candidates = [*method.source_prompts, method.target_prompt]
    for b in range(2):  # P(x) = P_tgt + Σ_j a_j P_j
        mix = method.target_prompt + sum(float(expected[b, j]) * c for j, c in enumerate(candidates))
        torch.testing.assert_close(method.prompt(embeds, mask)[b], mix, rtol=1e-4, atol=1e-5)


def test_attempt_target_starts_as_the_first_source_by_default():
    config = build_config("attempt", {"num_tokens": L})
    assert config.target_init == "first_source" and config.weight_decay == 0.0
    method = get_method_class("attempt")(config, DIMS)
    sources = [torch.randn(L, D), torch.randn(L, D)]
    method.load_sources(sources)
    method.initialize(FakeEmbeddings(), torch.Generator().manual_seed(0))
    assert torch.equal(method.target_prompt.detach(), sources[0])
    assert all(g.weight_decay == 0.0 for g in method.param_groups())


def test_attempt_vocab_init_asks_for_ids_below_5000():
    embeddings = FakeEmbeddings()
    config = build_config("attempt", {"num_tokens": L, "target_init": "vocab", "sources": "random"})
    method = get_method_class("attempt")(config, DIMS)
    method.initialize(embeddings, torch.Generator().manual_seed(0))
    assert embeddings.calls == [("vocab", 5000)] * (config.num_random_sources + 1)
    assert not torch.equal(method.target_prompt.detach(), method.source_prompts[0])


def test_backbone_vocab_draw_stays_below_max_id(tiny_t5_dir):
    backbone = load_backbone(str(tiny_t5_dir), ["0", "1"], 16)
    weight = backbone.model.get_input_embeddings().weight.detach()
    rows = backbone.embed_random_vocab(200, torch.Generator().manual_seed(0), max_id=5000)
    ids = torch.cdist(rows, weight).argmin(dim=1)
    assert int(ids.max()) < 5000 and ids.unique().numel() > 100


@pytest.mark.parametrize("method_name", ["dept", "ept", "pt"])
def test_text_init_uses_special_tokens_by_default(method_name):
    embeddings = FakeEmbeddings()
    overrides = {"num_tokens": 3} if method_name == "pt" else {"num_tokens": 3, "rank": 2}
    config = build_config(method_name, {**overrides, "init": "text", "init_text": "x"})
    get_method_class(method_name)(config, DIMS).initialize(embeddings, torch.Generator().manual_seed(0))
    assert embeddings.calls[0] == ("text", True)
    config.init_special_tokens = False
    embeddings.calls.clear()
    get_method_class(method_name)(config, DIMS).initialize(embeddings, torch.Generator().manual_seed(0))
    assert embeddings.calls[0] == ("text", False)


def test_backbone_text_init_repeats_the_ids_with_special_tokens(tiny_t5_dir):
    backbone = load_backbone(str(tiny_t5_dir), ["0", "1"], 16)
    ids = backbone.tokenizer("good film")["input_ids"]  # with the tokenizer's special tokens
    plain = backbone.tokenizer("good film", add_special_tokens=False)["input_ids"]
    assert len(ids) > len(plain)
    pattern = (ids * 10)[:9]
    expected = backbone.embed_ids(torch.tensor(pattern))
    torch.testing.assert_close(backbone.embed_text("good film", 9, special_tokens=True), expected)
    assert not torch.equal(backbone.embed_text("good film", 9, special_tokens=False), expected)


def test_adapter_activation_is_gelu_new(tiny_t5_dir):
    from transformers.activations import ACT2FN

    from tests.test_methods_train import _build

    _, method = _build(tiny_t5_dir, "adapter")
    adapter = next(m for m in method.model.modules() if type(m).__name__ == "Adapter")
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(adapter.act(x), ACT2FN["gelu_new"](x))
    assert not torch.allclose(adapter.act(x), torch.nn.functional.gelu(x))  # not the exact GELU
    assert float(adapter.down.bias.detach().abs().sum()) == float(adapter.up.bias.detach().abs().sum()) == 0.0
    assert 0.005 < float(adapter.down.weight.detach().std()) < 0.02  # Normal(0, 0.01)


def test_lpt_decays_weights_but_not_biases():
    config = build_config("lpt", {})
    method = get_method_class("lpt")(config, BackboneDims("seq2seq", 16, 4, 8, 100))
    groups = {g.name: g for g in method.param_groups()}
    decayed = {id(p) for p in groups["generator"].params}
    assert decayed == {id(method.down.weight), id(method.up.weight)}
    assert groups["generator"].weight_decay == 0.1
    assert {id(p) for p in groups["generator_no_decay"].params} == {id(method.down.bias), id(method.up.bias)}
    assert groups["generator_no_decay"].weight_decay == 0.0
    config.decay_biases = True
    (single,) = get_method_class("lpt")(config, BackboneDims("seq2seq", 16, 4, 8, 100)).param_groups()
    assert len(single.params) == 4 and single.weight_decay == 0.1


def test_spot_has_no_weight_decay():
    assert build_config("spot", {}).weight_decay == 0.0


def test_record_dtype_is_the_parameters_dtype(tiny_t5_dir):
    backbone = load_backbone(str(tiny_t5_dir), ["0", "1"], 16)
    backbone.model.to(torch.bfloat16)
    prompt = torch.nn.Linear(2, 2)  # a float32 method
    env = environment(torch.device("cpu"), [backbone.model, prompt])
    assert env["dtype"] == "bfloat16"
    assert env["param_dtypes"] == parameter_dtypes([backbone.model, prompt])
    assert env["param_dtypes"]["float32"] == 6 and list(env["param_dtypes"]) == ["bfloat16", "float32"]


def test_record_names_the_cpu_and_torchs_kernel_level():
    """Floating-point results depend on the CPU's kernels, so the record says which ran."""
    env = environment(torch.device("cpu"))
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cpu_model"] is None or (isinstance(env["cpu_model"], str) and env["cpu_model"])
