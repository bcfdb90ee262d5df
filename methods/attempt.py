"""ATTEMPT: Attentional Mixtures of Soft Prompts.

Paper: Asai, Salehi, Peters, Hajishirzi, "ATTEMPT: Parameter-Efficient Multi-task Tuning via Attentional
Mixtures of Soft Prompts", EMNLP 2022, arXiv 2205.11961. Official code: AkariAsai/ATTEMPT
(``attempt/third_party/models/t5/modeling_t5.py``, ``attn_method="sub"``; ``configs/attempt/sinlge_task.json``).
docs/methods/attempt.md.

Frozen source prompts, trained beforehand with PT on source tasks, are mixed per input by a small attention
module; the mixture is added to a trainable target prompt:

    P_1..P_t ∈ ℝ^{l×d}            frozen source prompts (buffers, not parameters; ``transfer_params`` = t·l·d)
    P_{t+1} := P_tgt ∈ ℝ^{l×d}     trainable target prompt (starts as a copy of P_1, ``target_init``)
    x̂ = max_{positions} E(x) ∈ ℝ^{B×d}                 (``summary_over``: "all" = pads included, as the code)
    h = LN( W_up · SiLU( W_down · x̂ ) ) ∈ ℝ^{B×d}       W_down ∈ ℝ^{b_a×d}, W_up ∈ ℝ^{d×b_a}, no biases
    p̂_j = max_{rows} P_j ∈ ℝ^{d}                        j = 1..t+1 (the target prompt is a candidate too)
    a = softmax_j( p̂_j · h / T ) ∈ ℝ^{B×(t+1)}          T = 2087 ≈ d·e (``temperature``)
    P(x) = P_tgt + Σ_{j=1}^{t+1} a_j P_j ∈ ℝ^{B×l×d}     an instance-dependent prompt
    X_enc = [P(x) ; E(x)]

Trainable: ``l·d + 2·d·b_a + 2d``; T5-Base, l=100, b_a=100: 76,800 + 153,600 + 1,536 = 231,936 (docs/methods/attempt.md,
the paper's "232K"). One learning rate for everything (0.3 in the official config; ``lr_attention`` is the
code's optional ``attn_learning_rate``), AdamW, weight decay 0 (the official config sets none, so the Hugging
Face default 0 applies). Attention layers keep PyTorch's default init.

Target-prompt init (``target_init``, ``docs/methods/attempt.md#deviations-from-the-official-code``): the
official single-task path (``run_seq2seq.py`` with ``load_prefix_embeddings`` and ``attn_prefix_tuning``,
``update_prefix_weights_single``) overwrites the target prompt with the **first source prompt** after the
vocabulary draw, so ``"first_source"`` (default) starts ``P_tgt`` as a copy of ``P_1`` (with ``sources=random``:
the first random matrix). ``"vocab"`` keeps a vocabulary draw instead, from token ids below ``vocab_max_id``
(5,000, as the official ``init_prefix_from_vocab``); ``sources=random`` draws its matrices the same way.

Code detail [code AkariAsai/ATTEMPT ``attempt/utils/utils.py`` ``freeze_model_params``]: for ``attn_method="sub"``
it unfreezes only ``attn_W_down``, ``attn_W_up`` and the target prompt, so the LayerNorm's weight and bias seem
to stay at (1, 0) there (they are still saved), which would make 230,400 trainable. ``train_layer_norm=false``
reproduces that; the default follows docs/methods/attempt.md's count (231,936).

Harness decisions [dec] (docs/methods/attempt.md#deviations-from-the-official-code "Single-task harness"):

* ``sources``: comma-separated source task names or paths (resolved by the harness to prompts of PT runs on the
  same backbone); the paper preset uses ``mnli,qnli,qqp,sst2`` ("glue4"; the paper adds SQuAD and ReCoRD).
* ``sources=random``: ``attempt(src=random)``, the architecture-only ablation: ``num_random_sources`` frozen
  sampled-vocabulary matrices made in :meth:`initialize`. The record says ``sources_kind="random"``.
* ``sources=none`` is refused: with only the target prompt as candidate, ``a = 1`` and ATTEMPT degenerates to
  PT with ``2·P_tgt`` and an attention module that never receives a gradient.
* ``summary_over``: the method cannot see the backbone's family, so the choice is a field. Default ``"all"``
  (official T5 behaviour, the max includes pad positions); ``"real_tokens"`` masks pads out (docs/methods/attempt.md's
  choice for non-T5 ports; the quick preset on MiniLM uses it).
* Source prompts must have the target's length ``l`` (they are added row by row).
* Whether the target task is among the sources (``self_transfer``) is for the harness to record: a method
  never knows its task.

On decoder-only models (``bench/backbones/decoder.py``, docs/decoder.md): the row is ``[source ; " Label :" ;
target ; EOS]`` with the loss on the target only, and the virtual tokens go right before the first real
token (``[P ; text ; pads]`` right-padded for training, ``[pads ; P ; text]`` left-padded for generation),
with position ids from the attention mask so the prompt starts at position 0 on either side. During
training and label scoring the rows also hold the target tokens; the backbone therefore gives :meth:`prompt`
the *prefix only* (source and cue): target positions appear as padding (the pad token's embedding, masked
out), as an encoder would see ``[source ; pads]``. Otherwise the instance-dependent prompt, which every
position attends to, would carry the label. ``x̂`` is then the max over the prefix embeddings
(``summary_over="real_tokens"``) or over prefix and padding (``"all"``, the T5 parity mode); the quick-decoder
preset uses ``real_tokens`` and ``T = d·e`` for SmolLM2's d=576.
"""

