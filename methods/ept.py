"""EPT: Efficient Prompt Tuning by Multi-Space Projection and Prompt Fusion.

Paper: Lan, Yang, Liu, Guo, Zhao, Wang, AAAI 2025, arXiv 2405.11464. No official code has been released.
docs/methods/ept.md.

What the paper states (abstract and section titles): (i) prompt decomposition into a shorter prompt and two
low-rank matrices (DePT's mechanism), (ii) prompt fusion: the low-rank matrices and the short prompt as extra
knowledge sources for the short prompt, by attention, (iii) multi-space projection of the prompt with a gating
network that learns the combination weights, (iv) a reconstructed prompt that is finally prepended.

**Everything below the decomposition is an ASSUMPTION of this harness, not the paper's**: the paper's attention
form, number and shape of subspaces, gate input and the reconstruction are unknown. The default is docs/methods/ept.md
§4.2's ``placeholder-v0`` design; every choice is a config field, and every run record carries
``ept_variant`` and the full config so no result is mistaken for the paper's own. Reports show the row as
``ept[placeholder-v0]`` (``ept[placeholder-v0*]`` when the design fields differ from the variant's;
``methods/ept_config.py``), never as a bare ``ept``.

placeholder-v0 (T5-Base, m=60, r=30, s=256, d=768):

    (0) decomposition, identical to DePT:   P_s ∈ ℝ^{m×d}, A ∈ ℝ^{s×r}, B ∈ ℝ^{r×d},  E'(x) = E(x) + κ·A B
    (a) fusion (single-head cross-attention, short prompt -> low-rank knowledge):
            K_src = B ∈ ℝ^{r×d}          (fusion.kv_source = "B"; or κ·A B ∈ ℝ^{s×d} with "AB")
            Q = P_s W_q ∈ ℝ^{m×d_a},  K = K_src W_k ∈ ℝ^{n×d_a},  V = K_src        (d_a = 32, no biases)
            P_f = P_s + softmax(Q Kᵀ / √d_a) V ∈ ℝ^{m×d}
    (b) multi-space projection with a gate (N = 4 spaces of rank k = 8):
            P_i = P_f U_i D_i,  U_i ∈ ℝ^{d×k} (Kaiming-uniform), D_i ∈ ℝ^{k×d} (zeros)
            g = softmax((W_g · mean_rows(P_f) + b_g) / τ) ∈ ℝ^N,   P_ms = Σ_i g_i P_i
    (c) reconstruction:  P_r = P_f + P_ms;   X_enc = [P_r ; E'(x)] ∈ ℝ^{B×(m+s)×d}

Because ``B = 0`` and ``D_i = 0`` at initialisation, EPT starts exactly as DePT; with fusion off
(``fusion.kv_source=none``) and projection off (``proj.num_spaces=0``) it *is* DePT. The price is that at the
first step only ``P_s``, ``B`` and ``D_i`` receive a gradient (``W_q``, ``W_k``, ``U_i``, the gate and ``A`` see
zeros until ``B`` and ``D_i`` have moved, one or two steps later); every learnable tensor has a non-zero gradient
from then on (tested in ``tests/test_ept_gradients.py``).

``reconstruct="proj"`` (``P_r = P_ms``) has no ``P_s``/``P_f`` term, so with ``D_i = 0`` its prompt would start
as all zeros, the text init of ``P_s`` would be invisible, and ``P_s`` would get exactly zero gradient at the
first step. That mode therefore initialises ``D_i`` (``proj.kind="full"``: the ``d×d`` maps) Kaiming-uniform
like ``U_i``: the prompt starts as a random projection of ``P_f`` and every tensor learns from step one. It
does not start as DePT (``docs/methods/ept.md#deviations-from-the-official-code``).

Trainable: DePT's ``m·d + r·(s+d)`` = 76,800 plus ``extra_params`` = fusion ``2·d·d_a`` (49,152) + projections
``N·2·d·k`` (49,152) + gate ``N·d + N`` (3,076) = 101,380; total 178,180. The prompt-side modules run once per
step (unless the gate is instance-dependent), so the per-step cost is DePT's.

Optimiser (assumption): AdamW with three groups: ``P_s`` at ``lr``, ``A, B`` at ``lr_lowrank``, the fusion,
projection and gate modules at ``lr_modules`` (1e-3).

On decoder-only models (``bench/backbones/decoder.py``, docs/decoder.md): the row is ``[source ; " Label :" ;
target ; EOS]`` with the loss on the target only, and the virtual tokens go right before the first real
token (``[P ; text ; pads]`` right-padded for training, ``[pads ; P ; text]`` left-padded for generation),
with position ids from the attention mask so the prompt starts at position 0 on either side. The
decomposition behaves as DePT's there (row ``i`` of ``κ·A B`` added to real token ``i``, target tokens
included; see ``methods/dept.py``); fusion, projection and gate act on the prompt alone, so they are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import BackboneDims, EmbeddingSource, Method, ParamCounts, ParamGroup
from methods.dept import DecomposedPrompt, dept_search_space
from methods.ept_config import EPTConfig, FusionConfig, GateConfig, ProjectionConfig, ept_display_name
from methods.prompt_init import kaiming_uniform_
from methods.registry import register_method
from methods.search_space import LogFloat


class PromptFusion(nn.Module):
    """Cross-attention from the short prompt (queries) to low-rank knowledge (keys/values)."""

    def __init__(self, config: FusionConfig, d: int) -> None:
        super().__init__()
        self.config = config
        self.w_q = nn.Parameter(torch.zeros(d, config.attn_dim))  # [d, d_a]
        self.w_k = nn.Parameter(torch.zeros(d, config.attn_dim))  # [d, d_a]
        if config.value_proj == "linear":
            self.w_v = nn.Parameter(torch.zeros(d, config.attn_dim))  # [d, d_a]
            self.w_o = nn.Parameter(torch.zeros(config.attn_dim, d))  # [d_a, d], zeros: starts as DePT
        self.scale = (
            nn.Parameter(torch.tensor(float(config.scale_init))) if config.scale_init is not None else None
        )

    def initialize(self, generator: torch.Generator) -> None:
        d = self.w_q.shape[0]
        for w in (self.w_q, self.w_k) + ((self.w_v,) if self.config.value_proj == "linear" else ()):
            kaiming_uniform_(w, d, generator)

    def forward(self, short_prompt: torch.Tensor, knowledge: torch.Tensor) -> torch.Tensor:
        """``short_prompt`` [m, d], ``knowledge`` [n, d] -> the attention update [m, d]."""
        h = self.config.heads
        m, n = short_prompt.shape[0], knowledge.shape[0]
        q = (short_prompt @ self.w_q).view(m, h, -1).transpose(0, 1)  # [h, m, d_a/h]
        k = (knowledge @ self.w_k).view(n, h, -1).transpose(0, 1)  # [h, n, d_a/h]
        v_in = knowledge @ self.w_v if self.config.value_proj == "linear" else knowledge
        v = v_in.view(n, h, -1).transpose(0, 1)  # [h, n, dv/h]
        mixed = F.scaled_dot_product_attention(q, k, v)  # softmax(Q Kᵀ/√(d_a/h)) V: [h, m, dv/h]
        out = mixed.transpose(0, 1).reshape(m, -1)  # [m, dv]
        if self.config.value_proj == "linear":
            out = out @ self.w_o  # [m, d]
        return out * self.scale if self.scale is not None else out


class MultiSpaceProjection(nn.Module):
    """``N`` projections of the prompt, mixed by a gate: ``P_ms = Σ_i g_i P_i``."""

    def __init__(self, config: ProjectionConfig, gate: GateConfig, d: int) -> None:
        super().__init__()
        self.config, self.gate_config = config, gate
        n, k = config.num_spaces, config.rank
        if config.kind == "full":
            self.down = nn.Parameter(torch.zeros(n, d, d))  # [N, d, d], zeros: P_i = 0 at start
        else:
            self.down = nn.Parameter(torch.zeros(n, d, k))  # U_i [N, d, k]
        if config.kind == "bottleneck":
            self.up = nn.Parameter(torch.zeros(n, k, d))  # D_i [N, k, d], zeros: P_i = 0 at start
        self.gate = nn.Linear(d, n)  # W_g [N, d], b_g [N]

    def initialize(self, generator: torch.Generator, live_output: bool = False) -> None:
        """``live_output``: also draw ``D_i`` (full: the maps), so ``P_ms`` is not zero at the start."""
        d = self.down.shape[1]
        if self.config.kind == "bottleneck":
            kaiming_uniform_(self.down, d, generator)
        elif self.config.kind == "orthogonal":
            with torch.no_grad():  # orthonormal columns per space: P_i = P U_i U_iᵀ is a projection
                for i in range(self.down.shape[0]):
                    q, _ = torch.linalg.qr(torch.randn(d, self.down.shape[2], generator=generator))
                    self.down[i].copy_(q)
        kaiming_uniform_(self.gate.weight, d, generator)
        kaiming_uniform_(self.gate.bias, d, generator)
        if live_output and self.config.kind == "bottleneck":
            kaiming_uniform_(self.up, self.up.shape[1], generator)  # D_i [N, k, d], fan_in k
        elif live_output and self.config.kind == "full":
            kaiming_uniform_(self.down, d, generator)

    def spaces(self, prompt: torch.Tensor) -> torch.Tensor:
        """Projections of ``prompt`` [m, d] into each space: [N, m, d]."""
        if self.config.kind == "bottleneck":
            return torch.einsum("md,ndk,nke->nme", prompt, self.down, self.up)
        if self.config.kind == "orthogonal":
            return torch.einsum("md,ndk,nek->nme", prompt, self.down, self.down)
        return torch.einsum("md,nde->nme", prompt, self.down)

    def gate_weights(
        self, prompt: torch.Tensor, token_embeds: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Gate weights: [N] (prompt_mean), [B, N] (input_mean) or [m, N] (per_token)."""
        kind = self.gate_config.input
        if kind == "prompt_mean":
            features = prompt.mean(dim=0)  # [d]
        elif kind == "per_token":
            features = prompt  # [m, d]
        else:  # mean of the real input tokens' embeddings: instance-dependent
            weights = mask.unsqueeze(-1).to(token_embeds.dtype)
            features = (token_embeds * weights).sum(1) / weights.sum(1).clamp(min=1)  # [B, d]
        logits = self.gate(features) / self.gate_config.temperature
        return logits.softmax(-1) if self.gate_config.activation == "softmax" else logits.sigmoid()

    def forward(self, prompt: torch.Tensor, token_embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``prompt`` [m, d] -> ``P_ms``: [m, d] or [B, m, d] for an instance-dependent gate."""
        spaces = self.spaces(prompt)  # [N, m, d]
        g = self.gate_weights(prompt, token_embeds, mask)
        if g.dim() == 1:
            return torch.einsum("n,nme->me", g, spaces)
        if self.gate_config.input == "per_token":
            return torch.einsum("mn,nme->me", g, spaces)
        return torch.einsum("bn,nme->bme", g, spaces)


@register_method
class EPT(Method):
    name = "ept"
    paper = "Lan et al., Efficient Prompt Tuning by Multi-Space Projection and Prompt Fusion, AAAI 2025 (arXiv 2405.11464)"
    attach = "input"
    formula = "m·d + r·(s+d) + extra (fusion 2·d·d_a + spaces N·2·d·k + gate N·d+N; placeholder-v0)"
    config_class = EPTConfig
    record_init_and_best = ("gate_weights",)

    @classmethod
    def search_space(cls) -> dict:
        """DePT's grids for ``lr``/``lr_lowrank`` plus ``lr_modules`` over {1e-4 … 5e-3} (docs/methods/ept.md#method)."""

        return {**dept_search_space(), "lr_modules": LogFloat(1e-4, 5e-3)}

    def __init__(self, config: EPTConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        d = dims.hidden_size
        self.decomposition = DecomposedPrompt(config, dims)
        self.fusion = PromptFusion(config.fusion, d) if config.fusion.kv_source != "none" else None
        self.projection = (
            MultiSpaceProjection(config.proj, config.gate, d) if config.proj.num_spaces > 0 else None
        )

    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        self.decomposition.initialize(embeddings, generator)
        if self.fusion is not None:
            self.fusion.initialize(generator)
        if self.projection is not None:  # proj-only reconstruction: P_ms must not start at zero
            self.projection.initialize(generator, live_output=self.config.reconstruct == "proj")

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def _fused(self) -> torch.Tensor:
        """``P_f`` [m, d]: the short prompt enriched by attention over the low-rank knowledge."""
        short = self.decomposition.short_prompt
        if self.fusion is None:
            return short
        if self.config.fusion.kv_source == "B":
            knowledge = self.decomposition.lora_b  # [r, d]
        else:
            knowledge = self.decomposition.offset(self.decomposition.lora_a.shape[0])  # κ·A B [s, d]
        update = self.fusion(short, knowledge)
        return short + update if self.config.fusion.residual else update

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        short = self.decomposition.short_prompt
        fused = self._fused()
        if self.projection is None:
            projected = torch.zeros_like(fused)
        else:
            source = fused if self.config.proj.input == "fused" else short
            projected = self.projection(source, token_embeds, attention_mask)  # [m, d] or [B, m, d]
        how = self.config.reconstruct
        if how == "fused+proj":
            return fused + projected
        if how == "short+proj":
            return short + projected
        if how == "proj":
            return projected if projected.dim() == 3 else projected.clone()
        return short + fused + projected  # "short+fused+proj"

    def update_embeds(self, token_embeds: torch.Tensor) -> torch.Tensor:
        return token_embeds + self.decomposition.offset(token_embeds.shape[1])

    def module_params(self) -> list[nn.Parameter]:
        modules = [m for m in (self.fusion, self.projection) if m is not None]
        return [p for m in modules for p in m.parameters()]

    def param_groups(self) -> list[ParamGroup]:
        c = self.config
        groups = [
            ParamGroup("prompt", [self.decomposition.short_prompt], c.lr, c.weight_decay),
            ParamGroup("lowrank", self.decomposition.lowrank_params(), c.lr_lowrank, c.weight_decay),
        ]
        if self.module_params():
            groups.append(ParamGroup("modules", self.module_params(), c.lr_modules, c.weight_decay))
        return groups

    def counts(self) -> ParamCounts:
        counts = super().counts()
        counts.extra_params = sum(p.numel() for p in self.module_params())
        counts.breakdown = {
            "short_prompt": self.decomposition.short_prompt.numel(),
            "lowrank": sum(p.numel() for p in self.decomposition.lowrank_params()),
            "fusion": sum(p.numel() for p in self.fusion.parameters()) if self.fusion is not None else 0,
            "projection": sum(
                p.numel() for n, p in self.projection.named_parameters() if not n.startswith("gate")
            )
            if self.projection is not None
            else 0,
            "gate": sum(p.numel() for p in self.projection.gate.parameters())
            if self.projection is not None
            else 0,
        }
        return counts

    @classmethod
    def display_name_for(cls, config: EPTConfig) -> str:
        return ept_display_name(config)  # ept[placeholder-v0], never a bare "ept" (methods/ept_config.py)

    def record(self) -> dict:
        """Variant name and the gate weights (when they do not depend on the input), for the gating plots."""
        out: dict = {"ept_variant": self.config.ept_variant}
        if self.projection is not None and self.config.gate.input != "input_mean":
            with torch.no_grad():
                fused = self._fused()
                source = fused if self.config.proj.input == "fused" else self.decomposition.short_prompt
                g = self.projection.gate_weights(source, source.new_zeros(1, 1, source.shape[1]), None)
            out["gate_weights"] = g.detach().cpu().tolist()
        return out
