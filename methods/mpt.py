"""MPT: Multitask Prompt Tuning (target stage; the source stage is simplified, see below).

Paper: Wang, Panda, Karlinsky, Feris, Sun, Kim, "Multitask Prompt Tuning Enables Parameter-Efficient Transfer
Learning", ICLR 2023, arXiv 2303.02861. No official code; HF PEFT ships ``MultitaskPromptEmbedding``
(``peft/tuners/multitask_prompt_tuning/``), which this module uses for the prompt itself. docs/methods/mpt.md.

Equations (target stage; the backbone is frozen):

    P* ∈ ℝ^{l×d}   shared prompt,   U ∈ ℝ^{l×R},  V ∈ ℝ^{R×d}   task factors (R = ``rank``; the paper: R = 1,
                                                                 U = u, V = vᵀ)
    P̂ = P* ∘ (U V) ∈ ℝ^{l×d}      (∘: element-wise product)
    X_enc = [P̂ ; E(x)]

All three train. Trainable: ``l·d + R·(l+d)``; T5-Base, l=100, R=1: 76,800 + 100 + 768 = 77,668.

Why PEFT's ``MultitaskPromptEmbedding`` fits: built with ``num_tasks=1``, ``num_transformer_submodules=1``
(PEFT's seq2seq default of 2 would double the prompt rows, docs/records.md#parameter-counts) and called with ``task_ids = 0`` it
returns exactly ``P* ∘ (U V)`` as ``[1, l, d]``; its parameters are ``embedding.weight`` (P*),
``prefix_task_cols`` (U, ``[1, l, R]``) and ``prefix_task_rows`` (V, ``[1, R, d]``). Only its initialisation is
replaced, because it does not fit a single-task run:

* PEFT draws U and V from Normal(0, 0.02), so at step 0 ``P̂`` is ≈ 4·10⁻⁴ of ``P*``'s scale (docs/methods/mpt.md#initialisation
  pitfall). Here ``factor_init="ones"`` [dec]: u = v = 1, so ``P̂ = P*`` at the start. For R > 1 the first rank
  is ones and the others LoRA-style (U's extra columns Normal(0, 0.02), V's extra rows zero), so ``U V = 1``
  exactly and every factor still receives a gradient. ``factor_init="peft"`` keeps PEFT's draw for parity.
* PEFT's source inits read a saved multitask checkpoint (``prompt_embeddings`` + per-task factors) from a file;
  the harness hands source prompts over as tensors instead (``load_sources``).

Source stage, and what differs from the paper [dec, harness simplification]:

* The paper trains single-task teacher prompts on the source tasks and **distils** them into ``P*`` and one
  rank-one factor per source task (logit KL + hidden-state losses [unv]); the target stage then starts from
  ``P*`` and new factors. That distillation is **not implemented**.
* ``sources=<tasks>`` (``source_init="average"``): ``P*`` is the **mean of the source PT prompts** and
  ``u = v = 1`` (the idea of PEFT's ``AVERAGE_SOURCE_TASKS``, applied to undistilled prompts). Recorded as
  ``mpt_variant = "mpt(src=avg:<sources>)"`` with ``source_stage = "average of PT prompts (no distillation)"``.
  This is not the paper's procedure and must not be reported as MPT's paper numbers.
* ``sources=none``: ``P*`` initialised like PT (sampled vocabulary) and ``u = v = 1``: PT with a rank-one
  multiplicative reparameterisation, recorded as ``mpt_variant = "mpt(src=none)"``.
* ``sources=random`` is refused: it would average random matrices, which is no source at all.

On decoder-only models (``bench/backbones/decoder.py``, docs/decoder.md): the row is ``[source ; " Label :" ;
target ; EOS]`` with the loss on the target only, and the virtual tokens go right before the first real
token (``[P ; text ; pads]`` right-padded for training, ``[pads ; P ; text]`` left-padded for generation),
with position ids from the attention mask so the prompt starts at position 0 on either side. ``P̂ = P* ∘
(U V)`` is placed like PT's prompt; the source prompts are PT prompts of the same decoder. Nothing else
changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from methods.attempt import GLUE4
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
from methods.source_prompts import parse_sources, task_sources


@dataclass
class MPTConfig(PromptConfig):
    num_tokens: int = 100  # l
    rank: int = 1  # R (the paper's rank-one factor is R = 1)
    factor_init: Literal["ones", "peft"] = "ones"
    sources: str = GLUE4
    source_init: Literal["average"] = "average"  # harness simplification; no distillation (module docstring)
    init: PromptInit = "vocab"  # P* without sources
    init_text: str = ""
    init_special_tokens: bool = True  # text init: tokenise with </s> etc., as DePT and PEFT's TEXT init
    lr: float = 0.3
    weight_decay: float = 1e-5

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if not 1 <= self.rank <= min(self.num_tokens, dims.hidden_size):
            raise ValueError(f"rank={self.rank} must be between 1 and min(num_tokens, hidden size)")
        kind, _ = parse_sources(self.sources)
        if kind == "random":
            raise ValueError(
                "sources='random' is not defined for MPT (an average of random matrices is no source); "
                "allowed: source task names, or 'none'"
            )


@register_method
class MPT(Method):
    name = "mpt"
    paper = (
        "Wang et al., Multitask Prompt Tuning Enables Parameter-Efficient Transfer Learning, ICLR 2023 "
        "(arXiv 2303.02861)"
    )
    attach = "input"
    formula = "l·d + R·(l+d)"
    config_class = MPTConfig
    requires_sources = True
    source_field: ClassVar[str] = "sources"

    @classmethod
    def peft_equivalent(cls, config: MPTConfig, model, task_type):
        """PEFT's multitask prompt tuning with one task, one prompt on the input."""
        from peft import MultitaskPromptTuningConfig  # noqa: PLC0415 - peft takes seconds to import: only when its module is built

        return MultitaskPromptTuningConfig(
            task_type=task_type,
            num_virtual_tokens=config.num_tokens,
            num_tasks=1,
            num_transformer_submodules=1,
        )

    @classmethod
    def peft_inputs(cls, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """PEFT's MPT forward takes the task of each row: all task 0."""
        ids = batch["input_ids"]
        return {"task_ids": torch.zeros(ids.shape[0], dtype=torch.long, device=ids.device)}

    def __init__(self, config: MPTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        from peft import MultitaskPromptTuningConfig  # noqa: PLC0415 - peft takes seconds to import: only when its module is built
        from peft.tuners.multitask_prompt_tuning import MultitaskPromptEmbedding  # noqa: PLC0415 - peft takes seconds to import: only when its module is built

        self.sources_kind, self.source_names = parse_sources(config.sources)
        peft_config = MultitaskPromptTuningConfig(
            task_type="SEQ_2_SEQ_LM" if dims.family == "seq2seq" else "SEQ_CLS",
            num_virtual_tokens=config.num_tokens,
            token_dim=dims.hidden_size,
            num_transformer_submodules=1,
            num_tasks=1,
            num_ranks=config.rank,
            prompt_tuning_init="RANDOM",  # replaced in initialize(); RANDOM reads no tokenizer or file
        )
        self.embedding = MultitaskPromptEmbedding(peft_config, None)
        self.register_buffer("_indices", torch.arange(config.num_tokens).unsqueeze(0), persistent=False)
        self.register_buffer("_task_ids", torch.zeros(1, dtype=torch.long), persistent=False)
        self._source_mean: torch.Tensor | None = None
        self._num_sources = 0

    @property
    def shared_prompt(self) -> torch.nn.Parameter:
        return self.embedding.embedding.weight  # P* [l, d]

    @property
    def factor_u(self) -> torch.nn.Parameter:
        return self.embedding.prefix_task_cols  # U [1, l, R]

    @property
    def factor_v(self) -> torch.nn.Parameter:
        return self.embedding.prefix_task_rows  # V [1, R, d]

    # ---- initialisation -------------------------------------------------------------------------------
    def load_sources(self, prompts: list[torch.Tensor]) -> None:
        c = self.config
        stacked = task_sources(
            prompts, self.sources_kind, c.sources, c.num_tokens, self.dims.hidden_size, self.name
        )
        if stacked is None:
            return
        self._source_mean = stacked.mean(0)
        self._num_sources = len(prompts)

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        c = self.config
        if self.sources_kind == "tasks":
            if self._source_mean is None:
                raise RuntimeError(
                    f"mpt: sources={c.sources!r} were never loaded (the harness resolves source names to "
                    "prompts before initialize); use sources=none for MPT without sources"
                )
            with torch.no_grad():
                self.shared_prompt.copy_(self._source_mean)  # source_init="average"
        else:
            init_from_config_(self.shared_prompt, c, embeddings, generator)
        with torch.no_grad():
            u, v = self.factor_u, self.factor_v
            if c.factor_init == "peft":
                u.copy_(torch.randn(u.shape, generator=generator) * 0.02)
                v.copy_(torch.randn(v.shape, generator=generator) * 0.02)
            else:  # u = v = 1 on the first rank; extra ranks LoRA-style, so U V = 1 exactly
                u.zero_()
                v.zero_()
                u[:, :, 0] = 1.0
                v[:, 0, :] = 1.0
                if c.rank > 1:
                    u[:, :, 1:] = torch.randn(u[:, :, 1:].shape, generator=generator) * 0.02

    # ---- forward ----------------------------------------------------------------------------------------
    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.embedding(self._indices, self._task_ids)[0]  # P̂ = P* ∘ (U V): [l, d]

    # ---- training ---------------------------------------------------------------------------------------
    def param_groups(self) -> list[ParamGroup]:
        c = self.config
        return [
            ParamGroup("prompt", [self.shared_prompt], c.lr, c.weight_decay),
            ParamGroup("factors", [self.factor_u, self.factor_v], c.lr, c.weight_decay),
        ]

    def counts(self) -> ParamCounts:
        counts = super().counts()
        # The source prompts were trained in a source stage (one l×d prompt each); the average itself trains
        # nothing. Before load_sources, count the configured names.
        t = self._num_sources or (len(self.source_names) if self.sources_kind == "tasks" else 0)
        counts.transfer_params = t * self.config.num_tokens * self.dims.hidden_size
        counts.breakdown = {
            "shared_prompt": self.shared_prompt.numel(),
            "factors": self.factor_u.numel() + self.factor_v.numel(),
        }
        return counts

    def record(self) -> dict:
        c = self.config
        if self.sources_kind == "tasks":
            variant, stage = f"mpt(src=avg:{c.sources})", "average of PT prompts (no distillation)"
        else:
            variant, stage = "mpt(src=none)", "none"
        return {
            "mpt_variant": variant,
            "sources": c.sources,
            "sources_kind": self.sources_kind,
            "num_sources": self._num_sources,
            "source_init": c.source_init if self.sources_kind == "tasks" else "none",
            "source_stage": stage,
            "factor_init": c.factor_init,
            "rank": c.rank,
        }