from __future__ import annotations

from dataclasses import dataclass
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
)
from methods.registry import register_method
from methods.source_prompts import parse_sources, task_sources

GLUE4 = "mnli,qnli,qqp,sst2"


@dataclass
class ATTEMPTConfig(PromptConfig):
    num_tokens: int = 100  # l (target and source prompts)
    attn_dim: int = 100  # b_a
    temperature: float = 2087.0  # T
    summary_over: Literal["all", "real_tokens"] = "all"
    sources: str = GLUE4
    num_random_sources: int = 4  # t when sources=random
    # docs/methods/attempt.md's count; the official freezing code leaves LN at (1, 0)
    train_layer_norm: bool = True
    # first_source: P_tgt starts as a copy of the first source prompt (official single-task path); vocab: a
    # draw of token ids < vocab_max_id (the official init_prefix_from_vocab).
    target_init: Literal["first_source", "vocab"] = "first_source"
    vocab_max_id: int = 5000  # vocabulary draws (target_init=vocab, sources=random) use ids below this
    lr: float = 0.3
    lr_attention: float | None = None  # the official ``attn_learning_rate``; None: same as ``lr``
    weight_decay: float = 0.0  # the official config sets none (Hugging Face default 0)

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.lr_attention is not None and self.lr_attention <= 0:
            raise ValueError(f"lr_attention={self.lr_attention} must be > 0 (or none: same as lr)")
        if self.attn_dim < 1:
            raise ValueError(f"attn_dim={self.attn_dim} must be >= 1")
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature} must be > 0")
        if self.vocab_max_id < 1:
            raise ValueError(f"vocab_max_id={self.vocab_max_id} must be >= 1")
        if self.num_random_sources < 1:
            raise ValueError(f"num_random_sources={self.num_random_sources} must be >= 1")
        kind, _ = parse_sources(self.sources)
        if kind == "none":
            raise ValueError(
                "sources='none' leaves ATTEMPT only its target prompt (a degenerate PT); "
                "allowed: source task names, or 'random' for the architecture ablation"
            )


