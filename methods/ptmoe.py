"""PT-MoE: prompt tuning with a decomposed prompt and a mixture-of-experts router.

Paper: Li, Su, Collier, "PT-MoE: An Efficient Finetuning Framework for Integrating Mixture-of-Experts into Prompt
Tuning", arXiv 2505.09519 (decoder LLMs: Llama-3.2). Official repository: ZongqianLi/PT-MoE, which holds a README
and figures but no code (docs/methods/ptmoe.md#paper-and-code). Facts, defaults and deviations:
``docs/methods/ptmoe.md``.

Each of N expert prompts is ``A_i B``: a prompt-specific factor and a factor shared by every expert. A linear
router reads the mean of the input's token embeddings and picks the expert(s) for each row:

    A ∈ ℝ^{N×T×R}  (A_i ∈ ℝ^{T×R}),   B ∈ ℝ^{R×d}                        A_i = U_R Σ_R^{1/2}, B = Σ_R^{1/2} V_Rᵀ
    x̄ = mean of E(x) over real tokens ∈ ℝ^{B×d}                           (SVD of text embeddings E ∈ ℝ^{T×d})
    l = W x̄ + b ∈ ℝ^{B×N},  W ∈ ℝ^{N×d}, b ∈ ℝ^N
    l' = l ⊙ (1 + ε),  ε ~ N(0, σ²)  (training only; l' = l in evaluation)
    w = softmax(l') ⊙ 1[top-k of l'] ∈ ℝ^{B×N}                          (k = 1 by default: one expert per row)
    P(x) = Σ_i w_i A_i B ∈ ℝ^{B×T×d}
    X_enc = [P(x) ; E(x)] ∈ ℝ^{B×(T+s)×d},  mask [1_T ; M(x)]

Trainable: ``N·T·R + R·d + N·d + N``; T5-Base with N=4, T=100, R=10: 4,000 + 7,680 + 3,076 = 14,756.

The router's choices in training forwards are counted by :class:`RouterLoad`; ``record()`` returns
``{"router_load": {"experts": N, "rows": n, "share": [...]}}`` so a run's record says whether routing collapsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bench.errors import InputError
from methods.base import BackboneDims, EmbeddingSource, Method, ParamCounts, PromptConfig
from methods.registry import register_method
from methods.routing import RouterLoad


@dataclass
class PTMoEConfig(PromptConfig):
    num_tokens: int = 100  # T: prompt length (every expert's)
    num_experts: int = 4  # N
    rank: int = 10  # R: the low-rank dimension shared by A_i and B
    top_k: int = 1  # experts kept per row (the indicator of w)
    noise_std: float = 1.0  # σ of the router's multiplicative training noise
    init_text: str = ""  # text whose embeddings' SVD initialises A_i and B; "" samples vocabulary rows
    lr: float = 0.3
    weight_decay: float = 1e-5

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.num_experts < 1:
            raise InputError(f"num_experts={self.num_experts} must be >= 1")
        limit = min(self.num_tokens, dims.hidden_size)
        if not 1 <= self.rank <= limit:
            raise InputError(
                f"rank={self.rank} must be between 1 and min(num_tokens, hidden size) = {limit} "
                "(A_i and B start from the rank-R SVD of T text embeddings)"
            )
        if not 1 <= self.top_k <= self.num_experts:
            raise InputError(f"top_k={self.top_k} must be between 1 and num_experts={self.num_experts}")
        if not self.noise_std >= 0:
            raise InputError(f"noise_std={self.noise_std} must be >= 0")


def svd_factors(embeds: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(U_R Σ_R^{1/2} [T, R], Σ_R^{1/2} V_Rᵀ [R, d])`` of ``embeds`` ``[T, d]``: their product is the best
    rank-R approximation of the embeddings (computed in float32 on the CPU, so any device gives the same start)."""
    u, s, vh = torch.linalg.svd(embeds.detach().float().cpu(), full_matrices=False)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root.unsqueeze(1) * vh[:rank]


@register_method
class PTMoE(Method):
    name = "ptmoe"
    paper = (
        "Li, Su, Collier, PT-MoE: An Efficient Finetuning Framework for Integrating Mixture-of-Experts into "
        "Prompt Tuning (arXiv 2505.09519)"
    )
    attach = "input"
    formula = "N·T·R + R·d + N·d + N"
    config_class = PTMoEConfig

    def __init__(self, config: PTMoEConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        n, t, r, d = config.num_experts, config.num_tokens, config.rank, dims.hidden_size
        self.experts = nn.Parameter(torch.zeros(n, t, r))  # A [N, T, R]
        self.shared = nn.Parameter(torch.zeros(r, d))  # B [R, d]
        self.router = nn.Linear(d, n)  # W [N, d], b [N]
        self.router_load = RouterLoad(n)

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        c = self.config
        if c.init_text:
            text = embeddings.embed_text(c.init_text, c.num_tokens, special_tokens=True)
        else:
            text = embeddings.embed_random_vocab(c.num_tokens, generator)
        a, b = svd_factors(text, c.rank)
        bound = 1 / math.sqrt(self.dims.hidden_size)  # nn.Linear's default, drawn from the run's generator
        with torch.no_grad():
            self.experts.copy_(a.unsqueeze(0).expand_as(self.experts))  # every A_i = U_R Σ_R^{1/2}
            self.shared.copy_(b)
            for p in self.router.parameters():
                p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=generator))
        self.router_load.reset()

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def routing(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``w`` ``[B, N]``: the softmax of the (noisy, in training) logits kept on each row's top-k experts."""
        mask = attention_mask.unsqueeze(-1).to(token_embeds.dtype)  # [B, s, 1]
        mean = (token_embeds * mask).sum(1) / mask.sum(1).clamp(min=1)  # x̄ [B, d]
        logits = self.router(mean.to(self.router.weight.dtype))  # l [B, N]
        if self.training and self.config.noise_std > 0:
            noise = torch.randn(logits.shape, device=logits.device, dtype=logits.dtype)
            logits = logits * (1 + self.config.noise_std * noise)  # l' = l ⊙ (1 + ε)
        chosen = logits.topk(self.config.top_k, dim=-1).indices  # [B, k]
        if self.training:
            self.router_load.add(chosen)
        keep = torch.zeros_like(logits).scatter_(1, chosen, 1.0)
        return torch.softmax(logits, dim=-1) * keep

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        w = self.routing(token_embeds, attention_mask)  # [B, N]
        mixed = torch.einsum("bn,ntr->btr", w, self.experts)  # Σ_i w_i A_i [B, T, R]
        return mixed @ self.shared  # P(x) [B, T, d]

    def counts(self) -> ParamCounts:
        counts = super().counts()
        counts.breakdown = {
            "experts": self.experts.numel(),
            "shared": self.shared.numel(),
            "router": sum(p.numel() for p in self.router.parameters()),
        }
        return counts

    def record(self) -> dict:
        return {"router_load": self.router_load.summary()}
