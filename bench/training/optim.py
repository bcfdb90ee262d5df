"""The trainer's helpers, out of the loop: the optimiser and schedule, and the trainable state it keeps.

One optimiser over the method's parameter groups (each with its own learning rate) plus the task head's
group (``train.head_lr``, or the method's ``lr`` where that is None; decay ``train.head_weight_decay``); linear warm-up, then linear decay or a constant rate (``train.schedule``). The trainable state (method + head, and a wrap method's model
parameters) is what the best-dev checkpoint, resumable snapshots and artifacts hold.
"""

from __future__ import annotations

import torch
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup
from transformers.optimization import Adafactor

from bench.backbones.base import Backbone
from bench.spec import TrainConfig
from methods.base import Method


def trainable_parameters(backbone: Backbone) -> list[torch.nn.Parameter]:
    """Every parameter the optimiser updates: the method's groups and the task head."""
    params = [p for g in backbone.method.param_groups() for p in g.params] + backbone.head_parameters()
    return list({id(p): p for p in params}.values())


def build_optimizer(method: Method, backbone: Backbone, train: TrainConfig) -> torch.optim.Optimizer:
    groups = [
        {"params": g.params, "lr": g.lr, "weight_decay": g.weight_decay, "name": g.name}
        for g in method.param_groups()
        if g.params
    ]
    head = backbone.head_parameters()
    if head:
        groups.append(
            {
                "params": head,
                "lr": train.head_rate(method.config.lr),
                "weight_decay": train.head_weight_decay,
                "name": "head",
            }
        )
    if method.config.optimizer == "adafactor":
        # The prompt-tuning code's Adafactor: fixed lr, no parameter scaling, decay rate 0.8 (docs/methods/pt.md).
        return Adafactor(
            groups, scale_parameter=False, relative_step=False, warmup_init=False, decay_rate=-0.8
        )
    return torch.optim.AdamW(groups, eps=method.config.adam_eps)


def trainable_state(backbone: Backbone) -> dict[str, torch.Tensor]:
    """The trainable state to keep for the best checkpoint: method + head, cloned."""
    state = {f"method.{k}": v for k, v in backbone.method.state_dict().items()}
    head = backbone.head_parameters()
    for i, p in enumerate(head):
        state[f"head.{i}"] = p
    if backbone.method.attach == "wrap":
        trainable = {id(p) for p in trainable_parameters(backbone)}
        for name, p in backbone.model.named_parameters():
            if id(p) in trainable:
                state[f"model.{name}"] = p
    return {k: v.detach().clone() for k, v in state.items()}


def load_trainable_state(backbone: Backbone, state: dict[str, torch.Tensor]) -> None:
    method_state = {k[len("method.") :]: v for k, v in state.items() if k.startswith("method.")}
    backbone.method.load_state_dict(method_state)
    with torch.no_grad():
        for i, p in enumerate(backbone.head_parameters()):
            p.copy_(state[f"head.{i}"])
        params = dict(backbone.model.named_parameters())
        for key, value in state.items():
            if key.startswith("model."):
                params[key[len("model.") :]].copy_(value)


def build_scheduler(optimizer: torch.optim.Optimizer, train: TrainConfig, max_steps: int):
    """Linear warm-up over ``train.warmup_steps``, then (``train.schedule``) linear decay to 0 at ``max_steps``
    or the peak rate kept to the end."""

    if train.schedule == "constant":
        return get_constant_schedule_with_warmup(optimizer, train.warmup_steps)
    return get_linear_schedule_with_warmup(optimizer, train.warmup_steps, max_steps)
