"""MEPT: Mixture of Expert Prompt Tuning.

Paper: Zeng et al., "MEPT: Mixture of Expert Prompt Tuning as a Manifold Mapper", EMNLP 2025 (arXiv 2509.00996).
Official code: runtsang/MEPT (``transformers/src/transformers/models/t5/modeling_t5.py``: ``T5Block`` with
``method == "prompt-expert"``; ``scripts/train.py``). Facts, defaults and the side-by-side: ``docs/methods/mept.md``.

SMoP (``methods/smop.py``) at every listed layer: the backbone carries ``l`` virtual positions, and at the input of
each layer ``i`` in ``layers`` their states are replaced by a routed prompt plus a shared one:

    P^i_1..P^i_k ∈ ℝ^{l×d}, S^i ∈ ℝ^{l×d}, W^i ∈ ℝ^{k×d}        trainable, per listed layer
    h̄ = Σ_{j readable} RMSNorm(h_j) / n_read ∈ ℝ^{B×d}          (official: every non-prompt column, n_read = l+s)
    z = h̄ W^iᵀ;  training: z ← z + σ² ε ⊙ sg(z);  p = softmax(z);  e = argmax p
    h_{0..l−1} ← p_e · P^i_e + S^i ∈ ℝ^{B×l×d}

Trainable: ``|layers|·(k·l·d + k·d + l·d)``; T5-Base, all 12 blocks, k=4, l=10: 12·(30,720 + 3,072 + 7,680) =
497,664. The official training script also marks the input-level router and shared prompt trainable (10,752 more,
508,416): with block 0 listed they never reach the loss, so they are not built here (``layers`` must hold 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import InputError
from methods.base import BackboneDims, EmbeddingSource, Method, ParamCounts
from methods.registry import register_method
from methods.routing import RouterLoad, noisy_router_probs
from methods.smop import SMoPConfig

NORM_EPS = 1e-6  # T5's layer_norm_epsilon, of the official router's new T5LayerNorm


@dataclass
class MEPTConfig(SMoPConfig):
    num_tokens: int = 10  # l: the official --num_virtual_tokens default
    num_experts: int = 4  # k: --num_virtual_tokens_full 40 = 4 · 10
    layers: str = "all"  # comma-separated layer indices (must include 0); "all": every layer of the stack
    # The router's input: "all" sums every non-prompt column, pads included, and divides by the full length
    # (the official T5 code); "real" averages the readable real tokens. None: "all", on decoders "real"
    # (there the readable columns are the prefix, so that targets never reach the prompt).
    router_mean: str | None = None
    weight_decay: float = 1e-2  # the official --weight_decay default (Adafactor)
    lr: float = 0.5  # the official README leaves it open; SMoP's (docs/methods/mept.md#defaults)

    def layer_indices(self, num_layers: int) -> list[int]:
        if self.layers.strip() == "all":
            return list(range(num_layers))
        try:
            out = sorted({int(t) for t in self.layers.split(",") if t.strip()})
        except ValueError:
            raise InputError(f"layers={self.layers!r} must be 'all' or comma-separated integers") from None
        return out

    def resolved_router_mean(self, family: str) -> str:
        return self.router_mean or ("real" if family == "decoder" else "all")

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        layers = self.layer_indices(dims.num_layers)
        if not layers or layers[0] != 0 or layers[-1] >= dims.num_layers:
            raise InputError(
                f"layers={self.layers!r} must include 0 and lie in 0..{dims.num_layers - 1} "
                f"(the backbone has {dims.num_layers} layers)"
            )
        if self.router_mean not in (None, "all", "real"):
            raise InputError(f"router_mean={self.router_mean!r} is not one of 'all', 'real'")
        if self.resolved_router_mean(dims.family) == "all" and dims.family == "decoder":
            raise InputError("router_mean='all' would read the target tokens on a decoder; use 'real'")


class LayerExperts(nn.Module):
    """One listed layer's k prompts ``[k·l, d]`` (one 2-D table, as the official ``nn.Embedding``), its shared
    prompt ``[l, d]`` and its router ``[k, d]`` (``nn.Linear(d, k, bias=False).weight``)."""

    def __init__(self, k: int, length: int, d: int) -> None:
        super().__init__()
        self.prompts = nn.Parameter(torch.zeros(k * length, d))
        self.shared = nn.Parameter(torch.zeros(length, d))
        self.router = nn.Parameter(torch.zeros(k, d))


@register_method
class MEPT(Method):
    name = "mept"
    paper = "Zeng et al., MEPT: Mixture of Expert Prompt Tuning, EMNLP 2025 (arXiv 2509.00996)"
    attach = "input"
    formula = "|layers|·(k·l·d + k·d + l·d)"
    config_class = MEPTConfig

    def __init__(self, config: MEPTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        k, n, d = config.num_experts, config.num_tokens, dims.hidden_size
        self.layers = config.layer_indices(dims.num_layers)
        self.router_mean = config.resolved_router_mean(dims.family)
        self.experts = nn.ModuleList(LayerExperts(k, n, d) for _ in self.layers)
        self.router_drop = nn.Dropout(config.router_dropout)
        self.loads = nn.ModuleList(RouterLoad(k) for _ in self.layers)
        self._slot_of = {layer: i for i, layer in enumerate(self.layers)}

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        """Xavier-uniform prompts (the shared one as the official ``[1, l, d]`` tensor, whose fans are ``l·d``
        and ``d``), orthogonal routers, as the official ``--prompt_initialization xavier``."""
        n, d = self.config.num_tokens, self.dims.hidden_size
        with torch.no_grad():
            for ex in self.experts:
                nn.init.xavier_uniform_(ex.prompts, generator=generator)
                nn.init.xavier_uniform_(ex.shared.view(1, n, d), generator=generator)
                nn.init.orthogonal_(ex.router, generator=generator)

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    @property
    def pad_positions_matter(self) -> bool:
        """The official router input sums the pad columns and divides by the full length."""
        return self.router_mean == "all"

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Placeholders ``[l, d]`` (zeros): layer 0's rewrite replaces them before any layer reads them."""
        return token_embeds.new_zeros(self.config.num_tokens, token_embeds.shape[-1])

    def prompt_layers(self, num_layers: int) -> list[int]:
        return self.layers

    def router_input(self, hidden: torch.Tensor, slots: torch.Tensor, readable: torch.Tensor) -> torch.Tensor:
        """h̄ ``[B, d]``: the RMS-normalised states (no weight, fp32) summed over the readable columns, divided by
        the full length ``L`` (``"all"``, every non-prompt column readable) or by the readable count (``"real"``)."""
        h = hidden.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + NORM_EPS)  # [B, L, d]
        if self.router_mean == "all":  # the non-prompt columns in order (T5: h[:, l:], as the official slice)
            keep = torch.ones_like(readable, dtype=torch.bool).scatter(1, slots, False)
            batch, length, d = h.shape
            return h[keep].view(batch, length - slots.shape[1], d).sum(1) / length
        keep = readable.to(h.dtype)
        return (h * keep.unsqueeze(-1)).sum(1) / keep.sum(1, keepdim=True).clamp(min=1)

    def route(self, layer_experts: LayerExperts, pooled: torch.Tensor) -> torch.Tensor:
        """Router probabilities ``p`` ``[B, k]`` (with the perturbation or dropout while training)."""
        logits = F.linear(pooled.to(layer_experts.router.dtype), layer_experts.router)  # [B, k]
        cfg = self.config
        return noisy_router_probs(
            logits, cfg.perturb_router, cfg.noise_sigma, self.training, self.router_drop
        )

    def rewrite_prompt(
        self, layer: int, hidden: torch.Tensor, slots: torch.Tensor, readable: torch.Tensor
    ) -> torch.Tensor:
        i = self._slot_of[layer]
        ex, cfg = self.experts[i], self.config
        probs = self.route(ex, self.router_input(hidden, slots, readable))  # [B, k]
        values, chosen = torch.topk(probs, k=cfg.top_k, dim=-1)  # [B, top_k]
        if self.training and torch.is_grad_enabled():
            self.loads[i].add(chosen)
        rows = chosen.unsqueeze(-1) * cfg.num_tokens + torch.arange(cfg.num_tokens, device=chosen.device)
        picked = F.embedding(rows, ex.prompts)  # [B, top_k, l, d]: rows e·l + 0..l-1 of the table
        if cfg.batch_mix and cfg.top_k == 1:
            # p_i · Σ_j P_{e_j}, summed as the official broadcast does ([B, B, l, d], then over j): the same
            # float rounding, since top-1 routing turns tiny differences into different choices within steps
            routed = (values[:, :, None, None] * picked[:, 0].unsqueeze(0)).sum(dim=1)
        else:
            routed = (picked * values[:, :, None, None]).sum(dim=1)  # [B, l, d]
        return routed + ex.shared

    def counts(self) -> ParamCounts:
        parts = {
            name: sum(getattr(ex, name).numel() for ex in self.experts)
            for name in ("prompts", "shared", "router")
        }
        total = sum(parts.values())
        return ParamCounts(total, total, breakdown=parts)

    def record(self) -> dict:
        """``router_load``: the shares summed over the listed layers (rows: training rows routed, each counted
        once per layer); ``router_load_per_layer``: each layer's own, keyed by layer index."""
        k = self.config.num_experts
        counts = sum((load.counts for load in self.loads), torch.zeros(k, dtype=torch.long))
        total = int(counts.sum())
        share = [round(int(c) / total, 6) if total else 0.0 for c in counts]
        rows = self.loads[0].rows if self.loads else 0
        return {
            "router_load": {"experts": k, "rows": rows, "share": share, "layers": len(self.layers)},
            "router_load_per_layer": {
                str(layer): load.summary() for layer, load in zip(self.layers, self.loads, strict=True)
            },
        }
