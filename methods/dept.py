"""DePT: Decomposed Prompt Tuning.

Paper: Shi & Lipani, "DePT: Decomposed Prompt Tuning for Parameter-Efficient Fine-tuning", ICLR 2024,
arXiv 2309.05173. Official code: ZhengxiangShi/DePT (``peft/tuners/prompt_tuning_lora.py``, ``train.py``).
docs/methods/dept.md.

A PT budget of ``l`` tokens is split into a shorter prompt of ``m`` tokens and a low-rank pair whose product is
an ``s×d`` additive offset to the frozen input embeddings, one row per input position:

    P_s ∈ ℝ^{m×d},  A ∈ ℝ^{s×r},  B ∈ ℝ^{r×d}           (all trainable)
    κ = α / √r        (α = lora_alpha = 8; the root of r is intentional)
    E'(x) = E(x) + κ · (A B)                             broadcast over the batch, [B, s, d]
    X_enc = [P_s ; E'(x)] ∈ ℝ^{B×(m+s)×d},  mask [1_m ; M(x)]

Init: ``P_s`` from the embeddings of the text "Classify this text is postive or not:" (misspelling as in the
released configs) tokenised *with* the tokenizer's special tokens, so on T5 the id pattern ends in ``</s>``, as
DePT's ``prompt_tuning_lora.py`` (``init_special_tokens=false`` drops them), repeated or cut to ``m`` rows; ``A``
Kaiming-uniform (a=√5); ``B`` zeros, so E' = E at step 0.

Trainable: ``m·d + r·(s+d)``; T5-Base with m=60, r=30, s=256: 46,080 + 30,720 = 76,800 (budget-matched to
PT with 100 tokens). The encoder processes ``m + s`` positions instead of ``l + s``: DePT's time saving.

Optimiser (``train.py``): AdamW, eps 1e-6, two groups (``P_s`` at ``lr``; ``A, B`` at ``lr_lowrank``), no
weight decay (the scripts pass 1e-5 but the optimiser is built without it), linear schedule, 500 warm-up steps.
Every input must be padded to exactly ``s``: ``A`` has ``s`` rows.

On decoder-only models (``bench/backbones/decoder.py``, docs/decoder.md): the row is ``[source ; " Label :" ;
target ; EOS]`` with the loss on the target only, and the virtual tokens go right before the first real
token (``[P ; text ; pads]`` right-padded for training, ``[pads ; P ; text]`` left-padded for generation),
with position ids from the attention mask so the prompt starts at position 0 on either side. ``A`` has ``s``
rows, where ``s`` is the length of the whole row, target included (not the encoder input as on T5): the
backbone hands ``update_embeds`` the real tokens left-aligned, so row ``i`` is added to real token ``i`` of the
text (source, cue and target tokens alike) whatever the padding side, and padding gets the remaining rows
(masked out). DePT's own Llama path left-pads to ``s``, where the row a token meets depends on the example's
length; the harness records ``prompt_placement`` instead of reproducing that. Label scoring (the default)
offsets the candidate label tokens with the same rows as in training; greedy generation offsets the prefix
only (tokens produced by ``generate`` are embedded by the model itself, without their rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from methods.base import (
    BackboneDims,
    EmbeddingSource,
    Method,
    ParamCounts,
    ParamGroup,
    PromptConfig,
)
from methods.prompt_init import PromptInit, init_from_config_, kaiming_uniform_
from methods.registry import register_method
from methods.search_space import LogFloat

DEPT_INIT_TEXT = "Classify this text is postive or not:"


@dataclass
class DePTConfig(PromptConfig):
    num_tokens: int = 60  # m
    rank: int = 30  # r
    lora_alpha: float = 8.0  # α
    lowrank_scaling: Literal["alpha/sqrt(r)", "alpha/r"] = "alpha/sqrt(r)"
    init: PromptInit = "text"
    init_text: str = DEPT_INIT_TEXT
    init_special_tokens: bool = True  # text init: tokenise with </s> etc., as DePT and PEFT's TEXT init
    lr: float = 0.3  # P_s
    lr_lowrank: float = 1e-4  # A, B (per-task values in the paper preset)
    weight_decay: float = 0.0
    adam_eps: float = 1e-6

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if not 1 <= self.rank <= dims.hidden_size:
            raise ValueError(f"rank={self.rank} must be between 1 and the hidden size {dims.hidden_size}")
        if self.lr_lowrank <= 0:
            raise ValueError(f"lr_lowrank={self.lr_lowrank} must be > 0")


class DecomposedPrompt(nn.Module):
    """The DePT decomposition ``(P_s, A, B)``; EPT reuses it unchanged."""

    def __init__(self, config: DePTConfig, dims: BackboneDims) -> None:
        super().__init__()
        self.config = config
        d, s = dims.hidden_size, dims.max_length
        self.short_prompt = nn.Parameter(torch.zeros(config.num_tokens, d))  # P_s [m, d]
        self.lora_a = nn.Parameter(torch.zeros(s, config.rank))  # A [s, r]
        self.lora_b = nn.Parameter(torch.zeros(config.rank, d))  # B [r, d]
        r = config.rank
        self.scaling = config.lora_alpha / (math.sqrt(r) if config.lowrank_scaling == "alpha/sqrt(r)" else r)

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        init_from_config_(self.short_prompt, self.config, embeddings, generator)
        with torch.no_grad():
            kaiming_uniform_(self.lora_a, self.lora_a.shape[1], generator)  # A [s, r], fan_in r, as PEFT LoRA
            self.lora_b.zero_()

    def offset(self, length: int) -> torch.Tensor:
        """``κ · A B`` for the first ``length`` positions: ``[length, d]``."""
        if length > self.lora_a.shape[0]:
            raise ValueError(f"input length {length} exceeds DePT's s={self.lora_a.shape[0]} rows")
        return self.scaling * (self.lora_a[:length] @ self.lora_b)

    def lowrank_params(self) -> list[nn.Parameter]:
        return [self.lora_a, self.lora_b]


def dept_search_space() -> dict:

    return {"lr": LogFloat(1 / 3, 3.0, relative=True), "lr_lowrank": LogFloat(1e-4, 5e-3)}


@register_method
class DePT(Method):
    name = "dept"
    paper = "Shi & Lipani, DePT: Decomposed Prompt Tuning for Parameter-Efficient Fine-tuning, ICLR 2024 (arXiv 2309.05173)"
    attach = "input"
    formula = "m·d + r·(s+d)"
    config_class = DePTConfig

    def __init__(self, config: DePTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        self.decomposition = DecomposedPrompt(config, dims)

    @classmethod
    def search_space(cls) -> dict:
        """DePT's grids (docs/methods/dept.md): prompt lr {0.3, 0.4}, low-rank lr {1e-4, 5e-4, 1e-3, 5e-3}.

        The prompt lr is searched relative to the untuned value (×[1/3, 3]: 0.1–0.9 around the paper's 0.3,
        1e-2–9e-2 around the quick preset's 3e-2 on MiniLM); the low-rank lr over the grid's absolute range.
        """
        return dept_search_space()

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        self.decomposition.initialize(embeddings, generator)

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.decomposition.short_prompt  # [m, d]

    def update_embeds(self, token_embeds: torch.Tensor) -> torch.Tensor:
        return token_embeds + self.decomposition.offset(token_embeds.shape[1])

    def param_groups(self) -> list[ParamGroup]:
        c = self.config
        return [
            ParamGroup("prompt", [self.decomposition.short_prompt], c.lr, c.weight_decay),
            ParamGroup("lowrank", self.decomposition.lowrank_params(), c.lr_lowrank, c.weight_decay),
        ]

    def counts(self) -> ParamCounts:
        counts = super().counts()
        counts.breakdown = {
            "short_prompt": self.decomposition.short_prompt.numel(),
            "lowrank": sum(p.numel() for p in self.decomposition.lowrank_params()),
        }
        return counts
