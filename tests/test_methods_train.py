"""Every method trains on tiny T5 and BERT backbones: the loss goes down, only the method's parameters (and
the encoder's task head) change, and the frozen backbone stays bit-identical.

Wrap methods put their tensors inside the model (LoRA pairs, added biases, adapters) or train some of the
backbone's own tensors (full fine-tuning, BitFit on BERT, adapter LayerNorms). The check is therefore by tensor
identity over the tensors that existed before attaching: exactly those in the method's parameter groups (and
the head) may change, and every one of them must; every other one stays bit-identical."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from bench.backbones.load import load_backbone
from bench.spec import TrainConfig
from bench.training.optim import build_optimizer, trainable_parameters
from methods.registry import build_config, get_method_class, list_methods

MAX_LENGTH = 24
LR_OVERRIDES = {"lr": "0.05", "lr_lowrank": "0.05", "lr_modules": "0.05"}
# SMoP's prompt enters scaled by its router probability, about 1/k = 1/4 at the start, so its effective step is
# about a quarter of the others' at the same rate: 0.2 = 4 · 0.05 (at 0.05 the tiny T5's loss falls 9% in 25 steps).
METHOD_LR = {"smop": "0.2"}


@dataclass(frozen=True)
class Ex:
    source: str
    target: str
    label: int


EXAMPLES = [
    Ex("sentence: a wonderful , moving film", "1", 1),
    Ex("sentence: dull and far too long", "0", 0),
    Ex("sentence: the best thing this year", "1", 1),
    Ex("sentence: an utter waste of time", "0", 0),
] * 2


def _build(model_dir, method_name: str, attach: bool = True, **overrides):
    torch.manual_seed(0)
    backbone = load_backbone(str(model_dir), ["0", "1"], MAX_LENGTH)
    cls = get_method_class(method_name)
    fields = {k: v for k, v in LR_OVERRIDES.items() if k in _fields(cls)}
    if method_name in METHOD_LR:
        fields["lr"] = METHOD_LR[method_name]
    config = build_config(method_name, {**fields, **overrides})
    method = cls(config, backbone.dims)
    if cls.requires_sources:  # synthetic source prompts on the backbone's embedding scale
        method.load_sources(
            synthetic_source_prompts(
                backbone, num=min(2, cls.max_sources or 2), length=getattr(config, "num_tokens", 4)
            )
        )
    method.initialize(backbone, torch.Generator().manual_seed(0))
    if attach:
        backbone.attach(method)
    return backbone, method


def synthetic_source_prompts(backbone, num: int, length: int) -> list[torch.Tensor]:
    """Stand-ins for prompts trained on source tasks: sampled vocabulary rows, one ``[length, d]`` each."""
    generator = torch.Generator().manual_seed(1)
    return [backbone.embed_random_vocab(length, generator) for _ in range(num)]


def _fields(cls) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(cls.config_class)}


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("method_name", list_methods())
def test_method_trains_and_leaves_backbone_untouched(tiny_model_dir, method_name):
    backbone, method = _build(tiny_model_dir, method_name, attach=False)
    # Every tensor of the model before attaching, by identity (PEFT renames modules but keeps the tensors).
    originals = [
        (n, t, t.detach().clone())
        for n, t in [*backbone.model.named_parameters(), *backbone.model.named_buffers()]
    ]
    backbone.attach(method)
    batch = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    head_ids = {id(p) for p in backbone.head_parameters()}
    method_params = [p for g in method.param_groups() for p in g.params]
    method_ids = {id(p) for p in method_params}
    assert method_params, "the method has no trainable parameters"
    assert not method_ids & head_ids, "the task head is inside the method's parameter groups"
    before_params = [p.detach().clone() for p in method_params]
    before_method = _snapshot(method)

    optimizer = build_optimizer(method, backbone, TrainConfig(head_lr=0.05))
    params = trainable_parameters(backbone)
    backbone.train(True)
    losses = []
    for _ in range(25):
        loss = backbone.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())

    # The loss must fall below 90% of its start in the second half of training. A minimum over that half, not
    # the last value: at these test rates some methods (EPT on BERT) learn fast but spike now and then.
    late = min(losses[len(losses) // 2 :])
    assert late < losses[0] * 0.9, f"loss did not go down: {losses[0]:.4f} -> best late {late:.4f}"
    for name, tensor, value in originals:
        if id(tensor) in head_ids:
            assert not torch.equal(value, tensor), f"head tensor {name} did not train"
        elif id(tensor) in method_ids:
            assert not torch.equal(value, tensor), f"backbone tensor {name} is trained but never changed"
        else:
            assert torch.equal(value, tensor), f"frozen backbone tensor {name} changed"
    if head_ids:
        assert any(id(t) in head_ids for _, t, _ in originals), "head tensors not found in the model"
    # Every trainable tensor of the method (its own or inside the model) learned something.
    unchanged = [
        i for i, (p, v) in enumerate(zip(method_params, before_params, strict=True)) if torch.equal(p, v)
    ]
    assert not unchanged, f"{len(unchanged)} of {len(method_params)} method tensors never updated"
    # Only trainable tensors exist in the method module, and each one learned something.
    unchanged_state = [n for n, v in method.state_dict().items() if torch.equal(before_method[n], v)]
    assert not unchanged_state, f"method tensors never updated: {unchanged_state}"
    # Nothing outside the method and the head requires grad.
    outside = [
        n
        for n, p in backbone.model.named_parameters()
        if p.requires_grad and id(p) not in head_ids and id(p) not in method_ids
    ]
    assert not outside, f"backbone parameters left trainable: {outside[:3]}"


def test_parameter_groups_reach_the_optimizer_with_their_rates(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "ept", lr="0.3", lr_lowrank="0.005", lr_modules="0.001")
    optimizer = build_optimizer(method, backbone, TrainConfig())
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert rates == {"prompt": 0.3, "lowrank": 0.005, "modules": 0.001}
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["eps"] == 1e-6  # DePT's eps


def test_adafactor_option_trains(tiny_t5_dir):
    from transformers.optimization import Adafactor

    backbone, method = _build(tiny_t5_dir, "pt", optimizer="adafactor")
    optimizer = build_optimizer(method, backbone, TrainConfig())
    assert isinstance(optimizer, Adafactor)
    batch = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    before = method.soft_prompt.detach().clone()
    backbone.loss(batch).backward()
    optimizer.step()
    assert not torch.equal(before, method.soft_prompt)


@pytest.mark.parametrize(("head_lr", "expected"), [(None, 0.003), (0.05, 0.05)])
def test_head_rate_follows_the_method_where_head_lr_is_none(tiny_bert_dir, head_lr, expected):
    """The quick presets' rule: ``head_lr=None`` puts the encoder head at the method's own ``lr``."""
    backbone, method = _build(tiny_bert_dir, "lora", lr="0.003")
    optimizer = build_optimizer(method, backbone, TrainConfig(head_lr=head_lr))
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert rates["head"] == expected
