"""ACCEPT: Adaptive Codebook for Composite and Efficient Prompt Tuning.

Paper: Lin, Li, Chen, Chen, Findings EMNLP 2024, arXiv 2410.12847. Official code:
AI-Application-and-Integration-Lab/Accept, files replacing DePT's (``peft/tuners/prompt_tuning_lora.py``:
``PromptEmbeddingLoRA``; ``peft/peft_model.py``: the added prompt; ``train.py``: the optimiser). Facts, defaults
and the side-by-side: ``docs/methods/accept.md``.

DePT's two parts, each built by product quantisation: the width ``d`` is cut into ``K = d/t`` sub-spaces of ``t``
dimensions; each sub-space has a codebook of ``c`` codewords shared by every row, and each row mixes them with
its own weights.

    SCPP (prepended prompt):  W_p ∈ ℝ^{m×K×c},  C_p ∈ ℝ^{K×c×t};   P[j, k] = Σ_c W_p[j, k, c] C_p[k, c]  → P ∈ ℝ^{m×d}
    SCAP (added prompt):      W_a ∈ ℝ^{s×K'×c'}, C_a ∈ ℝ^{K'×c'×t'}; Q[i, k] = Σ_c W_a[i, k, c] C_a[k, c] → Q ∈ ℝ^{s×d}
    E'(x) = E(x) + Q   (row i on position i; no scaling),   X_enc = [P ; E'(x)],  mask [1_m ; M(x)]

Init (the official RANDOM init): Kaiming-uniform with a=√5 on ``W_p``, ``C_p``, ``W_a`` (bounds 1/√(K·c),
1/√(c·t), 1/√(K'·c')) and with a=0 on ``C_a`` (bound √(6/(c'·t'))), as ``nn.init.kaiming_uniform_`` computes
fan-in for these 3-D tensors. Trainable: ``m·K·c + d·c + s·K'·c' + d·c'``; T5-Base with m=60, t=32, c=20,
t'=256, c'=20, s=256: 28,800 + 15,360 + 15,360 + 15,360 = 74,880.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bench.errors import InputError
from methods.base import BackboneDims, EmbeddingSource, Method, ParamCounts, ParamGroup, PromptConfig
from methods.dept import dept_search_space
from methods.prompt_init import kaiming_uniform_
from methods.registry import register_method


@dataclass
class AcceptConfig(PromptConfig):
    num_tokens: int = 60  # m: prepended prompt length (SCPP)
    sub_dim: int = 32  # t: SCPP sub-space width (K = d/t codebooks)
    codewords: int = 20  # c: codewords per SCPP codebook
    added_sub_dim: int = 256  # t': SCAP sub-space width (K' = d/t')
    added_codewords: int = 20  # c': codewords per SCAP codebook
    lr: float = 0.3  # SCPP (W_p, C_p): the official --learning_rate
    lr_added: float = 1e-3  # SCAP (W_a, C_a): the official --added_embedding_lr
    weight_decay: float = 0.0  # the official optimiser is built without the scripts' 1e-2
    adam_eps: float = 1e-6  # transformers' AdamW default, which the official code uses

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        for field in ("sub_dim", "added_sub_dim", "codewords", "added_codewords"):
            if getattr(self, field) < 1:
                raise InputError(f"{field}={getattr(self, field)} must be >= 1")
        if self.lr_added <= 0:
            raise InputError(f"lr_added={self.lr_added} must be > 0")


def sub_width(requested: int, hidden: int) -> int:
    """The sub-space width used: the largest divisor of ``hidden`` not above ``requested`` (``requested`` itself
    when it divides ``hidden``, as every preset's does), so the ``K = hidden/width`` sub-spaces tile the width."""
    return max(w for w in range(1, min(requested, hidden) + 1) if hidden % w == 0)


def quantized(weights: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """Rows ``[n, K·t]`` from per-row weights ``[n, K, c]`` and codebooks ``[K, c, t]``: sub-vector ``k`` of row
    ``j`` is ``Σ_c weights[j, k, c] · codebooks[k, c]``; the ``K`` sub-vectors are concatenated in order."""
    mixed = (weights.unsqueeze(-1) * codebooks.unsqueeze(0)).sum(2)  # [n, K, c, t] summed over c: [n, K, t]
    return mixed.reshape(weights.shape[0], -1)


@register_method
class ACCEPT(Method):
    name = "accept"
    paper = (
        "Lin, Li, Chen, Chen, ACCEPT: Adaptive Codebook for Composite and Efficient Prompt Tuning, "
        "Findings EMNLP 2024 (arXiv 2410.12847)"
    )
    attach = "input"
    formula = "m·(d/t)·c + d·c + s·(d/t')·c' + d·c'"
    config_class = AcceptConfig

    def __init__(self, config: AcceptConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        d, s = dims.hidden_size, dims.max_length
        t, t_added = sub_width(config.sub_dim, d), sub_width(config.added_sub_dim, d)
        self.widths = {"sub_dim": t, "added_sub_dim": t_added}
        c, c_added = config.codewords, config.added_codewords
        self.prompt_weight = nn.Parameter(torch.zeros(config.num_tokens, d // t, c))  # W_p [m, K, c]
        self.prompt_codebook = nn.Parameter(torch.zeros(d // t, c, t))  # C_p [K, c, t]
        self.added_weight = nn.Parameter(torch.zeros(s, d // t_added, c_added))  # W_a [s, K', c']
        self.added_codebook = nn.Parameter(torch.zeros(d // t_added, c_added, t_added))  # C_a [K', c', t']

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        with torch.no_grad():
            for p in (self.prompt_weight, self.prompt_codebook, self.added_weight):
                kaiming_uniform_(p, p.shape[1] * p.shape[2], generator)  # a=√5: bound 1/√fan_in
            fan_in = self.added_codebook.shape[1] * self.added_codebook.shape[2]
            bound = math.sqrt(6 / fan_in)  # a=0 (the official default call): √2·√(3/fan_in)
            self.added_codebook.copy_(
                torch.empty(self.added_codebook.shape).uniform_(-bound, bound, generator=generator)
            )

    @classmethod
    def search_space(cls) -> dict:
        """DePT's grids, as the official scripts sweep them (prompt lr 0.3–0.5, added lr 1e-4–5e-3)."""
        space = dept_search_space()
        return {"lr": space["lr"], "lr_added": space["lr_lowrank"]}

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return quantized(self.prompt_weight, self.prompt_codebook)  # P [m, d]

    def offset(self, length: int) -> torch.Tensor:
        """``Q`` for the first ``length`` positions: ``[length, d]``."""
        if length > self.added_weight.shape[0]:
            raise ValueError(f"input length {length} exceeds ACCEPT's s={self.added_weight.shape[0]} rows")
        return quantized(self.added_weight[:length], self.added_codebook)

    def update_embeds(self, token_embeds: torch.Tensor) -> torch.Tensor:
        return token_embeds + self.offset(token_embeds.shape[1])

    def param_groups(self) -> list[ParamGroup]:
        c = self.config
        return [
            ParamGroup("prompt", [self.prompt_weight, self.prompt_codebook], c.lr, c.weight_decay),
            ParamGroup("added", [self.added_weight, self.added_codebook], c.lr_added, c.weight_decay),
        ]

    def record(self) -> dict:
        """The sub-space widths used (equal to the config's unless a width does not divide ``d``)."""
        return dict(self.widths)

    def counts(self) -> ParamCounts:
        counts = super().counts()
        counts.breakdown = {
            "scpp": self.prompt_weight.numel() + self.prompt_codebook.numel(),
            "scap": self.added_weight.numel() + self.added_codebook.numel(),
        }
        return counts
