"""LAMP: Low-pArameters prompt tuning (prompt decomposition, compressed outer product, average pooling).

Paper: Lan, Xu, Yang, Liang, Guo, Zhao, Wang, "Efficient and Effective Prompt Tuning via Prompt Decomposition and
Compressed Outer Product", NAACL 2025, arXiv 2502.12200. Official code: none released. docs/methods/lamp.md.

What the readable parts of the paper establish: a vanilla soft prompt is decomposed by truncated SVD and only its
rank-``r`` factors ``U[:r]``, ``Q[:r]``, ``V[:r]`` train; a "compressed outer product" module makes the prompt
tokens interact; average pooling shortens the prompt the backbone reads. The paper's equations, the form of the
interaction, the pooling size and its T5-Base settings could not be read, so **what runs here is the harness's
documented placeholder design ``placeholder-v0``**, reported as ``lamp[placeholder-v0]`` (``*`` added when a design
field differs from the variant's), with ``lamp_variant`` in every record:

    P₀ ∈ ℝ^{l×d}                      a PT prompt (``init``), used only to initialise
    P₀ ≈ U diag(q) V                  truncated SVD: U ∈ ℝ^{l×r}, q ∈ ℝ^r, V ∈ ℝ^{r×d}   (trainable)
    S = U diag(q) ∈ ℝ^{l×r}           token factors
    G = softmax_row(cos(S_i, S_j)/τ)  ∈ ℝ^{l×l}  token-token interaction from the factors' outer products
    P_int = (S + G S) V ∈ ℝ^{l×d}     = P + G P, mixed in the r-dimensional space (l²r, not l²d)
    P_out = AvgPool_k(P_int) ∈ ℝ^{(l/k)×d}   mean of each block of k consecutive rows
    X_enc = [P_out ; E(x)] ∈ ℝ^{B×(l/k+s)×d}

Trainable: ``r·(l + d + 1)``; T5-Base with l=100, r=8: 800 + 8 + 6,144 = 6,952. The backbone reads ``l/k``
virtual tokens (50 with k=2). ``interaction="none"`` drops ``G`` (the prompt is the SVD product, pooled).

On every backbone the pooled prompt is placed as PT's (T5: in front; BERT: after ``[CLS]`` or first; decoder:
before the first real token), so nothing family-specific happens here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from methods.base import (
    BackboneDims,
    EmbeddingSource,
    Method,
    ParamCounts,
    ParamGroup,
    PromptConfig,
    check_prompt_fits,
)
from methods.prompt_init import PromptInit, init_from_config_
from methods.registry import register_method


@dataclass
class LAMPConfig(PromptConfig):
    num_tokens: int = 100  # l: rows of the decomposed prompt, before pooling [assumption: PT's length]
    rank: int = 8  # r: kept singular triplets [assumption]
    pool: int = 2  # k: rows averaged into one virtual token; must divide l; 1 = no pooling [assumption]
    interaction: Literal["cosine", "none"] = "cosine"  # the compressed outer product's form [assumption]
    temperature: float = 1.0  # τ of the interaction softmax [assumption]
    init: PromptInit = "vocab"  # how P₀ is drawn before its SVD (PT's default)
    init_text: str = ""
    init_special_tokens: bool = True
    lr: float = 3e-3  # U and V (unit-norm columns/rows) [assumption]
    lr_values: float = 0.3  # q, on the scale of the prompt's singular values [assumption]
    weight_decay: float = 1e-5
    lamp_variant: str = "placeholder-v0"
    # The pooled prompt, not the l rows, is what enters the input: checked below with l/k.
    prompt_on_input: ClassVar[bool] = False

    @property
    def pooled_tokens(self) -> int:
        return self.num_tokens // self.pool

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        length, width = self.num_tokens, dims.hidden_size
        if not 1 <= self.rank <= min(length, width):
            raise ValueError(
                f"rank={self.rank} must be between 1 and min(num_tokens, hidden size) = {min(length, width)}"
            )
        if self.pool < 1 or length % self.pool:
            raise ValueError(f"pool={self.pool} must be >= 1 and divide num_tokens={length}")
        if self.interaction not in ("cosine", "none"):
            raise ValueError(f"interaction={self.interaction!r} is not one of 'cosine', 'none'")
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature} must be > 0")
        if self.lr_values <= 0:
            raise ValueError(f"lr_values={self.lr_values} must be > 0")
        if not self.lamp_variant:
            raise ValueError("lamp_variant must be a non-empty name")
        check_prompt_fits(self.pooled_tokens, dims)


DESIGN_FIELDS = ("interaction", "temperature")
# Known variants: name -> the design they stand for (only the harness's placeholder so far).
VARIANTS: dict[str, LAMPConfig] = {"placeholder-v0": LAMPConfig()}


def lamp_display_name(config: LAMPConfig) -> str:
    """``lamp[placeholder-v0]``; ``*`` added when a design field differs from the variant's defaults; the user's
    own variant name as is. Sizes (``l``, ``r``, ``k``) and rates, which presets set, do not change the label."""
    reference = VARIANTS.get(config.lamp_variant)
    if reference is None:
        return f"lamp[{config.lamp_variant}]"
    ours, theirs = asdict(config), asdict(reference)
    changed = any(ours[f] != theirs[f] for f in DESIGN_FIELDS)
    return f"lamp[{config.lamp_variant}{'*' if changed else ''}]"


def truncated_svd(prompt: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``U [l, r]``, ``q [r]``, ``V [r, d]`` of the best rank-``r`` approximation of ``prompt`` ``[l, d]``,
    computed in float64 on the CPU (so the factors do not depend on the device's SVD routine)."""
    u, s, vh = torch.linalg.svd(prompt.detach().to("cpu", torch.float64), full_matrices=False)
    return u[:, :rank].float(), s[:rank].float(), vh[:rank].float()


