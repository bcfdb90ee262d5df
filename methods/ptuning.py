"""P-tuning: virtual tokens produced by a small prompt encoder, through PEFT's ``PromptEncoder``.

Paper: Liu, Zheng, Du, Ding, Qian, Yang, Tang, "GPT Understands, Too", arXiv 2103.10385 (2021). Implementation:
``peft.PromptEncoder`` built from a ``peft.PromptEncoderConfig`` (MLP reparameterisation) and used as an
``"input"`` method: the backbone places its output like any prompt (T5: in front of the encoder input; BERT:
after ``[CLS]``). A ``PeftModel`` is not used because the seq2seq backbone calls the encoder directly with
``inputs_embeds`` (``bench/backbones/seq2seq.py``), which would bypass ``PeftModel.forward``.
``num_transformer_submodules`` is 1, so the encoder has exactly ``l`` rows (PEFT's seq2seq default of 2
doubles them, docs/records.md#parameter-counts pitfall).

Equations (one pass per step, output shared over the batch, docs/backbones.md#t5-seq2seq):

    E ∈ ℝ^{l×d} (nn.Embedding, N(0, 1) init)
    P = W₃·ReLU(W₂·ReLU(W₁·E + c₁) + c₂) + c₃ ∈ ℝ^{l×d},  W₁ ∈ ℝ^{h×d}, W₂ ∈ ℝ^{h×h}, W₃ ∈ ℝ^{d×h}

Trainable: ``l·d + d·h + h + h·h + h + h·d + d``; T5-Base with l=100, h=d=768: 76,800 + 1,771,776 = 1,848,576.
Saved: only the computed prompt ``P`` (``l·d`` = 76,800), as PEFT saves it; the encoder is dropped after
training. Defaults [dec]: l=100 (PT's budget of prompt positions), h=d (``hidden_size=0`` means d), MLP, lr 1e-3
(the T5-era 0.3 is for a raw prompt and diverges through an MLP), weight decay 0.

On decoder-only models (the paper's own GPT setting) the encoder's ``P`` is placed like every prompt:
right before the first real token under either padding, position ids from the attention mask
(``bench/backbones/decoder.py``); nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.base import BackboneDims, Method, ParamCounts, PromptConfig
from methods.registry import register_method


@dataclass
class PTuningConfig(PromptConfig):
    num_tokens: int = 100  # l
    hidden_size: int = 0  # h; 0 means d
    lr: float = 1e-3
    weight_decay: float = 0.0

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.hidden_size < 0:
            raise ValueError(f"hidden_size={self.hidden_size} must be >= 0 (0 means the model's d)")


@register_method
class PTuning(Method):
    name = "ptuning"
    paper = "Liu et al., GPT Understands, Too (P-tuning), arXiv 2103.10385"
    attach = "input"
    formula = "l·d + d·h + h + h·h + h + h·d + d (saved: l·d)"
    config_class = PTuningConfig

    @classmethod
    def peft_equivalent(cls, config: PTuningConfig, model, task_type):
        """PEFT's P-tuning prompt encoder, one prompt on the input."""
        from peft import PromptEncoderConfig  # noqa: PLC0415 - peft takes seconds to import: only when its module is built

        return PromptEncoderConfig(
            task_type=task_type, num_virtual_tokens=config.num_tokens, num_transformer_submodules=1
        )

    def __init__(self, config: PTuningConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        from peft import PromptEncoder, PromptEncoderConfig  # noqa: PLC0415 - peft takes seconds to import: only when its module is built

        d = dims.hidden_size
        peft_config = PromptEncoderConfig(
            task_type=None,
            num_virtual_tokens=config.num_tokens,
            token_dim=d,
            num_transformer_submodules=1,
            encoder_reparameterization_type="MLP",
            encoder_hidden_size=config.hidden_size or d,
        )
        self.encoder = PromptEncoder(peft_config)
        self.register_buffer("indices", torch.arange(config.num_tokens), persistent=False)
        self.saved_prompt: torch.Tensor | None = None  # set by load_saved_state: inference without the MLP

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.saved_prompt is not None:
            return self.saved_prompt.to(token_embeds.device)
        return self.encoder(self.indices)  # [l, d]

    def counts(self) -> ParamCounts:
        trainable = sum(p.numel() for p in self.encoder.parameters())
        return ParamCounts(
            trainable_params=trainable, saved_params=self.config.num_tokens * self.dims.hidden_size
        )

    def saved_state(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {"prompt": self.encoder(self.indices).detach().clone()}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        self.saved_prompt = state["prompt"].detach().clone()
