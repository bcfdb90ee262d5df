"""LoRA: Low-Rank Adaptation, through HF PEFT (a reference row, docs/methods/lora.md).

Paper: Hu, Shen, Wallis, Allen-Zhu, Li, Wang, Wang, Chen, "LoRA: Low-Rank Adaptation of Large Language Models",
ICLR 2022, arXiv 2106.09685. Implementation: ``peft.LoraConfig`` + ``peft.inject_adapter_in_model``, which
replaces the targeted ``nn.Linear`` modules in place, so the backbone's own forward path (T5's encoder called
with ``inputs_embeds``, BERT's classifier) is unchanged; a ``PeftModel`` wrapper is not needed.

Equations: every targeted frozen linear ``W₀ ∈ ℝ^{d_out×d_in}`` becomes

    h = W₀·x + (α/r)·B·A·x,   A ∈ ℝ^{r×d_in} (Kaiming-uniform init),  B ∈ ℝ^{d_out×r} (zeros)

Trainable: ``A`` and ``B`` of every target, ``Σ r·(d_in + d_out)``. Saved: the same tensors (``lora_A``/``lora_B``).

Harness defaults [dec] (the reference table's 3.8M has unknown targets): r=8, α=16, dropout 0.0 (PEFT's
default ``lora_dropout`` is also 0.0), targets ``q,v`` of every attention module. T5-Base: 36 attention modules
(12 encoder self, 12 decoder self, 12 decoder cross) × 2 × 8 × (768+768) = 884,736; ``targets=q,k,v,o,wi,wo``
adds k, o and both FFN matrices: 3,244,032. Targets are roles (``methods.model_parts``), mapped per family to
module names: on BERT ``q,v`` are ``attention.self.query``/``value`` of every layer (MiniLM: 6 × 2 × 8 × 768 =
73,728), never the pooler or the task head. lr 3e-4 as the lineage's other reference rows (docs/methods/lora.md).

On decoder-only Llama-style models (``methods.model_parts``): ``q,v`` are ``self_attn.q_proj``/``v_proj`` of
every layer; ``wi`` is ``mlp.gate_proj`` and ``up_proj``, ``wo`` ``mlp.down_proj``; never the LM head. With
grouped-query attention ``v`` is narrower than ``d``: SmolLM2-135M, ``q,v``: 30 × 8 × ((576+576) + (576+192))
= 460,800.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from methods.base import BackboneDims, MethodConfig
from methods.model_parts import ROLES, linear_parts
from methods.registry import register_method
from methods.wrapping import WrapMethod, parse_names


@dataclass
class LoRAConfig(MethodConfig):
    rank: int = 8  # r
    alpha: float = 16.0  # α
    dropout: float = 0.0
    targets: str = "q,v"  # roles among q,k,v,o,wi,wo
    lr: float = 3e-4
    weight_decay: float = 0.0

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.rank < 1:
            raise ValueError(f"rank={self.rank} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")
        parse_names(self.targets, ROLES, "targets")


@register_method
class LoRA(WrapMethod):
    name = "lora"
    paper = "Hu et al., LoRA: Low-Rank Adaptation of Large Language Models, ICLR 2022 (arXiv 2106.09685)"
    formula = "Σ_targets r·(d_in + d_out)"
    config_class = LoRAConfig

    @classmethod
    def peft_equivalent(cls, config: LoRAConfig, model: nn.Module, task_type):
        """PEFT's LoRA on the same modules (the same roles resolved on ``model``), rank, alpha and dropout."""
        from peft import LoraConfig  # noqa: PLC0415 - peft takes seconds to import: only when its module is built

        roles = set(parse_names(config.targets, ROLES, "targets"))
        return LoraConfig(
            task_type=task_type,
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=[p.name for p in linear_parts(model) if p.role in roles],
        )

    def modify(self, model: nn.Module) -> nn.Module:
        from peft import LoraConfig, inject_adapter_in_model  # noqa: PLC0415 - peft takes seconds to import: only when its module is built

        roles = set(parse_names(self.config.targets, ROLES, "targets"))
        names = [p.name for p in linear_parts(model) if p.role in roles]
        peft_config = LoraConfig(
            r=self.config.rank,
            lora_alpha=self.config.alpha,
            lora_dropout=self.config.dropout,
            target_modules=names,
            bias="none",
        )
        return inject_adapter_in_model(peft_config, model)

    def record(self) -> dict:
        return {**super().record(), "lora_targets": self.config.targets, "lora_backend": "peft"}
