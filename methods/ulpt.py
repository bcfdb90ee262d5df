"""ULPT: Ultra-Low-Dimensional Prompt Tuning.

Paper: Wu, Hao, Mou, "ULPT: Prompt Tuning with Ultra Low-Dimensional Optimization" (v2: "... via Random
Projection"), arXiv 2502.04501. Official code: MANGA-UOFA/ULPT (PEFT type ``PROMPT_TUNING_LODIM``:
``peft/tuners/prompt_tuning_lodim.py``). Facts, defaults and the side-by-side with the official forward:
``docs/methods/ulpt.md``.

The prompt lives in an ``r``-dimensional space and is lifted to the model's width by a frozen random projection,
then rescaled and shifted per dimension:

    Z ∈ ℝ^{n×r}       trainable, N(0, 1) (the official nn.Embedding default)
    P̃ ∈ ℝ^{r×d}       frozen, U(±√(6/(r+d))) drawn from ``projection_seed``
    s, b ∈ ℝ^d        trainable, ones and zeros
    P = (Z·P̃) ⊙ s + b ∈ ℝ^{n×d}
    X_enc = [P ; E(x)] ∈ ℝ^{B×(n+s)×d},  mask [1_n ; M(x)]

Trainable: ``n·r + 2d``; T5-Base with n=100, r=2: 200 + 1,536 = 1,736.

``P̃`` is not a parameter and is not in the state dict: it is rebuilt on CPU from its seed with its own generator,
so it never depends on what else drew random numbers. The seed is the config's ``projection_seed`` or, when that
is none, the run's seed (the seed of the generator :meth:`initialize` receives, as the official draw follows the
run's ``set_seed``). The run record (:meth:`record`) and the artifact (:meth:`saved_state`, key
``projection_seed``) both carry it, and :meth:`load_saved_state` rebuilds ``P̃`` from the artifact's seed, so
``bench eval`` reproduces the run bit for bit (``docs/methods/ulpt.md#what-trains-and-what-is-frozen``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from methods.base import BackboneDims, EmbeddingSource, Method, PromptConfig
from methods.registry import register_method

SEED_KEY = "projection_seed"


@dataclass
class ULPTConfig(PromptConfig):
    num_tokens: int = 100  # n: prompt length
    rank: int = 2  # r: dimension of the trained prompt space (README default)
    projection_seed: int | None = None  # seed of the frozen projection P̃; none: the run's seed
    lr: float = 0.6  # README default (one group: Z, s, b)
    weight_decay: float = 0.0  # the official optimiser is built without the CLI's 1e-5
    adam_eps: float = 1e-6  # transformers' AdamW default, which the official code uses

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if not 1 <= self.rank <= dims.hidden_size:
            raise ValueError(f"rank={self.rank} must be between 1 and the hidden size {dims.hidden_size}")
        if self.projection_seed is not None and not 0 <= self.projection_seed < 2**63:
            raise ValueError(f"projection_seed={self.projection_seed} must be in [0, 2**63) or none")


def random_projection(rank: int, hidden: int, seed: int) -> torch.Tensor:
    """``P̃`` ``[r, d]``: U(±√(6/(r+d))) (Xavier-uniform bound, as the official code) from its own CPU generator."""
    limit = math.sqrt(6 / (rank + hidden))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.empty(rank, hidden, dtype=torch.float32).uniform_(-limit, limit, generator=generator)


@register_method
class ULPT(Method):
    name = "ulpt"
    paper = "Wu, Hao, Mou, ULPT: Prompt Tuning with Ultra Low-Dimensional Optimization (arXiv 2502.04501)"
    attach = "input"
    formula = "n·r + 2d"
    config_class = ULPTConfig

    def __init__(self, config: ULPTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        d = dims.hidden_size
        self.latent = nn.Parameter(torch.zeros(config.num_tokens, config.rank))  # Z [n, r]
        self.scale = nn.Parameter(torch.ones(d))  # s [d]
        self.shift = nn.Parameter(torch.zeros(d))  # b [d]
        # P̃ [r, d]: frozen and rebuilt from its seed, so not persistent (not in checkpoints, not counted).
        self.register_buffer("projection", torch.zeros(config.rank, d), persistent=False)
        self.seed: int | None = config.projection_seed

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        seed = self.config.projection_seed
        self.build_projection(generator.initial_seed() if seed is None else seed)
        with torch.no_grad():
            self.latent.copy_(torch.randn(self.latent.shape, generator=generator))
            self.scale.fill_(1.0)
            self.shift.zero_()

    def build_projection(self, seed: int) -> None:
        """Fill ``P̃`` from ``seed`` (on whatever device the buffer is)."""
        self.seed = int(seed)
        with torch.no_grad():
            self.projection.copy_(random_projection(self.config.rank, self.dims.hidden_size, self.seed))

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return (self.latent @ self.projection) * self.scale + self.shift  # [n, d]

    def record(self) -> dict:
        return {SEED_KEY: self.seed}

    def saved_state(self) -> dict[str, torch.Tensor]:
        """``Z``, ``s``, ``b`` and the projection's seed (an int64 scalar, not a parameter) that rebuilds ``P̃``."""
        if self.seed is None:
            raise ValueError("ulpt: the projection was never built (initialize first)")
        state = {k: v.detach() for k, v in self.state_dict().items()}
        state[SEED_KEY] = torch.tensor(self.seed, dtype=torch.int64)
        return state

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        """Rebuild ``P̃`` from the saved seed, then load ``Z``, ``s``, ``b`` (a missing seed is a ``KeyError``)."""
        state = dict(state)
        seed = state.pop(SEED_KEY)
        self.build_projection(int(seed.item()))
        self.load_state_dict(state)
