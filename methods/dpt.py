"""DPT: Decomposed Prompt Tuning via Low-Rank Reparameterization (not DePT).

Paper: Xiao, Xu, Li, Lu, Li, "Decomposed Prompt Tuning via Low-Rank Reparameterization", Findings EMNLP 2023,
arXiv 2310.10094. Official code: XYaoooo/DPT (``modeling_t5.py``, ``T5EncoderStack``: ``prefix_first``,
``prefix_second``; ``options.py``). docs/methods/dpt.md.

DPT factorises the **prompt itself** (DePT instead adds a low-rank offset to the input embeddings):

    U ∈ ℝ^{l×b}  (prefix_first),  V ∈ ℝ^{b×d}  (prefix_second),   both Uniform(-0.5, 0.5)
    P = U V ∈ ℝ^{l×d}
    X_enc = [P ; E(x)] ∈ ℝ^{B×(l+s)×d},   mask [1_{B×l} ; M(x)]

Trainable: ``l·b + b·d``; T5-Base with l=100, b=10: 1,000 + 7,680 = 8,680 (T5-Large, d=1024: 11,240, the
abstract's "11.2K"). ``P`` is computed once per forward and broadcast over the batch (docs/backbones.md#the-prompt-is-built-once-per-step).

Defaults (``options.py``): l=100 (``--enc_prompt_tokens``), b=10 (``--bottle_neck``), AdamW lr 0.3, weight
decay 1e-5. The code's 10 % warm-up and its protocol (full train set, validation as dev and test) are not used:
the harness runs DPT with the common schedule and the DePT protocol (docs/protocol.md#common-training-settings) [dec].

On decoder-only models (``bench/backbones/decoder.py``, docs/decoder.md): the row is ``[source ; " Label :" ;
target ; EOS]`` with the loss on the target only, and the virtual tokens go right before the first real
token (``[P ; text ; pads]`` right-padded for training, ``[pads ; P ; text]`` left-padded for generation),
with position ids from the attention mask so the prompt starts at position 0 on either side. ``P = U V``
is placed like PT's prompt; nothing else changes (the paper and code are T5 only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.base import BackboneDims, EmbeddingSource, Method, ParamCounts, PromptConfig
from methods.registry import register_method


@dataclass
class DPTConfig(PromptConfig):
    num_tokens: int = 100  # l
    bottleneck: int = 10  # b (the rank of P)
    init_scale: float = 0.5  # U, V ~ Uniform(-init_scale, init_scale)
    lr: float = 0.3
    weight_decay: float = 1e-5

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.bottleneck < 1:
            raise ValueError(f"bottleneck={self.bottleneck} must be >= 1")
        if self.init_scale <= 0:
            raise ValueError(f"init_scale={self.init_scale} must be > 0")


@register_method
class DPT(Method):
    name = "dpt"
    paper = "Xiao et al., Decomposed Prompt Tuning via Low-Rank Reparameterization, Findings EMNLP 2023 (arXiv 2310.10094)"
    attach = "input"
    formula = "l·b + b·d"
    config_class = DPTConfig

    def __init__(self, config: DPTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        self.prefix_first = nn.Parameter(torch.zeros(config.num_tokens, config.bottleneck))  # U [l, b]
        self.prefix_second = nn.Parameter(torch.zeros(config.bottleneck, dims.hidden_size))  # V [b, d]

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        scale = self.config.init_scale
        with torch.no_grad():
            for p in (self.prefix_first, self.prefix_second):
                p.copy_(torch.rand(p.shape, generator=generator) * 2 * scale - scale)

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.prefix_first @ self.prefix_second  # P = U V: [l, d]

    def counts(self) -> ParamCounts:
        counts = super().counts()
        counts.breakdown = {"U": self.prefix_first.numel(), "V": self.prefix_second.numel()}
        return counts
