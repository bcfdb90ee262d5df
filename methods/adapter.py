"""Adapter: Houlsby-style bottleneck MLPs after sub-layers (a reference row, docs/methods/adapter.md).

Paper: Houlsby, Giurgiu, Jastrzębski, Morrone, de Laroussilhe, Gesmundo, Attariyan, Gelly, "Parameter-Efficient
Transfer Learning for NLP", ICML 2019, arXiv 1902.00751. Lineage config: AkariAsai/ATTEMPT ``attempt/configs/
baselines/adapter.json`` (Compacter code base): reduction factor 32 (b = d/32 = 24 on T5-Base), lr 3e-4, no
extra LayerNorm before/after the adapter, LayerNorms unfrozen, LM head frozen.

Equations, for the output ``h ∈ ℝ^{B×n×d}`` of a sub-layer's output projection (before its dropout and the
block's residual connection):

    h' = h + W_up · σ(W_down · h + b_down) + b_up,   W_down ∈ ℝ^{b×d}, W_up ∈ ℝ^{d×b}

One adapter: ``2·d·b + b + d`` = 37,656 on T5-Base (b=24). Placement [dec]: the ``sublayers`` field
(``self_attn``, ``cross_attn``, ``ffn``); default ``self_attn,ffn`` as in Houlsby (two per block, encoder and
decoder; cross-attention gets none): T5-Base 48 adapters = 1,807,488, plus every T5LayerNorm weight
(62 × 768 = 47,616) with ``train_layer_norms`` = 1,855,104 (≈ the table's 1.9M). On BERT the LayerNorms' weight
and bias train. The count is that of the modules actually built.

Each adapter is a child module of the hooked output projection (``…SelfAttention.o.adapter``,
``…DenseReluDense.wo.adapter``; BERT ``attention.output.dense.adapter``, ``output.dense.adapter``) applied by a
forward hook, so it lives in the model's state dict. Why not PEFT: PEFT has no Houlsby adapter (its "adapter"
methods are LoRA-like reparameterisations of existing weights, docs/methods/index.md#what-peft-provides).

Init (near-identity as in Houlsby): weights ~ N(0, 0.01²), biases 0, as the lineage code base. Activation: the
``activation`` field, default ``gelu_new`` (the tanh approximation of GELU), which the lineage ``adapter.json``
sets as ``non_linearity``; ``swish`` (Compacter's own default), ``relu`` and exact ``gelu`` are options
(``docs/methods/adapter.md#deviations-from-the-official-code``).

On Llama-style decoders the adapters hook ``self_attn.o_proj`` (``self_attn``) and ``mlp.down_proj``
(``ffn``), both ``d``-wide, before the residual; ``train_layer_norms`` trains the RMSNorm scales (no bias).
SmolLM2-135M (d=576, b=18): 60 adapters × 21,330 = 1,279,800, plus 61 × 576 RMSNorm weights = 1,314,936.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.base import BackboneDims, MethodConfig
from methods.model_parts import layer_norms, linear_parts
from methods.registry import register_method
from methods.wrapping import WrapMethod, parse_names

SUBLAYERS = ["self_attn", "cross_attn", "ffn"]
_ACTIVATIONS = {
    "gelu_new": lambda: nn.GELU(approximate="tanh"),  # transformers' gelu_new, the lineage adapter.json's
    "swish": nn.SiLU,
    "relu": nn.ReLU,
    "gelu": nn.GELU,  # exact (erf) GELU
}


@dataclass
class AdapterConfig(MethodConfig):
    reduction_factor: int = 32  # b = d / reduction_factor
    sublayers: str = "self_attn,ffn"
    train_layer_norms: bool = True
    activation: str = "gelu_new"  # gelu_new (tanh GELU, the lineage config) | swish | relu | gelu
    init_std: float = 1e-2
    lr: float = 3e-4
    weight_decay: float = 0.0

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.reduction_factor < 1 or dims.hidden_size // self.reduction_factor < 1:
            raise ValueError(
                f"reduction_factor={self.reduction_factor} must be in [1, {dims.hidden_size}] (b = d / factor)"
            )
        parse_names(self.sublayers, SUBLAYERS, "sublayers")
        parse_names(self.activation, list(_ACTIVATIONS), "activation")


class Adapter(nn.Module):
    """``x + up(σ(down(x)))``: ``[.., d] -> [.., d]`` through a ``b``-wide bottleneck."""

    def __init__(self, d: int, b: int, activation: str, std: float, device, dtype) -> None:
        super().__init__()
        self.down = nn.Linear(d, b, device=device, dtype=dtype)  # [b, d] + [b]
        self.up = nn.Linear(b, d, device=device, dtype=dtype)  # [d, b] + [d]
        self.act = _ACTIVATIONS[activation]()
        if device != torch.device("meta"):
            for lin in (self.down, self.up):
                nn.init.normal_(lin.weight, std=std)
                nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.down(x)))


def _adapter_hook(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    return module.adapter(output)


@register_method
class HoulsbyAdapter(WrapMethod):
    name = "adapter"
    paper = "Houlsby et al., Parameter-Efficient Transfer Learning for NLP, ICML 2019 (arXiv 1902.00751)"
    formula = "#adapters·(2·d·b + b + d) [+ LayerNorms]"
    config_class = AdapterConfig

    def modify(self, model: nn.Module) -> nn.Module:
        sublayers = set(parse_names(self.config.sublayers, SUBLAYERS, "sublayers"))
        d = self.dims.hidden_size
        b = d // self.config.reduction_factor
        self.num_adapters = 0
        for part in linear_parts(model):
            if part.sublayer not in sublayers or part.role not in ("o", "wo"):
                continue
            w = part.module.weight
            part.module.adapter = Adapter(
                d, b, self.config.activation, self.config.init_std, w.device, w.dtype
            )
            part.module.register_forward_hook(_adapter_hook)
            self.num_adapters += 1
        if self.config.train_layer_norms:
            for _, norm in layer_norms(model):
                for p in norm.parameters(recurse=False):
                    p.requires_grad_(True)
        return model

    def record(self) -> dict:
        return {**super().record(), "num_adapters": getattr(self, "num_adapters", None)}
