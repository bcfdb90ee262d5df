"""Every method on decoder-only (Llama-style) backbones: wrap methods find Llama's projections by role (counts on
SmolLM2-135M's config, from its shapes, no weights), and instance-dependent input prompts read the prefix only.

SmolLM2-135M: d=576, 30 layers, 9 query heads and 3 key/value heads of 64 (k, v: 192 outputs), FFN 1,536
(gate/up/down), 61 RMSNorm weights (2 per layer + the final norm), no linear biases."""

from __future__ import annotations

import pytest
import torch

from methods.model_parts import layer_norms, linear_parts
from tests.test_decoder import EXAMPLES, Ex, _backbone
from tests.test_params_wrap import attach_meta

D, LAYERS, KV, FFN, VOCAB = 576, 30, 192, 1_536, 49_152


def test_llama_projections_get_their_roles(tiny_llama_dir):
    backbone = _backbone(tiny_llama_dir)
    parts = linear_parts(backbone.model)
    roles = [(p.name.split(".")[-1], p.stack, p.sublayer, p.role) for p in parts[:7]]
    assert roles == [
        ("q_proj", "decoder", "self_attn", "q"),
        ("k_proj", "decoder", "self_attn", "k"),
        ("v_proj", "decoder", "self_attn", "v"),
        ("o_proj", "decoder", "self_attn", "o"),
        ("gate_proj", "decoder", "ffn", "wi"),
        ("up_proj", "decoder", "ffn", "wi"),
        ("down_proj", "decoder", "ffn", "wo"),
    ]
    assert len(parts) == 7 * 2  # two layers; the LM head has no role
    assert len(layer_norms(backbone.model)) == 2 * 2 + 1  # RMSNorms: two per layer and the final one


@pytest.mark.parametrize(
    "name, overrides, expected",
    [
        ("lora", {}, LAYERS * 8 * ((D + D) + (D + KV))),  # q: 576->576, v: 576->192
        ("lora", {"targets": "q,k,v,o,wi,wo"}, LAYERS * 8 * (2 * (D + D) + 2 * (D + KV) + 3 * (D + FFN))),
        # zero biases on every linear, after both RMSNorms of every layer (not the final one), on the LM head
        ("bitfit", {}, LAYERS * (D + KV + KV + D + FFN + FFN + D) + 60 * D + VOCAB),
        ("bitfit", {"layernorm_bias": False, "lm_head_bias": False}, LAYERS * (2 * D + 2 * KV + 2 * FFN + D)),
        (
            "bitfit",
            {"final_layernorm_bias": True, "lm_head_bias": False},
            LAYERS * (2 * D + 2 * KV + 2 * FFN + D) + 61 * D,
        ),
        ("adapter", {"train_layer_norms": False}, 2 * LAYERS * (2 * D * 18 + 18 + D)),  # after o and down
        ("adapter", {}, 2 * LAYERS * (2 * D * 18 + 18 + D) + 61 * D),
    ],
)
def test_wrap_counts_on_smollm2(name, overrides, expected):
    backbone, method = attach_meta(name, model="smollm2", max_length=64, **overrides)
    assert method.counts().trainable_params == expected


def test_bitfit_on_llama_adds_zero_biases_so_the_output_is_unchanged(tiny_llama_dir):
    plain = _backbone(tiny_llama_dir)
    fitted = _backbone(tiny_llama_dir, "bitfit", final_layernorm_bias="true")
    batch = plain.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    with torch.no_grad():
        assert torch.allclose(plain.loss(batch), fitted.loss(batch))
    assert fitted.method.record()["bias_source"] == "added"


@pytest.mark.parametrize("summary_over", ["all", "real_tokens"])
def test_attempt_prompt_never_sees_the_target(tiny_llama_dir, summary_over):
    """ATTEMPT's input summary ``max E(x)`` is taken over the prefix only: in training and label scoring the
    rows hold the target too, which would otherwise reach every position through the prompt."""
    backbone = _backbone(tiny_llama_dir, "attempt", num_tokens=3, summary_over=summary_over)
    captured = []
    original = backbone.method.prompt

    def spy(embeds, mask):
        out = original(embeds, mask)
        captured.append(out.detach().clone())
        return out

    backbone.method.prompt = spy
    with torch.no_grad():
        for target in ("0", "1"):
            backbone.loss(backbone.encode([Ex(EXAMPLES[0].source, target)], ["0", "1"]).batch(slice(None)))
    assert torch.equal(captured[0], captured[1])
    # Generation reads the prefix alone: the same prompt again.
    batch = backbone.encode([EXAMPLES[0]], ["0", "1"]).batch(slice(None))
    with torch.no_grad():
        backbone.predict(batch, mode="generate")
    assert torch.allclose(captured[0], captured[-1], atol=1e-6)
