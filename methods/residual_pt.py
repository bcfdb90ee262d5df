"""Residual PT: Residual Prompt Tuning.

Paper: Razdaibiedina, Mao, Hou, Khabsa, Lewis, Ba, Almahairi, "Residual Prompt Tuning: Improving Prompt Tuning
with Residual Reparameterization", Findings ACL 2023, arXiv 2305.03937. Official code: arazd/ResidualPrompts
(``prompt_tuner2.py``: ``ResMLP``, ``train.py``). docs/methods/residual_pt.md.

Every prompt row goes through a shallow bottleneck MLP with a LayerNorm and a skip connection (the MLP is shared
across tokens unless ``separate_mlps``):

    P ∈ ℝ^{l×d}
    p'_i = LN( W_up · ReLU(W_down · p_i + b_down) + b_up ) + p_i       W_down ∈ ℝ^{b×d}, W_up ∈ ℝ^{d×b}
    X_enc = [P' ; E(x)] ∈ ℝ^{B×(l+s)×d},   mask [1_{B×l} ; M(x)]

``layer_norm=False`` drops the LN, ``residual=False`` the ``+ p_i``. ``P'`` is computed once per forward over the
``l`` rows and broadcast over the batch (never per example: docs/backbones.md#the-prompt-is-built-once-per-step, PEFT issue 2043).

Trainable (shared MLP): ``l·d + 2·d·b + b + d + 2d``; T5-Base, l=100, b=400: 76,800 + 614,400 + 400 + 768 +
1,536 = 693,904. ``separate_mlps`` multiplies the MLP part by ``l``.

Saved: only ``P'`` (``l·d`` = 76,800): after training the MLP is folded into the prompt, so inference costs what
PT costs. :meth:`saved_state` stores ``P'``; :meth:`load_saved_state` makes the method return that stored
tensor and never run its MLP again.

Defaults (``train.py`` / README): lr 0.3 for prompt and MLP (``mlp_lr`` optional, own parameter group), AdamW
eps 1e-8, weight decay 1e-5, LayerNorm on, ReLU, residual on, prompt from random vocabulary rows. The bottleneck
b=400 is the harness default (the setting implied by the DPT paper's 925K on T5-Large; the repository default is
800) [dec]; the MLP's Linear and LayerNorm layers use PyTorch's default initialisation, as the repository does.

On decoder-only models (``bench/backbones/decoder.py``, docs/decoder.md): the row is ``[source ; " Label :" ;
target ; EOS]`` with the loss on the target only, and the virtual tokens go right before the first real
token (``[P ; text ; pads]`` right-padded for training, ``[pads ; P ; text]`` left-padded for generation),
with position ids from the attention mask so the prompt starts at position 0 on either side. ``P'`` is
computed as on T5 and placed like PT's prompt; nothing else changes (the paper covers T5 and BERT only).
"""

from __future__ import annotations

from dataclasses import dataclass

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
from methods.prompt_init import PromptInit, init_from_config_
from methods.registry import register_method


@dataclass
class ResidualPTConfig(PromptConfig):
    num_tokens: int = 100  # l
    bottleneck: int = 400  # b [dec: harness default, docs/methods/residual_pt.md]
    separate_mlps: bool = False  # one MLP per prompt token instead of one shared MLP
    layer_norm: bool = True
    residual: bool = True
    init: PromptInit = "vocab"
    init_text: str = ""
    init_special_tokens: bool = True  # text init: tokenise with </s> etc., as DePT and PEFT's TEXT init
    lr: float = 0.3  # P
    mlp_lr: float | None = None  # MLP (+ LN); None: the same as lr (the repository's default)
    weight_decay: float = 1e-5
    adam_eps: float = 1e-8

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.bottleneck < 1:
            raise ValueError(f"bottleneck={self.bottleneck} must be >= 1")
        if self.mlp_lr is not None and self.mlp_lr <= 0:
            raise ValueError(f"mlp_lr={self.mlp_lr} must be > 0 (or none: the same as lr)")


class ResMLP(nn.Module):
    """``LN(W_up ReLU(W_down x + b_down) + b_up) (+ x)`` on rows ``[n, d]`` (the repository's ``ResMLP``, MLP1)."""

    def __init__(self, d: int, bottleneck: int, layer_norm: bool, residual: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(d, bottleneck), nn.ReLU(), nn.Linear(bottleneck, d)]
        if layer_norm:
            layers.append(nn.LayerNorm(d))
        self.module = nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        return out + x if self.residual else out


@register_method
class ResidualPT(Method):
    name = "residual_pt"
    paper = "Razdaibiedina et al., Residual Prompt Tuning, Findings ACL 2023 (arXiv 2305.03937)"
    attach = "input"
    formula = "l·d + 2·d·b + b + d + 2d"
    config_class = ResidualPTConfig

    def __init__(self, config: ResidualPTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        d = dims.hidden_size
        self.soft_prompt = nn.Parameter(torch.zeros(config.num_tokens, d))  # P [l, d]
        n_mlps = config.num_tokens if config.separate_mlps else 1
        self.mlps = nn.ModuleList(
            ResMLP(d, config.bottleneck, config.layer_norm, config.residual) for _ in range(n_mlps)
        )
        # Set by load_saved_state: the folded prompt P' [l, d]; when present the MLP is never run again.
        self.register_buffer("folded_prompt", None, persistent=False)

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        init_from_config_(self.soft_prompt, self.config, embeddings, generator)

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def reparameterized_prompt(self) -> torch.Tensor:
        """``P'`` ``[l, d]``: one MLP pass over the ``l`` rows (shared MLP) or one per row (separate MLPs)."""
        if len(self.mlps) == 1:
            return self.mlps[0](self.soft_prompt)
        return torch.cat([mlp(self.soft_prompt[i : i + 1]) for i, mlp in enumerate(self.mlps)])

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.folded_prompt is not None:
            return self.folded_prompt  # [l, d], inference after loading the saved P'
        return self.reparameterized_prompt()  # [l, d]

    def param_groups(self) -> list[ParamGroup]:
        c = self.config
        mlp_lr = c.lr if c.mlp_lr is None else c.mlp_lr
        return [
            ParamGroup("prompt", [self.soft_prompt], c.lr, c.weight_decay),
            ParamGroup("mlp", list(self.mlps.parameters()), mlp_lr, c.weight_decay),
        ]

    def counts(self) -> ParamCounts:
        prompt = self.soft_prompt.numel()
        mlp = sum(p.numel() for p in self.mlps.parameters())
        return ParamCounts(
            trainable_params=prompt + mlp, saved_params=prompt, breakdown={"prompt": prompt, "mlp": mlp}
        )

    def saved_state(self) -> dict[str, torch.Tensor]:
        """Only the folded prompt ``P'`` ``[l, d]`` (``saved_params`` = ``l·d``): the MLP is not needed."""
        with torch.no_grad():
            return {"prompt": self.prompt(None, None).detach().clone()}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        """Use the stored ``P'`` directly from now on (inference only: the MLP no longer takes part)."""
        prompt = state["prompt"]
        if tuple(prompt.shape) != tuple(self.soft_prompt.shape):
            raise ValueError(
                f"saved prompt has shape {tuple(prompt.shape)}; this method expects {tuple(self.soft_prompt.shape)}"
            )
        self.folded_prompt = prompt.detach().clone().to(self.soft_prompt.device, self.soft_prompt.dtype)
