"""BitFit: train only the bias terms (a reference row, METHODS.md §3.10).

Paper: Ben Zaken, Ravfogel, Goldberg, "BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based
Masked Language-models", ACL 2022, arXiv 2106.10199. Lineage config: AkariAsai/ATTEMPT ``attempt/configs/
baselines/bitfit.json`` (lr 3e-4, LM-head bias frozen).

Equations: every selected layer ``y = f(x)`` becomes ``y = f(x) + b`` with ``b ∈ ℝ^{d_out}``; only the ``b`` train.

* **Backbones with native biases (BERT family):** every existing bias of the model trains (attention q/k/v/o,
  both FFN linears, every LayerNorm bias, the embedding LayerNorm and the pooler), as in the paper; the task
  head is the backbone's (``head_params``). ``biases`` is then not used (recorded as ``bias_source=native``).
* **T5 (no biases at all):** zero-initialised biases are added [dec] (so the wrapped model starts exactly as the
  frozen one) to the subset named by ``biases`` (comma-separated):

  ===========  ================================================================  =================
  part         where                                                              T5-Base count
  ===========  ================================================================  =================
  encoder      every encoder linear (q,k,v,o: 4·768; wi: 3,072; wo: 768) × 12     82,944
  decoder      every decoder linear (self + cross q,k,v,o; wi; wo) × 12           119,808
  layernorm    every T5LayerNorm (62 × 768), added after the scale                47,616
  lm_head      the LM head's output (32,128); frozen in the lineage config        32,128
  ===========  ================================================================  =================

  Default ``encoder,decoder`` = 202,752 [dec]; which subset gave the table's 280K is unknown (METHODS.md §3.10).
  Linear biases use ``nn.Linear``'s own ``bias`` slot; LayerNorm biases a forward hook ``y + b``.

* **Llama-style decoders (no linear biases):** as T5: the ``decoder`` part adds zero biases to every linear
  of every layer (``q/k/v/o_proj``, ``gate/up/down_proj``; SmolLM2-135M: 30 × 5,184 = 155,520), ``layernorm``
  a bias after every RMSNorm, ``lm_head`` one on the (tied) LM head; ``encoder`` matches nothing there. A
  decoder that has native biases (Qwen2's q/k/v) takes the native path instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.base import BackboneDims, MethodConfig
from methods.model_parts import layer_norms, linear_parts
from methods.registry import register_method
from methods.wrapping import WrapMethod, parse_names

PARTS = ["encoder", "decoder", "layernorm", "lm_head"]


@dataclass
class BitFitConfig(MethodConfig):
    biases: str = "encoder,decoder"  # parts that get added biases on bias-free models (T5)
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
    formula = "Σ bias sizes (T5: added zero biases, default all encoder+decoder linears)"
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
        if "layernorm" in parts:
            for _, norm in layer_norms(model):
                w = norm.weight
                norm.bitfit_bias = nn.Parameter(torch.zeros(w.shape[-1], device=w.device, dtype=w.dtype))
                norm.register_forward_hook(_layer_norm_bias_hook)
        if "lm_head" in parts:
            head = model.get_output_embeddings()
            if not isinstance(head, nn.Linear):
                raise ValueError("biases=lm_head: the model has no linear LM head")
            _add_bias(head)
        return model

    def record(self) -> dict:
        return {**super().record(), "bias_source": getattr(self, "bias_source", None)}
