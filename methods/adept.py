"""ADePT: Adaptive Decomposed Prompt Tuning.

Paper: Tang, Hu, Liu, "ADePT: Adaptive Decomposed Prompt Tuning for Parameter-Efficient Fine-tuning", ICLR 2025,
arXiv 2501.03291. Official code: HungerPWAY/ADePT (PEFT type ``PROMPT_TUNING_LORAX``:
``peft/tuners/prompt_tuning_lorax.py`` holds the tensors, ``peft/peft_model.py`` the forward). Facts, defaults and
the side-by-side with the official forward: ``docs/methods/adept.md``.

DePT's position-indexed offset (row ``i`` of ``A·B`` added to whatever token sits at position ``i``) is replaced
by a shallow feed-forward network applied to every input embedding, so the offset follows the token, not the
position:

    P_s ∈ ℝ^{m×d},  A ∈ ℝ^{d×r},  a ∈ ℝ^r,  B ∈ ℝ^{r×d},  b ∈ ℝ^d           (all trainable)
    E'(x) = E(x) + ReLU(Dropout_p(E(x)·A + a))·B + b                       [B, s, d]  (dropout in training only)
    X_enc = [P_s ; E'(x)] ∈ ℝ^{B×(m+s)×d},  mask [1_m ; M(x)]

Init (``docs/methods/adept.md#initialisation``): ``P_s`` from the embeddings of DePT's init text; ``A``
Kaiming-uniform (a=√5) with fan-in ``r`` (PyTorch's fan-in of a ``[d, r]`` tensor), i.e. U(±1/√r); ``a``, ``B``
and ``b`` zeros, so E' = E at step 0 and ADePT starts as PT with ``m`` tokens.

Trainable: ``m·d + 2·d·r + r + d``; T5-Base with m=60, r=19: 46,080 + 29,184 + 19 + 768 = 76,051.
The offset has no row per position, so inputs need no padding to ``s`` and any length works.

On BERT and Llama the network runs on the word embeddings the backbone hands ``update_embeds`` (before BERT adds
its position and type embeddings and LayerNorm; on a decoder the whole row, target tokens included, as for
DePT); it reads only the token itself, so padding side and placement do not change what it computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from methods.base import BackboneDims, EmbeddingSource, Method, ParamCounts, ParamGroup, PromptConfig
from methods.dept import DEPT_INIT_TEXT, dept_search_space
from methods.prompt_init import PromptInit, init_from_config_, kaiming_uniform_
from methods.registry import register_method


@dataclass
class ADePTConfig(PromptConfig):
    num_tokens: int = 60  # m: length of the short prompt P_s
    rank: int = 19  # r: width of the token-wise feed-forward network (README default on T5-Base)
    ffn_dropout: float = 0.1  # dropout on E·A + a before the ReLU, training only (hard-coded 0.1 officially)
    init: PromptInit = "text"  # P_s from the embeddings of init_text, as DePT
    init_text: str = DEPT_INIT_TEXT
    init_special_tokens: bool = True  # text init: tokenise with </s> etc., as DePT (ADePT is a DePT fork)
    lr: float = 0.3  # P_s (the README sweeps 0.3 and 0.4)
    lr_lowrank: float = 1e-4  # A, a, B, b (the official lora_embedding_lr)
    weight_decay: float = 0.0  # the official optimiser is built without the CLI's weight decay
    adam_eps: float = 1e-6  # transformers' AdamW default, which the official code uses

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if not 1 <= self.rank <= dims.hidden_size:
            raise ValueError(f"rank={self.rank} must be between 1 and the hidden size {dims.hidden_size}")
        if not 0.0 <= self.ffn_dropout < 1.0:
            raise ValueError(f"ffn_dropout={self.ffn_dropout} must be in [0, 1)")
        if self.lr_lowrank <= 0:
            raise ValueError(f"lr_lowrank={self.lr_lowrank} must be > 0")


@register_method
class ADePT(Method):
    name = "adept"
    paper = "Tang, Hu, Liu, ADePT: Adaptive Decomposed Prompt Tuning for Parameter-Efficient Fine-tuning, ICLR 2025 (arXiv 2501.03291)"
    attach = "input"
    formula = "m·d + 2·d·r + r + d"
    config_class = ADePTConfig

    def __init__(self, config: ADePTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        d, r = dims.hidden_size, config.rank
        self.short_prompt = nn.Parameter(torch.zeros(config.num_tokens, d))  # P_s [m, d]
        self.ffn_down = nn.Parameter(torch.zeros(d, r))  # A [d, r]
        self.ffn_down_bias = nn.Parameter(torch.zeros(r))  # a [r]
        self.ffn_up = nn.Parameter(torch.zeros(r, d))  # B [r, d]
        self.ffn_up_bias = nn.Parameter(torch.zeros(d))  # b [d]

    @classmethod
    def search_space(cls) -> dict:
        """DePT's space (``docs/methods/adept.md#defaults``: ADePT keeps DePT's protocol and two rates)."""
        return dept_search_space()

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        init_from_config_(self.short_prompt, self.config, embeddings, generator)
        with torch.no_grad():
            kaiming_uniform_(
                self.ffn_down, self.ffn_down.shape[1], generator
            )  # A [d, r]: torch's fan_in is r
            for p in self.ffn_params()[1:]:
                p.zero_()

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.short_prompt  # [m, d]

    def offset(self, token_embeds: torch.Tensor) -> torch.Tensor:
        """``ReLU(Dropout(E·A + a))·B + b`` for embeddings ``[B, s, d]`` -> ``[B, s, d]`` (parameter dtype)."""
        hidden = token_embeds.to(self.ffn_down.dtype) @ self.ffn_down + self.ffn_down_bias  # [B, s, r]
        if self.training and self.config.ffn_dropout > 0:
            hidden = F.dropout(hidden, p=self.config.ffn_dropout)
        return F.relu(hidden) @ self.ffn_up + self.ffn_up_bias  # [B, s, d]

    def update_embeds(self, token_embeds: torch.Tensor) -> torch.Tensor:
        return token_embeds + self.offset(token_embeds).to(token_embeds.dtype)

    def ffn_params(self) -> list[nn.Parameter]:
        return [self.ffn_down, self.ffn_down_bias, self.ffn_up, self.ffn_up_bias]

    def param_groups(self) -> list[ParamGroup]:
        c = self.config
        return [
            ParamGroup("prompt", [self.short_prompt], c.lr, c.weight_decay),
            ParamGroup("ffn", self.ffn_params(), c.lr_lowrank, c.weight_decay),
        ]

    def counts(self) -> ParamCounts:
        counts = super().counts()
        counts.breakdown = {
            "short_prompt": self.short_prompt.numel(),
            "ffn": sum(p.numel() for p in self.ffn_params()),
        }
        return counts
