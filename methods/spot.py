"""SPoT: Soft Prompt Transfer.

Paper: Vu, Lester, Constant, Al-Rfou, Cer, "SPoT: Better Frozen Model Adaptation through Soft Prompt
Transfer", ACL 2022, arXiv 2110.07904. Code: google-research/prompt-tuning ``prompt_tuning/spot/`` (a saved
prompt loaded as the initialiser via ``configs/prompts/from_file.gin``); re-implementation in AkariAsai/ATTEMPT
``attempt/configs/baselines/spot.json``. docs/methods/spot.md.

Equations (the backbone is frozen; only ``P`` trains):

    source stage:  P_src = argmin_P L_src(P)            (PT on the source task, trained by the harness)
    target stage:  P ← P_src ∈ ℝ^{l×d}, then PT on the target
    X_enc = [P ; E(x)] ∈ ℝ^{B×(l+s)×d},   mask [1_{B×l} ; M(x)]       (identical to PT)

Trainable: ``l·d`` (T5-Base, l=100: 76,800); ``transfer_params``: the source prompt, ``l·d`` (76,800).
Defaults (ATTEMPT's re-implementation): l=100, lr 0.3, AdamW, weight decay 0 (``spot.json`` sets none, so the
Hugging Face default applies; ``docs/methods/spot.md#deviations-from-the-official-code``), source = a PT prompt trained
on MNLI (the harness trains it itself, docs/methods/spot.md#deviations-from-the-official-code single-task harness [dec]). The source must come from
the same backbone (prompts do not transfer across embedding spaces) and have exactly ``l`` rows.

``source`` is one item (``bench/planning/sources.py``): a task name (the exported prompt of a ``pt`` run on it, trained
first if missing) or a ``.safetensors`` prompt file. ``random``/``none`` are refused: SPoT from a random prompt
is plain PT and must not be reported as SPoT (§3.7); run ``pt`` instead.

On decoder-only models (``bench/backbones/decoder.py``, docs/decoder.md): the row is ``[source ; " Label :" ;
target ; EOS]`` with the loss on the target only, and the virtual tokens go right before the first real
token (``[P ; text ; pads]`` right-padded for training, ``[pads ; P ; text]`` left-padded for generation),
with position ids from the attention mask so the prompt starts at position 0 on either side. The source
prompt must be a PT prompt trained on the same decoder (the harness trains it with the target's preset);
nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.base import BackboneDims, EmbeddingSource, ParamCounts
from methods.pt import PromptTuning, PTConfig
from methods.registry import register_method


@dataclass
class SPoTConfig(PTConfig):
    source: str = "mnli"  # the paper's (and ATTEMPT's re-implementation's) source task
    weight_decay: float = 0.0  # spot.json sets none (Hugging Face default 0)
    # ``init``/``init_text`` of PT are unused: the prompt starts as the source prompt.


@register_method
class SPoT(PromptTuning):
    name = "spot"
    paper = "Vu et al., SPoT: Better Frozen Model Adaptation through Soft Prompt Transfer, ACL 2022 (arXiv 2110.07904)"
    attach = "input"
    formula = "l·d (+ l·d transfer)"
    config_class = SPoTConfig
    requires_sources = True
    source_field = "source"
    source_method = "pt"
    max_sources = 1

    def __init__(self, config: SPoTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        self._source: torch.Tensor | None = None

    @classmethod
    def check_sources(cls, names: list[str]) -> None:
        if not names:
            raise ValueError(
                "spot.source is required: a task name with a pt prompt (e.g. sst2) or a .safetensors prompt "
                "file; SPoT from a random prompt is plain PT (use method pt)"
            )
        super().check_sources(names)

    def load_sources(self, prompts: list[torch.Tensor]) -> None:
        self.check_sources([f"#{i}" for i in range(len(prompts))])
        (prompt,) = prompts
        expected = (self.config.num_tokens, self.dims.hidden_size)
        if tuple(prompt.shape) != expected:
            raise ValueError(
                f"spot.source prompt has shape {tuple(prompt.shape)}, but spot.num_tokens={expected[0]} and "
                f"d={expected[1]} need {expected}; set spot.num_tokens to the source's length"
            )
        self._source = prompt.detach().to(torch.float32).clone()

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        if self._source is None:
            raise ValueError("spot.source is required: no source prompt was loaded before initialize")
        with torch.no_grad():
            self.soft_prompt.copy_(self._source)

    def counts(self) -> ParamCounts:
        counts = super().counts()
        counts.transfer_params = self.config.num_tokens * self.dims.hidden_size  # one source prompt
        return counts

    def record(self) -> dict:
        return {"spot_source": self.config.source}
