"""XPrompt: prompt tuning, hierarchical structured pruning, rewinding.

Paper: Ma, Zhang, Ren, Wang, Wang, Wu, Quan, Song, "XPrompt: Exploring the Extreme of Prompt Tuning", EMNLP 2022,
arXiv 2210.04457. No public implementation is known. docs/methods/xprompt.md. The backbone stays frozen throughout.

Three stages (``training_stages``; the trainer runs them, calling ``begin_stage`` in between):

1. **Prompt tuning**: vanilla PT, ``P ∈ ℝ^{l×d}``, ``X_enc = [P ; E(x)]`` (``max_steps`` steps, PT's budget).
2. **Hierarchical structured pruning** (in ``begin_stage``, no optimiser steps):
   token level first, then piece level. Token mask ``γ ∈ {0,1}^l``, piece mask ``ζ ∈ {0,1}^{l×k}`` with each of
   the ``k`` pieces ``d/k`` wide; masked prompt ``P̃_i = γ_i · (ζ_i ⊗ 1_{d/k}) ⊙ P_i``.
   Importance (first-order mask-gradient form) [unv: docs/methods/xprompt.md's reading of the paper, not checked against
   the PDF]: ``I_i = E_x |∂L/∂γ_i|`` at ``γ = 1``, i.e. ``|Σ_j P_ij ∂L/∂P_ij|`` averaged over ``score_batches``
   training batches (absolute value per batch, then the mean); a piece's score is the same sum over its
   ``d/k`` entries. The ``round(ρ_tok · l)`` lowest-scoring tokens are removed; then, scored again on the
   shortened prompt, the ``round(ρ_piece · l_kept · k)`` lowest-scoring pieces among the kept tokens (ranked
   over all kept tokens together [dec]) are zeroed.
3. **Rewinding** (weight rewinding, Renda et al. 2020): the surviving entries are reset to their stage-1
   *final* values and retrained with the masks fixed (``max_steps`` steps, PT's budget again).

Harness decisions [dec] (docs/methods/xprompt.md#deviations-from-the-official-code "harness knobs"):

* Pruned tokens leave the sequence: stage 3 prepends ``l_kept`` virtual tokens (``X_enc = [P̃ ; E(x)]``,
  ``l_kept + s`` encoder positions). Pruned pieces stay in the ``[l_kept, d]`` tensor as zeros; the forward pass
  multiplies by the piece mask, so their gradient is exactly zero, AdamW never moves them (zero moments, decay
  of zero is zero) and they stay zero.
* ``rounds`` > 1 repeats prune + rewind-retrain: after round ``r`` of ``R`` the cumulative pruned counts are
  ``round(ρ_tok · l · r/R)`` tokens and ``round(ρ_piece · l_kept · k · r/R)`` pieces; every round scores with the
  latest trained values and rewinds to the stage-1 final values.
* Importance is scored with the backbone in evaluation mode (no dropout) on batches drawn from the training
  split by a generator of their own (``bench/training/stages.py``).
* Default ratios: ρ_tok = 0.2 and ρ_piece = 0.25, mid-points of docs/methods/xprompt.md's search grids {0.1, 0.2, 0.3, 0.5}
  and {0.1, 0.25, 0.5}; the paper's per-task values are not available.
* Dev evaluation and best-checkpoint selection happen in the final stage only (``bench/training/stages.py``).

Counts (``docs/methods/xprompt.md#deviations-from-the-official-code``): ``trainable_params`` is what stage 1
trains, ``l·d`` (T5-Base, l=100: 76,800), as the paper reports it; ``saved_params`` is the surviving entries
after pruning, ``(kept pieces) · d/k`` (:meth:`saved_state` stores the kept token indices, the piece mask and
only the surviving values). The per-stage record (``stages``) gives each stage's own trainable count
(:meth:`stage_trainable_params`: the surviving entries in the retraining stages). Optimiser as PT: AdamW, lr 0.3, weight decay 1e-5.

On decoder-only models (``bench/backbones/decoder.py``, docs/decoder.md): the row is ``[source ; " Label :" ;
target ; EOS]`` with the loss on the target only, and the virtual tokens go right before the first real
token (``[P ; text ; pads]`` right-padded for training, ``[pads ; P ; text]`` left-padded for generation),
with position ids from the attention mask so the prompt starts at position 0 on either side. Stage 3
places the ``l_kept`` surviving virtual tokens the same way (position ids start at 0 at the first kept token);
importance scores use the decoder's loss, i.e. the target tokens only. Nothing else changes.
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
    PromptConfig,
    StageContext,
    TrainingStage,
)
from methods.prompt_init import PromptInit, init_from_config_
from methods.registry import register_method


@dataclass
class XPromptConfig(PromptConfig):
    num_tokens: int = 100  # l
    init: PromptInit = "vocab"
    init_text: str = ""
    init_special_tokens: bool = True  # text init: tokenise with </s> etc., as DePT and PEFT's TEXT init
    token_prune_ratio: float = 0.2  # ρ_tok [dec: docs/methods/xprompt.md searches {0.1, 0.2, 0.3, 0.5}]
    piece_prune_ratio: float = 0.25  # ρ_piece [dec: docs/methods/xprompt.md searches {0.1, 0.25, 0.5}]
    num_pieces: int = 16  # k pieces per token (T5-Base: 48 dims each)
    rounds: int = 1  # prune + rewind-retrain rounds
    score_batches: int = 32  # training batches averaged for the importance scores
    lr: float = 0.3
    weight_decay: float = 1e-5

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        for name in ("token_prune_ratio", "piece_prune_ratio"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name}={value} must be in [0, 1)")
        if round(self.token_prune_ratio * self.num_tokens) >= self.num_tokens:
            raise ValueError(
                f"token_prune_ratio={self.token_prune_ratio} would prune all {self.num_tokens} tokens"
            )
        if self.num_pieces < 1 or dims.hidden_size % self.num_pieces:
            raise ValueError(
                f"num_pieces={self.num_pieces} must divide the hidden size {dims.hidden_size} evenly"
            )
        if self.rounds < 1:
            raise ValueError(f"rounds={self.rounds} must be >= 1")
        if self.score_batches < 1:
            raise ValueError(f"score_batches={self.score_batches} must be >= 1")


@register_method
class XPrompt(Method):
    name = "xprompt"
    paper = "Ma et al., XPrompt: Exploring the Extreme of Prompt Tuning, EMNLP 2022 (arXiv 2210.04457)"
    attach = "input"
    formula = "l·d (stage 1); surviving entries after pruning"
    config_class = XPromptConfig

    def __init__(self, config: XPromptConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        n, k = config.num_tokens, config.num_pieces  # l, k
        self.soft_prompt = nn.Parameter(torch.zeros(n, dims.hidden_size))  # P [l_kept, d] (l before pruning)
        # ζ over the kept tokens [l_kept, k] (1 = kept); γ is implicit: pruned tokens are gone from soft_prompt.
        self.register_buffer("piece_mask", torch.ones(n, k), persistent=False)
        self.register_buffer("rewind_prompt", None, persistent=False)  # stage-1 final values [l, d]
        self.kept_tokens: list[int] = list(range(n))  # original indices of the rows of soft_prompt
        self.kept_pieces = n * k  # ζ's sum, as a plain int so counts work on the meta device
        self.rounds_done = 0
        self.token_importance: list[float] = []  # last round's token scores, for the record

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        init_from_config_(self.soft_prompt, self.config, embeddings, generator)

    # ---- forward ------------------------------------------------------------------------------------------
    @property
    def num_virtual_tokens(self) -> int:
        return self.soft_prompt.shape[0]  # l, then l_kept

    def _expanded_mask(self) -> torch.Tensor:
        """ζ ⊗ 1_{d/k}: ``[l_kept, d]``."""
        width = self.dims.hidden_size // self.config.num_pieces
        return self.piece_mask.repeat_interleave(width, dim=1)

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.soft_prompt * self._expanded_mask()  # P̃ [l_kept, d]; exact P while nothing is pruned

    # ---- stages -------------------------------------------------------------------------------------------
    def training_stages(self, max_steps: int) -> list[TrainingStage]:
        retrain = [TrainingStage(f"rewind_retrain_{r}", max_steps) for r in range(1, self.config.rounds + 1)]
        return [TrainingStage("prompt_tuning", max_steps), *retrain]

    def begin_stage(self, index: int, context: StageContext) -> None:
        """Prune (token level, then piece level) with the latest trained values, then rewind to stage 1."""
        c = self.config
        if self.rewind_prompt is None:  # the end of stage 1: keep its final values as the rewind source
            self.rewind_prompt = self.soft_prompt.detach().clone()
        r, rounds = index, c.rounds
        # Token level.
        target = round(c.token_prune_ratio * c.num_tokens * r / rounds)
        n_tokens = target - (c.num_tokens - len(self.kept_tokens))
        scores = self._importance(context, by_piece=False)  # [l_kept]
        self.token_importance = [float(f"{s:.6g}") for s in scores.tolist()]
        drop = set(torch.argsort(scores, stable=True)[:n_tokens].tolist())
        keep = [i for i in range(len(self.kept_tokens)) if i not in drop]
        self.kept_tokens = [self.kept_tokens[i] for i in keep]
        self.piece_mask = self.piece_mask[keep]
        self._set_prompt(self.soft_prompt.detach()[keep])  # shorter sequence for the piece scores
        # Piece level, among the kept tokens.
        k = c.num_pieces
        target = round(c.piece_prune_ratio * len(self.kept_tokens) * k * r / rounds)
        n_pieces = target - (len(self.kept_tokens) * k - int(self.piece_mask.sum()))
        if n_pieces > 0:
            piece_scores = self._importance(context, by_piece=True)  # [l_kept, k]
            piece_scores = piece_scores.masked_fill(self.piece_mask.cpu() == 0, float("inf")).flatten()
            mask = self.piece_mask.flatten().clone()
            mask[torch.argsort(piece_scores, stable=True)[:n_pieces]] = 0
            self.piece_mask = mask.view(-1, k)
        self.kept_pieces = int(self.piece_mask.sum())
        # Rewind: the stage-1 final values of the kept tokens, masked.
        self._set_prompt(self.rewind_prompt[self.kept_tokens] * self._expanded_mask())
        self.rounds_done = r

    def _importance(self, context: StageContext, by_piece: bool) -> torch.Tensor:
        """``E_batches |Σ_j P_ij ∂L/∂P_ij|`` per token ``[l_kept]`` or per piece ``[l_kept, k]``."""
        total = torch.zeros(self.piece_mask.shape if by_piece else self.piece_mask.shape[:1])
        for _ in range(self.config.score_batches):
            loss = context.loss(next(context.batches))
            (grad,) = torch.autograd.grad(loss, self.soft_prompt)
            contrib = (self.soft_prompt.detach() * grad).float()  # pruned entries: grad 0
            if by_piece:
                contrib = contrib.view(contrib.shape[0], self.config.num_pieces, -1)
            total += contrib.sum(-1).abs().cpu()
        return total / self.config.score_batches

    def _set_prompt(self, values: torch.Tensor) -> None:
        self.soft_prompt = nn.Parameter(values.detach().clone())

    # ---- counts, record, saving ---------------------------------------------------------------------------
    def surviving_entries(self) -> int:
        return self.kept_pieces * (self.dims.hidden_size // self.config.num_pieces)

    def counts(self) -> ParamCounts:
        """Trainable: stage 1's full prompt ``l·d``; saved: the surviving entries (masked ones are not saved)."""
        trained = self.config.num_tokens * self.dims.hidden_size
        n = self.surviving_entries()
        return ParamCounts(
            trainable_params=trained, saved_params=n, breakdown={"prompt": trained, "surviving": n}
        )

    def stage_trainable_params(self) -> int:
        return self.surviving_entries()  # l·d in stage 1; masked entries get no gradient afterwards

    def record(self) -> dict:
        kept = set(self.kept_tokens)
        return {
            "xprompt_rounds_done": self.rounds_done,
            "token_mask": [int(i in kept) for i in range(self.config.num_tokens)],
            "kept_tokens": list(self.kept_tokens),
            "piece_mask": [[int(v) for v in row] for row in self.piece_mask.tolist()],
            "pruned_tokens": self.config.num_tokens - len(self.kept_tokens),
            "pruned_pieces": len(self.kept_tokens) * self.config.num_pieces - self.kept_pieces,
            "surviving_entries": self.surviving_entries(),
            "token_importance": self.token_importance,
        }

    def saved_state(self) -> dict[str, torch.Tensor]:
        """Kept token indices ``[l_kept]``, piece mask ``[l_kept, k]`` (bool) and the surviving values only."""
        mask = self._expanded_mask().bool()
        return {
            "kept_tokens": torch.tensor(self.kept_tokens, dtype=torch.long),
            "piece_mask": self.piece_mask.bool().cpu(),
            "values": self.soft_prompt.detach()[mask].cpu().clone(),  # [surviving entries]
        }

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        device = self.soft_prompt.device
        self.kept_tokens = [int(i) for i in state["kept_tokens"].tolist()]
        self.piece_mask = state["piece_mask"].to(device=device, dtype=torch.float32)
        self.kept_pieces = int(state["piece_mask"].sum())
        mask = self._expanded_mask().bool()
        values = torch.zeros(mask.shape, device=device, dtype=self.soft_prompt.dtype)
        values[mask] = state["values"].to(device, values.dtype)
        self._set_prompt(values)
