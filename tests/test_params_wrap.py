"""Reference rows (LoRA, full fine-tuning, BitFit, Adapter) and P-tuning: counts on T5-Base match docs/methods/index.md#overview
§3.10, ``bench params`` attaches wrap methods, and saved/best-checkpoint states reproduce predictions."""

from __future__ import annotations

import re

import pytest
import torch

from bench.backbones.load import meta_backbone
from bench.cli import main
from bench.spec import TrainConfig
from bench.training.optim import build_optimizer, load_trainable_state, trainable_state
from methods.registry import build_config, get_method_class
from tests.test_methods_train import EXAMPLES, _build

T5_BASE_TOTAL = 222_903_552


def attach_meta(name: str, model: str = "t5-base", max_length: int = 256, **overrides):
    backbone = meta_backbone(model, max_length)
    with torch.device("meta"):
        method = get_method_class(name)(build_config(name, overrides), backbone.dims)
        backbone.attach(method)
    return backbone, method


LN = 47_616  # the 62 T5LayerNorm weights of T5-Base


@pytest.mark.parametrize(
    "name, overrides, expected, reused",
    [
        ("lora", {}, 884_736, 0),  # r=8, q,v of 36 attention modules: 36 × 2 × 8 × 1,536
        ("lora", {"targets": "q,k,v,o,wi,wo"}, 3_244_032, 0),
        ("lora", {"rank": 4}, 442_368, 0),
        ("finetune", {}, T5_BASE_TOTAL, T5_BASE_TOTAL),  # tied embedding counted once
        # added biases on every linear (202,752), every block LayerNorm (60 × 768) and the LM head (32,128)
        ("bitfit", {}, 280_960, 0),
        ("bitfit", {"layernorm_bias": False, "lm_head_bias": False}, 82_944 + 119_808, 0),
        ("bitfit", {"biases": "encoder", "layernorm_bias": False, "lm_head_bias": False}, 82_944, 0),
        ("bitfit", {"biases": "decoder", "layernorm_bias": False, "lm_head_bias": False}, 119_808, 0),
        ("bitfit", {"final_layernorm_bias": True}, 202_752 + LN + 32_128, 0),
        ("bitfit", {"lm_head_bias": False}, 202_752 + 60 * 768, 0),
        ("adapter", {}, 48 * 37_656 + LN, LN),  # self-attn + FFN adapters, b=24, LayerNorms unfrozen
        ("adapter", {"train_layer_norms": False}, 48 * 37_656, 0),
        ("adapter", {"sublayers": "self_attn,cross_attn,ffn", "train_layer_norms": False}, 60 * 37_656, 0),
        ("ptuning", {}, 76_800 + 3 * 768 * 768 + 3 * 768, 0),  # l·d + MLP d→d→d→d
    ],
)
def test_counts_on_t5_base(name, overrides, expected, reused):
    backbone, method = attach_meta(name, **overrides)
    assert method.counts().trainable_params == expected
    # total_params counts each tensor once: the backbone plus the tensors the method added, nothing twice.
    assert backbone.total_params() == T5_BASE_TOTAL + expected - reused


def test_saved_params():
    assert attach_meta("ptuning")[1].counts().saved_params == 76_800  # only the computed prompt
    assert attach_meta("lora")[1].counts().saved_params == 884_736
    assert attach_meta("adapter")[1].record()["num_adapters"] == 48


def test_bert_targets_map_to_query_value():
    backbone, method = attach_meta("lora", model="minilm", max_length=128)
    names = {n for n in method.saved_state()}
    assert len(names) == 6 * 2 * 2  # 6 layers × (query, value) × (A, B)
    assert all(re.search(r"attention\.self\.(query|value)\.lora_[AB]\.", n) for n in names)
    assert method.counts().trainable_params == 6 * 2 * 8 * (384 + 384)
    assert all(p.requires_grad for p in backbone.head_parameters()), "PEFT froze the task head"


def test_bitfit_on_bert_trains_native_biases_not_the_head():
    backbone, method = attach_meta("bitfit", model="minilm", max_length=128)
    names = list(method.saved_state())
    assert names and all(n.endswith("bias") for n in names)
    assert not any(n.startswith("classifier") for n in names)
    assert method.record()["bias_source"] == "native"


def test_bench_params_cli_all(capsys):
    assert main(["params", "--model", "t5-base", "--methods", "all"]) == 0
    out = capsys.readouterr().out
    rows = {
        m: re.search(rf"│ {m}\s+│\s+([\d,]+)", out).group(1) for m in ("lora", "finetune", "bitfit", "pt")
    }
    assert rows == {"lora": "884,736", "finetune": "222,903,552", "bitfit": "280,960", "pt": "76,800"}
    assert re.search(r"│ finetune .*│\s+222,903,552 │\s+100\.0000", out), out


@pytest.mark.parametrize("bad", [{"targets": "q,x"}, {"rank": 0}])
def test_lora_bad_config(bad):
    with pytest.raises(ValueError, match="targets|rank"):
        build_config("lora", bad).validate(meta_backbone("t5-small", 32).dims)


def _predict(backbone, batch):
    backbone.train(False)
    with torch.no_grad():
        return backbone.loss(batch).item()


def _train(backbone, method, batch, steps: int = 3):
    optimizer = build_optimizer(method, backbone, TrainConfig(head_lr=0.05))
    backbone.train(True)
    for _ in range(steps):
        backbone.loss(batch).backward()
        optimizer.step()
        optimizer.zero_grad()


@pytest.mark.parametrize("name", ["lora", "finetune", "bitfit", "adapter", "ptuning"])
def test_saved_and_best_state_round_trip(tiny_model_dir, name):
    """The trainer's best-checkpoint state and the method's saved state both restore the trained model."""
    backbone, method = _build(tiny_model_dir, name, lr="0.05")
    batch = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    _train(backbone, method, batch)
    trained_loss = _predict(backbone, batch)
    best = trainable_state(backbone)
    saved = {k: v.clone() for k, v in method.saved_state().items()}  # saved_state shares storage
    _train(backbone, method, batch)  # move away from the saved point
    assert _predict(backbone, batch) != trained_loss
    load_trainable_state(backbone, best)
    assert _predict(backbone, batch) == trained_loss
    _train(backbone, method, batch)
    method.load_saved_state(saved)
    with torch.no_grad():  # the head is the backbone's (head_params), restored from the best state
        for i, p in enumerate(backbone.head_parameters()):
            p.copy_(best[f"head.{i}"])
    assert _predict(backbone, batch) == pytest.approx(trained_loss, abs=1e-6)
