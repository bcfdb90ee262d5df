"""SMoP: Sparse Mixture-of-Prompts.

Paper: Choi, Kim, Park, Mok, Lee, "SMoP: Towards Efficient and Effective Prompt Tuning with Sparse
Mixture-of-Prompts", EMNLP 2023 (aclanthology 2023.emnlp-main.884). Official code: jyjohnchoi/SMoP (PEFT type
``PROMPT_ROUTING``, ``routing_level="prompt"``: ``peft_models/tuners/prompt_routing.py``). Facts, defaults and the
side-by-side with the official forward: ``docs/methods/smop.md``.

k short prompts of l tokens each; a linear router reads the mean of the input's word embeddings and sends each
row to its top-1 prompt, scaled by the router's probability (the scale is what trains the router):

    P_1..P_k ∈ ℝ^{l×d}                 trainable, N(0, 1) (the official nn.Embedding default)
    W ∈ ℝ^{k×d}                        trainable router, no bias, orthogonal init
    x̄ = Σ_i M_i E(x)_i / max(1, Σ_i M_i) ∈ ℝ^{B×d}
    z = x̄ Wᵀ ∈ ℝ^{B×k};  training: z ← z + σ² ε ⊙ sg(z), ε ~ N(0, 1)   (router perturbation)
    p = softmax(z);  e = argmax p  (top-k: the k largest, summed)
    P(x) = p_e · P_e ∈ ℝ^{B×l×d};   X_enc = [P(x) ; E(x)],  mask [1_l ; M(x)]

Trainable: ``k·l·d + k·d``; T5-Base with k=4, l=5: 15,360 + 3,072 = 18,432. The backbone sees l virtual tokens,
so a step costs PT's with l tokens, not k·l. ``batch_mix`` reproduces the official top-1 code, whose broadcast
gives row i ``p_i · Σ_j P_{e_j}`` (summed over the batch) instead of ``p_i · P_{e_i}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bench.errors import InputError
from methods.base import BackboneDims, EmbeddingSource, Method, ParamCounts, PromptConfig
from methods.registry import register_method
from methods.routing import RouterLoad, noisy_router_probs


@dataclass
class SMoPConfig(PromptConfig):
    num_tokens: int = 5  # l: tokens per prompt, the length the backbone sees (README: num_virtual_tokens 5)
    num_experts: int = 4  # k: prompts (README: num_virtual_tokens_full 20 = 4 · 5)
    top_k: int = 1  # prompts per row (README: --topk 1)
    perturb_router: bool = True  # README: --perturb_router True (paper §2.3)
    noise_sigma: float = 1.0  # σ of the official GaussianNoise at routing level "prompt"
    router_dropout: float = 0.2  # on the router logits, only when perturb_router is false (as the official)
    # The official top-1 path's broadcast: row i gets p_i · Σ_j P_{e_j}, the sum over the batch of every row's
    # chosen prompt (docs/methods/smop.md#deviations-from-the-official-code); off: each row its own prompt.
    batch_mix: bool = False
    lr: float = 0.5  # README
    weight_decay: float = 1e-5  # the official T5 Adafactor's
    optimizer: str = "adafactor"  # the official script's for T5 (scale_parameter=False, relative_step=False)

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.num_experts < 1:
            raise InputError(f"num_experts={self.num_experts} must be >= 1")
        if not 1 <= self.top_k <= self.num_experts:
            raise InputError(f"top_k={self.top_k} must be between 1 and num_experts={self.num_experts}")
        if self.noise_sigma < 0:
            raise InputError(f"noise_sigma={self.noise_sigma} must be >= 0")
        if not 0 <= self.router_dropout < 1:
            raise InputError(f"router_dropout={self.router_dropout} must be in [0, 1)")


def mean_embedding(token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """x̄ ``[B, d]``: the mean of ``token_embeds`` ``[B, s, d]`` over real positions (``attention_mask`` ``[B, s]``);
    a row without real tokens gives zeros (the official clamp of the count at 1)."""
    mask = attention_mask.to(token_embeds.dtype).unsqueeze(-1)  # [B, s, 1]
    count = mask.sum(dim=1).clamp(min=1)  # [B, 1]
    return (token_embeds * mask).sum(dim=1) / count


@register_method
class SMoP(Method):
    name = "smop"
    paper = "Choi et al., SMoP: Sparse Mixture-of-Prompts, EMNLP 2023 (2023.emnlp-main.884)"
    attach = "input"
    formula = "k·l·d + k·d"
    config_class = SMoPConfig

    def __init__(self, config: SMoPConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        k, d = config.num_experts, dims.hidden_size
        # [k·l, d], viewed as [k, l, d]: one 2-D table as the official nn.Embedding, since Adafactor factors its
        # second moment over the last two dimensions (a [k, l, d] tensor would be factored per prompt).
        self.prompts = nn.Parameter(torch.zeros(k * config.num_tokens, d))
        self.router = nn.Parameter(torch.zeros(k, d))  # W [k, d], as nn.Linear(d, k, bias=False).weight
        self.router_drop = nn.Dropout(config.router_dropout)
        self.load = RouterLoad(k)

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        with torch.no_grad():
            self.prompts.copy_(torch.randn(self.prompts.shape, generator=generator))
            nn.init.orthogonal_(self.router, generator=generator)

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def route(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Router probabilities ``p`` ``[B, k]`` (with the perturbation or dropout while training)."""
        logits = mean_embedding(token_embeds, attention_mask) @ self.router.T  # [B, k]
        cfg = self.config
        return noisy_router_probs(
            logits, cfg.perturb_router, cfg.noise_sigma, self.training, self.router_drop
        )

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        probs = self.route(token_embeds, attention_mask)  # [B, k]
        values, chosen = torch.topk(probs, k=self.config.top_k, dim=-1)  # [B, top_k] each
        if self.training and torch.is_grad_enabled():
            self.load.add(chosen)
        table = self.prompts.view(self.config.num_experts, self.config.num_tokens, -1)  # [k, l, d]
        picked = table[chosen]  # [B, top_k, l, d]
        if self.config.batch_mix and self.config.top_k == 1:
            return values[:, :, None] * picked[:, 0].sum(dim=0, keepdim=True)  # [B, 1, 1] · [1, l, d]
        return (picked * values[:, :, None, None]).sum(dim=1)  # [B, l, d]

    def counts(self) -> ParamCounts:
        n_prompts, n_router = self.prompts.numel(), self.router.numel()
        total = n_prompts + n_router
        return ParamCounts(total, total, breakdown={"prompts": n_prompts, "router": n_router})

    def record(self) -> dict:
        return {"router_load": self.load.summary()}
