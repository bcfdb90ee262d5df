"""Full fine-tuning: every backbone parameter trains (a reference row, docs/methods/finetune.md).

No paper of its own; the lineage's baseline config is AkariAsai/ATTEMPT ``attempt/configs/baselines/
finetuning.json``: lr 3e-4, batch 32, warm-up 500 (AdamW here, as for every method of the harness).

Trainable: all parameters of the model, each shared tensor once (T5 ties the input embedding with the LM head):
``N_total`` = 222,903,552 on T5-Base. On BERT-family backbones the task head is the backbone's and is counted
in ``head_params``, so ``trainable_params`` is everything else (MiniLM: 22,713,216 with the pooler). Saved: the
same tensors (the whole fine-tuned model).

On decoder-only models every parameter of the causal LM trains (SmolLM2-135M ties its input embedding and
LM head: 134,515,008 counted once); the loss is the decoder's (target tokens only).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from methods.base import MethodConfig
from methods.registry import register_method
from methods.wrapping import WrapMethod


@dataclass
class FinetuneConfig(MethodConfig):
    lr: float = 3e-4
    weight_decay: float = 0.0


@register_method
class FullFinetune(WrapMethod):
    name = "finetune"
    paper = (
        "full fine-tuning (reference row; settings of AkariAsai/ATTEMPT configs/baselines/finetuning.json)"
    )
    formula = "N_total (all backbone parameters)"
    config_class = FinetuneConfig

    def modify(self, model: nn.Module) -> nn.Module:
        for p in model.parameters():
            p.requires_grad_(True)
        return model