def interaction_weights(factors: torch.Tensor, temperature: float) -> torch.Tensor:
    """``G [l, l]``: row softmax of the cosine similarities of the token factors ``S [l, r]`` (their outer
    products ``S Sᵀ`` normalised by the rows' norms), divided by ``τ``."""
    unit = factors / factors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.softmax(unit @ unit.T / temperature, dim=-1)


@register_method
class LAMP(Method):
    name = "lamp"
    paper = (
        "Lan et al., Efficient and Effective Prompt Tuning via Prompt Decomposition and Compressed Outer "
        "Product, NAACL 2025 (arXiv 2502.12200)"
    )
    attach = "input"
    formula = "r·(l + d + 1)"
    config_class = LAMPConfig

    def __init__(self, config: LAMPConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        rank = config.rank
        self.left = nn.Parameter(torch.zeros(config.num_tokens, rank))  # U [l, r]
        self.values = nn.Parameter(torch.zeros(rank))  # q [r]
        self.right = nn.Parameter(torch.zeros(rank, dims.hidden_size))  # V [r, d]

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        """SVD of a PT prompt ``P₀`` drawn as ``init`` says; the factors start as its best rank-``r`` part."""
        initial = torch.zeros(self.config.num_tokens, self.dims.hidden_size)
        init_from_config_(initial, self.config, embeddings, generator)
        u, q, v = truncated_svd(initial, self.config.rank)
        with torch.no_grad():
            for param, value in ((self.left, u), (self.values, q), (self.right, v)):
                param.copy_(value.to(param.device, param.dtype))

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.pooled_tokens

    def param_groups(self) -> list[ParamGroup]:
        c = self.config
        return [
            ParamGroup("factors", [self.left, self.right], c.lr, c.weight_decay),
            ParamGroup("values", [self.values], c.lr_values, c.weight_decay),
        ]

    def interacted(self) -> torch.Tensor:
        """``P_int [l, d]`` before pooling (``U diag(q) V`` itself with ``interaction="none"``)."""
        factors = self.left * self.values  # S = U diag(q): [l, r]
        if self.config.interaction == "cosine":
            factors = factors + interaction_weights(factors, self.config.temperature) @ factors  # (I + G) S
        return factors @ self.right  # [l, d]

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        full = self.interacted()  # [l, d]
        k = self.config.pool
        return full.reshape(full.shape[0] // k, k, full.shape[1]).mean(dim=1)  # [l/k, d]

    def counts(self) -> ParamCounts:
        counts = super().counts()
        counts.breakdown = {"U": self.left.numel(), "q": self.values.numel(), "V": self.right.numel()}
        return counts

    @classmethod
    def display_name_for(cls, config: LAMPConfig) -> str:
        return lamp_display_name(config)  # lamp[placeholder-v0], never a bare "lamp"

    def record(self) -> dict:
        return {"lamp_variant": self.config.lamp_variant, "pooled_tokens": self.config.pooled_tokens}