@register_method
class ATTEMPT(Method):
    name = "attempt"
    paper = (
        "Asai et al., ATTEMPT: Parameter-Efficient Multi-task Tuning via Attentional Mixtures of Soft Prompts, "
        "EMNLP 2022 (arXiv 2205.11961)"
    )
    attach = "input"
    formula = "l·d + 2·d·b_a + 2d (+ t·l·d frozen sources)"
    config_class = ATTEMPTConfig
    requires_sources = True
    source_field: ClassVar[str] = "sources"

    def __init__(self, config: ATTEMPTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        d, length, b = dims.hidden_size, config.num_tokens, config.attn_dim
        self.sources_kind, self.source_names = parse_sources(config.sources)
        self.target_prompt = nn.Parameter(torch.zeros(length, d))  # P_tgt [l, d]
        self.attn_down = nn.Linear(d, b, bias=False)  # W_down
        self.attn_up = nn.Linear(b, d, bias=False)  # W_up
        self.attn_norm = nn.LayerNorm(d)
        self.attn_norm.requires_grad_(config.train_layer_norm)
        # Frozen sources [t, l, d]: a buffer outside the state dict (they are not trained here and the best-
        # checkpoint logic only keeps trainable state); saved_state() adds them back. Sized from the config so
        # that counts are right before the harness loads the real prompts.
        t = len(self.source_names) if self.sources_kind == "tasks" else config.num_random_sources
        self.register_buffer("source_prompts", torch.zeros(t, length, d), persistent=False)
        self._sources_loaded = False
        self._weights_sum: torch.Tensor | None = None  # attention weights summed over the current evaluation
        self._weights_count = 0

    # ---- initialisation -------------------------------------------------------------------------------
    def load_sources(self, prompts: list[torch.Tensor]) -> None:
        c = self.config
        stacked = task_sources(
            prompts, self.sources_kind, c.sources, c.num_tokens, self.dims.hidden_size, self.name
        )
        if stacked is None:
            return
        self.source_prompts = stacked.to(self.target_prompt.device)
        self._sources_loaded = True

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        """Random sources (``sources=random``) first, then ``P_tgt``: a copy of ``P_1`` or a vocabulary draw."""
        c = self.config
        if self.sources_kind == "random":
            randoms = [
                embeddings.embed_random_vocab(c.num_tokens, generator, c.vocab_max_id)
                for _ in range(c.num_random_sources)
            ]
            self.source_prompts = torch.stack(randoms).float().to(self.target_prompt.device)
        elif not self._sources_loaded:
            raise RuntimeError(
                f"attempt: sources={c.sources!r} were never loaded (the harness resolves source names to "
                "prompts before initialize); use sources=random for the ablation"
            )
        with torch.no_grad():
            if c.target_init == "first_source":
                self.target_prompt.copy_(self.source_prompts[0])
            else:
                draw = embeddings.embed_random_vocab(c.num_tokens, generator, c.vocab_max_id)
                self.target_prompt.copy_(draw)

    @property
    def num_sources(self) -> int:
        """t: the number of frozen source prompts."""
        return self.source_prompts.shape[0]

    # ---- forward ----------------------------------------------------------------------------------------
    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    @property
    def pad_positions_matter(self) -> bool:
        return self.config.summary_over == "all"  # the max-pool reads pad positions (official T5 behaviour)

    def attention_weights(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``a`` ``[B, t+1]``: softmax weights over the sources and (last) the target prompt."""
        x = token_embeds  # E(x) [B, s, d]
        if self.config.summary_over == "real_tokens":
            pad = attention_mask.unsqueeze(-1) == 0
            x = x.masked_fill(pad, torch.finfo(x.dtype).min)
        x_hat = x.max(dim=1).values  # [B, d]
        h = self.attn_norm(
            self.attn_up(nn.functional.silu(self.attn_down(x_hat.to(self.attn_down.weight.dtype))))
        )
        p_hat = self._candidates().max(dim=1).values  # [t+1, d]
        return torch.softmax(h @ p_hat.T / self.config.temperature, dim=-1)  # [B, t+1]

    def _candidates(self) -> torch.Tensor:
        sources = self.source_prompts.to(self.target_prompt.dtype)
        return torch.cat([sources, self.target_prompt.unsqueeze(0)])  # [t+1, l, d]

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        a = self.attention_weights(token_embeds, attention_mask)  # [B, t+1]
        if not self.training:
            batch_sum = a.detach().float().sum(0).cpu()
            self._weights_sum = batch_sum if self._weights_sum is None else self._weights_sum + batch_sum
            self._weights_count += a.shape[0]
        mixture = torch.einsum("bj,jld->bld", a, self._candidates())
        return self.target_prompt.unsqueeze(0) + mixture  # P(x) [B, l, d]

    def train(self, mode: bool = True) -> ATTEMPT:
        if not mode:  # a new evaluation pass starts: its mean attention weights go to the record
            self._weights_sum, self._weights_count = None, 0
        return super().train(mode)

    # ---- training ---------------------------------------------------------------------------------------
    def attention_params(self) -> list[nn.Parameter]:
        """W_down, W_up and (with ``train_layer_norm``) the LayerNorm's weight and bias."""
        modules = (self.attn_down, self.attn_up, self.attn_norm)
        return [p for m in modules for p in m.parameters() if p.requires_grad]

    def param_groups(self) -> list[ParamGroup]:
        c = self.config
        lr_attention = c.lr if c.lr_attention is None else c.lr_attention
        return [
            ParamGroup("prompt", [self.target_prompt], c.lr, c.weight_decay),
            ParamGroup("attention", self.attention_params(), lr_attention, c.weight_decay),
        ]

    def counts(self) -> ParamCounts:
        counts = super().counts()
        # Only prompts trained in a source stage are transfer parameters; random stand-ins are not trained.
        counts.transfer_params = self.source_prompts.numel() if self.sources_kind == "tasks" else 0
        counts.breakdown = {
            "target_prompt": self.target_prompt.numel(),
            "attention": sum(p.numel() for p in self.attention_params()),
        }
        return counts

    # ---- saving -----------------------------------------------------------------------------------------
    def saved_state(self) -> dict[str, torch.Tensor]:
        """Trainable state plus the frozen sources, which inference needs (counted in ``transfer_params``)."""
        return {**super().saved_state(), "source_prompts": self.source_prompts.detach().clone()}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        state = dict(state)
        self.source_prompts = state.pop("source_prompts").to(self.target_prompt.device)
        self._sources_loaded = True
        self.load_state_dict(state)

    def record(self) -> dict:
        t = self.num_sources
        prefix = "random" if self.sources_kind == "random" else "source"
        names = self.source_names if len(self.source_names) == t else [f"{prefix}_{i}" for i in range(t)]
        out: dict = {
            "sources": self.config.sources,
            "sources_kind": self.sources_kind,
            "num_sources": t,
            "summary_over": self.config.summary_over,
            "attention_candidates": [*names, "target"],
        }
        if self._weights_count:
            # Mean a over the most recent evaluation pass (at the record after training: the last dev
            # evaluation of the loop, not necessarily the selected checkpoint's).
            out["attention_weights_last_eval"] = (self._weights_sum / self._weights_count).tolist()
        return out
