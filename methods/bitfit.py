"""BitFit: train only the bias terms (a reference row, docs/methods/bitfit.md).

Paper: Ben Zaken, Ravfogel, Goldberg, "BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based
Masked Language-models", ACL 2022, arXiv 2106.10199. Lineage config: AkariAsai/ATTEMPT ``attempt/configs/
baselines/bitfit.json`` (lr 3e-4); its ``freeze_bitfit_lm_head`` freezes only the LM head's *weight*, so the
head's bias trains (``docs/methods/bitfit.md#deviations-from-the-official-code``).

Equations: every selected layer ``y = f(x)`` becomes ``y = f(x) + b`` with ``b ∈ ℝ^{d_out}``; only the ``b`` train.

* **Backbones with native biases (BERT family):** every existing bias of the model trains (attention q/k/v/o,
  both FFN linears, every LayerNorm bias, the embedding LayerNorm and the pooler), as in the paper; the task
  head is the backbone's (``head_params``). The other fields are then not used (``bias_source=native``).
* **T5 (no biases at all):** zero-initialised biases are added (so the wrapped model starts exactly as the
  frozen one), as ATTEMPT's code base does:

  * ``biases=encoder``: every encoder linear (q,k,v,o: 4·768; wi: 3,072; wo: 768) × 12 = 82,944;
  * ``biases=decoder``: every decoder linear (self + cross q,k,v,o; wi; wo) × 12 = 119,808;
  * ``layernorm_bias``: every *block* T5LayerNorm, added after the scale: 60 × 768 = 46,080;
  * ``final_layernorm_bias`` (off): the encoder's and decoder's final norms, 2 × 768 = 1,536;
  * ``lm_head_bias``: the LM head's output, 32,128.

  Default: ``encoder,decoder`` + block LayerNorms + LM head = **280,960**, the table's "280K".
  ``layernorm_bias=false lm_head_bias=false`` gives the linear biases only (202,752). Linear biases use
  ``nn.Linear``'s own ``bias`` slot; LayerNorm biases a forward hook ``y + b``.

* **Llama-style decoders (no linear biases):** as T5: ``biases=decoder`` adds zero biases to every linear of
  every layer (``q/k/v/o_proj``, ``gate/up/down_proj``; SmolLM2-135M: 30 × 5,184 = 155,520),
  ``layernorm_bias`` one after each of the two RMSNorms per layer (60 × 576), ``final_layernorm_bias`` one after
  ``model.norm``, ``lm_head_bias`` one on the (tied) LM head; ``encoder`` matches nothing there. A decoder that
  has native biases (Qwen2's q/k/v) takes the native path instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.base import BackboneDims, MethodConfig
from methods.model_parts import block_layer_norms, layer_norms, linear_parts
from methods.registry import register_method
from methods.wrapping import WrapMethod, parse_names

PARTS = ["encoder", "decoder"]


@dataclass
class BitFitConfig(MethodConfig):
    biases: str = "encoder,decoder"  # stacks whose linears get added biases on bias-free models (T5, Llama)
    layernorm_bias: bool = True  # bias after every block LayerNorm (not the final norms), as ATTEMPT's code
    final_layernorm_bias: bool = False  # also after the stacks' final norms (ATTEMPT's code: none)
    lm_head_bias: bool = True  # the LM head's bias (ATTEMPT's code freezes only the head's weight)
    lr: float = 3e-4
    weight_decay: float = 0.0

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        parse_names(self.biases, PARTS, "biases")


def _add_bias(linear: nn.Linear) -> None:
    w = linear.weight
    linear.bias = nn.Parameter(torch.zeros(linear.out_features, device=w.device, dtype=w.dtype))


def _layer_norm_bias_hook(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    return output + module.bitfit_bias.to(output.dtype)


@register_method
class BitFit(WrapMethod):
    name = "bitfit"
    paper = "Ben Zaken et al., BitFit: Simple Parameter-efficient Fine-tuning, ACL 2022 (arXiv 2106.10199)"
    formula = "Σ bias sizes (T5: added zero biases on every linear, block LayerNorm and the LM head)"
    config_class = BitFitConfig

    def modify(self, model: nn.Module) -> nn.Module:
        native = [p for n, p in model.named_parameters() if n.endswith("bias") and not p.requires_grad]
        self.bias_source = "native" if native else "added"
        if native:
            for p in native:
                p.requires_grad_(True)
            return model
        parts = set(parse_names(self.config.biases, PARTS, "biases"))
        for part in linear_parts(model):
            if part.stack in parts:
                _add_bias(part.module)
        c = self.config
        block = {n for n, _ in block_layer_norms(model)}
        for name, norm in layer_norms(model):
            if c.layernorm_bias if name in block else c.final_layernorm_bias:
                w = norm.weight
                norm.bitfit_bias = nn.Parameter(torch.zeros(w.shape[-1], device=w.device, dtype=w.dtype))
                norm.register_forward_hook(_layer_norm_bias_hook)
        if c.lm_head_bias:
            head = model.get_output_embeddings()
            if not isinstance(head, nn.Linear):
                raise ValueError(
                    "lm_head_bias=true: the model has no linear LM head (set lm_head_bias=false)"
                )
            if head.bias is None:
                _add_bias(head)
            else:
                head.bias.requires_grad_(True)
        return model

    def record(self) -> dict:
        return {**super().record(), "bias_source": getattr(self, "bias_source", None)}
