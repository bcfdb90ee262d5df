"""LPT: Late Prompt Tuning.

Paper: Liu, Sun, Huang, Qiu, "Late Prompt Tuning: A Late Prompt Could Be Better Than Many Prompts", Findings
EMNLP 2022, arXiv 2210.11292. Official code: xyltt/LPT (``encoder-only/models/modeling_roberta.py``,
``decoder-only/models/modeling_gpt2.py``); RoBERTa-large and GPT-2 large only, no T5. docs/methods/lpt.md.

The prompt enters at an intermediate layer ``L_p`` and depends on the instance: a small generator builds it
from the hidden states after layer ``L_p``. Nothing trainable lives below ``L_p``, so the backbone runs layers
``1..L_p`` under ``torch.no_grad()`` (no autograd graph, no backward there): that is LPT's speed and memory
saving. The backbone owns the layer-by-layer forward; this module only maps ``h`` to ``P(x)``.

Equations (``h = h^{(L_p)} ∈ ℝ^{B×s×d}``, mask ``M(x) ∈ {0,1}^{B×s}``):

    NPG  (naive):    u = pool(h)                                   ∈ ℝ^{B×d}
                     P(x) = Dropout( reshape( W_up · ReLU(W_down u + b_1) + b_2 , l×d ) )
                     W_down ∈ ℝ^{b×d}, W_up ∈ ℝ^{(l·d)×b}          trainable: d·b + b + b·l·d + l·d
    MPPG / APPG:     Z = AdaptivePool_l( W_down h + b_1 ) over the real tokens of each example   ∈ ℝ^{B×l×b}
                     (max pooling for MPPG, average pooling for APPG)
                     P(x) = Dropout( ReLU(Z) W_upᵀ + b_2 ),  W_up ∈ ℝ^{d×b}   trainable: d·b + b + b·d + d
    Layers L_p+1..L run on [P(x) ; h] (T5) or [h_[CLS] ; P(x) ; h_rest] (BERT), mask with 1_l for the prompt.

Counts on T5-Base (d=768, b=128): NPG l=5 593,792; NPG l=10 1,089,152; PPG (any l) 197,504.

From the official code [code]: the generator's dropout is the backbone's hidden dropout (RoBERTa 0.1), applied
after the reshape (NPG) or after ``W_up`` (PPG); PPG pools each example over its real tokens only; defaults
l=5, b=128, NPG, lr 1e-3, weight decay 0.1 on the weight matrices only: as the official optimiser
(``run_roberta.py``), biases (and LayerNorm weights, of which the generator has none) form a group without
decay (``decay_biases=false``; ``docs/methods/lpt.md#deviations-from-the-official-code``), ``L_p`` = mid-depth
(12 of 24, 18 of 36).

T5 port [dec] (docs/methods/lpt.md, every choice a config field or recorded):

* encoder only; ``insert_layer=None`` resolves to ``num_layers // 2`` (6 of 12 on T5-Base, 3 of 6 on MiniLM),
  the resolved value is recorded;
* NPG input ``pool``: T5 has no ``<s>``, so the default is ``"mean"`` (mean of the real-token hidden states);
  ``"first"`` reads position 0 (the official code's ``<s>``; BERT's ``[CLS]``);
* the backbone recomputes T5's relative position bias for length ``l+s`` after insertion (prompt at positions
  ``0..l−1``; text–text distances unchanged) and extends the decoder's cross-attention mask by ``1_l``;
* the generator's linears keep PyTorch's default init (the official init was not verified);
* the prompt depends on the instance, so it cannot be cached for inference: ``saved_params`` is the generator.

Decoder-only (Llama-style, RoPE) port [dec] (``bench/backbones/decoder.py``): ``insert_layer=None`` resolves to
``num_layers // 2`` (15 of 30 on SmolLM2-135M); layers ``1..L_p`` run without gradient on the text alone; the
generator reads the **prefix only** (source and cue, never the target tokens of a training or scoring row,
which would leak the label into a prompt every position attends to); ``P(x)`` goes right before the first real
token and position ids come from the new mask (prompt ``0..l−1``, text after it: RoPE keeps the text's
relative distances). Greedy generation reruns the split forward per new token (no KV cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import BackboneDims, Method, ParamCounts, ParamGroup, PromptConfig
from methods.registry import register_method

Generator = Literal["npg", "mppg", "appg"]
Pool = Literal["mean", "first"]


@dataclass
class LPTConfig(PromptConfig):
    prompt_on_input = False  # a layer prompt: not prepended to the input embeddings
    insert_layer: int | None = None  # L_p: layers run before insertion; None -> num_layers // 2
    num_tokens: int = 5  # l
    bottleneck: int = 128  # b
    generator: Generator = "npg"
    pool: Pool = "mean"  # NPG input: mean of real tokens (T5 port) | first position (<s>/[CLS])
    dropout: float = 0.1  # official: the backbone's hidden dropout, after reshape / W_up
    lr: float = 1e-3
    weight_decay: float = 0.1  # on the weight matrices; see decay_biases
    decay_biases: bool = False  # official: biases and LayerNorm weights are not decayed

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.bottleneck < 1:
            raise ValueError(f"bottleneck={self.bottleneck} must be >= 1")
        if self.generator not in ("npg", "mppg", "appg"):
            raise ValueError(f"generator={self.generator!r} is not one of 'npg', 'mppg', 'appg'")
        if self.pool not in ("mean", "first"):
            raise ValueError(f"pool={self.pool!r} is not one of 'mean', 'first'")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")
        if self.insert_layer is not None and not 1 <= self.insert_layer < dims.num_layers:
            raise ValueError(
                f"insert_layer={self.insert_layer} must be between 1 and {dims.num_layers - 1} "
                f"(the backbone has {dims.num_layers} layers)"
            )


def resolve_insert_layer(config: LPTConfig, dims: BackboneDims) -> int:
    """``L_p``: the configured layer, or mid-depth (at least 1) when unset."""
    if config.insert_layer is not None:
        return config.insert_layer
    return max(1, dims.num_layers // 2)


def adaptive_pool_real_tokens(z: torch.Tensor, mask: torch.Tensor, length: int, kind: str) -> torch.Tensor:
    """Pool each example's real tokens ``z[i, mask[i]]`` (``[n_i, b]``) to ``[length, b]``; returns ``[B, l, b]``.

    As the official code, which slices each example to its length and calls ``AdaptiveMax/AvgPool1d(l)``.
    """
    pool = F.adaptive_max_pool1d if kind == "mppg" else F.adaptive_avg_pool1d
    out = []
    for row, keep in zip(z, mask.bool(), strict=True):
        real = row[keep] if keep.any() else row[:1]  # [n_i, b]; an empty row pools its first position
        out.append(pool(real.t().unsqueeze(0), length).squeeze(0).t())  # [l, b]
    return torch.stack(out)


@register_method
class LatePromptTuning(Method):
    name = "lpt"
    paper = "Liu et al., Late Prompt Tuning, Findings EMNLP 2022 (arXiv 2210.11292)"
    attach = "layer"
    formula = "NPG: d·b + b + b·l·d + l·d; PPG: 2·d·b + b + d"
    config_class = LPTConfig

    def __init__(self, config: LPTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        d, b, n = dims.hidden_size, config.bottleneck, config.num_tokens
        self.insert_layer = resolve_insert_layer(config, dims)
        self.down = nn.Linear(d, b)  # W_down, b_1
        self.up = nn.Linear(b, n * d if config.generator == "npg" else d)  # W_up, b_2
        self.dropout = nn.Dropout(config.dropout)

    @property
    def num_virtual_tokens(self) -> int:
        """``l``: the prompt exists only above ``L_p`` (docs/records.md#throughput counts it there)."""
        return self.config.num_tokens

    def layer_prompt(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``P(x) ∈ ℝ^{B×l×d}`` from ``h^{(L_p)} ∈ ℝ^{B×s×d}`` and the text mask ``[B, s]``."""
        cfg = self.config
        batch, d = hidden.shape[0], hidden.shape[-1]
        if cfg.generator == "npg":
            if cfg.pool == "first":
                u = hidden[:, 0]  # [B, d]
            else:
                m = attention_mask.to(hidden.dtype).unsqueeze(-1)  # [B, s, 1]
                u = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)  # [B, d]
            p = self.up(torch.relu(self.down(u)))  # [B, l·d]
            return self.dropout(p.view(batch, cfg.num_tokens, d))
        z = adaptive_pool_real_tokens(self.down(hidden), attention_mask, cfg.num_tokens, cfg.generator)
        return self.dropout(self.up(torch.relu(z)))  # [B, l, d]

    def param_groups(self) -> list[ParamGroup]:
        """Two AdamW groups as the official optimiser: weight matrices with ``weight_decay``, biases without."""
        c = self.config
        no_decay = [p for n, p in self.named_parameters() if n.endswith("bias") or "norm" in n.lower()]
        keep = {id(p) for p in no_decay}
        decay = [p for p in self.parameters() if id(p) not in keep]
        if c.decay_biases:
            return [ParamGroup("generator", decay + no_decay, c.lr, c.weight_decay)]
        return [
            ParamGroup("generator", decay, c.lr, c.weight_decay),
            ParamGroup("generator_no_decay", no_decay, c.lr, 0.0),
        ]

    def counts(self) -> ParamCounts:
        counts = super().counts()
        counts.breakdown = {
            "down": sum(p.numel() for p in self.down.parameters()),
            "up": sum(p.numel() for p in self.up.parameters()),
        }
        return counts

    def record(self) -> dict:
        return {
            "insert_layer": self.insert_layer,
            "layers_without_grad": self.insert_layer,
            "layers_with_prompt": self.dims.num_layers - self.insert_layer,
            "virtual_tokens_above_insert": self.config.num_tokens,
            "generator": self.config.generator,
            "npg_pool": self.config.pool if self.config.generator == "npg" else None,
        }
