"""PT: Prompt Tuning.

Paper: Lester, Al-Rfou, Constant, "The Power of Scale for Parameter-Efficient Prompt Tuning", EMNLP 2021,
arXiv 2104.08691. Official code: google-research/prompt-tuning (JAX). docs/methods/pt.md.

Equations (the backbone is frozen; only ``P`` trains):

    P ∈ ℝ^{l×d}
    X_enc = [P ; E(x)] ∈ ℝ^{B×(l+s)×d},   mask [1_{B×l} ; M(x)]

Trainable: ``l·d`` (T5-Base, l=100: 76,800). The prompt is built once per step and broadcast over the batch.
Defaults follow the DePT/ATTEMPT lineage on T5-Base: l=100, AdamW, lr 0.3, weight decay 1e-5, prompt
initialised from sampled vocabulary rows (ATTEMPT's ``init_prefix_from_vocab``).

On decoder-only models (``bench/backbones/decoder.py``, docs/decoder.md): the row is ``[source ; " Label :" ;
target ; EOS]`` with the loss on the target only, and the virtual tokens go right before the first real
token (``[P ; text ; pads]`` right-padded for training, ``[pads ; P ; text]`` left-padded for generation),
with position ids from the attention mask so the prompt starts at position 0 on either side. Under causal
attention the prompt rows attend only to earlier prompt rows, never to the text, so their keys and values are
the same for every input (the prompt acts like a learned prefix of the text); every text and target token reads
them. Nothing else changes. The T5-era lr 0.3 is too high here (§2.4); the quick-decoder preset sets its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.base import BackboneDims, EmbeddingSource, Method, PromptConfig
from methods.prompt_init import PromptInit, init_from_config_
from methods.registry import register_method
from methods.search_space import LogFloat


@dataclass
class PTConfig(PromptConfig):
    num_tokens: int = 100  # l
    init: PromptInit = "vocab"
    init_text: str = ""
    init_special_tokens: bool = True  # text init: tokenise with </s> etc., as DePT and PEFT's TEXT init
    lr: float = 0.3
    weight_decay: float = 1e-5

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)


@register_method
class PromptTuning(Method):
    name = "pt"
    paper = "Lester et al., The Power of Scale for Parameter-Efficient Prompt Tuning, EMNLP 2021 (arXiv 2104.08691)"
    attach = "input"
    formula = "l·d"
    config_class = PTConfig

    @classmethod
    def peft_equivalent(cls, config: PTConfig, model: nn.Module, task_type):
        """PEFT's prompt tuning, one prompt on the input (``num_transformer_submodules=1``, as here)."""
        from peft import PromptTuningConfig  # noqa: PLC0415 - peft takes seconds to import: only when its module is built

        return PromptTuningConfig(
            task_type=task_type, num_virtual_tokens=config.num_tokens, num_transformer_submodules=1
        )

    @classmethod
    def search_space(cls) -> dict:
        """The prompt lr, log-uniform over ×[0.1, 10] of the untuned value (docs/methods/pt.md fixes 0.3 on T5;
        §2.4 warns it transfers poorly across families, so the range is wide: 0.03–3 on the paper preset,
        3e-3–0.3 around the quick preset's 3e-2)."""

        return {"lr": LogFloat(0.1, 10.0, relative=True)}

    def __init__(self, config: PTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        self.soft_prompt = nn.Parameter(torch.zeros(config.num_tokens, dims.hidden_size))  # [l, d]

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        init_from_config_(self.soft_prompt, self.config, embeddings, generator)

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.soft_prompt  # [l, d]
