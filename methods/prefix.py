"""Prefix tuning: trainable key/value prefixes in every self-attention layer.

Paper: Li & Liang, "Prefix-Tuning: Optimizing Continuous Prompts for Generation", ACL 2021, arXiv 2101.00190.
Every prefixed attention module ``m`` attends over ``l`` extra key/value positions in front of the text's:

    K'_m = [P^K_m ; K_m],  V'_m = [P^V_m ; V_m],   P^K_m, P^V_m ∈ ℝ^{H_kv × l × d_h}   (shared over the batch)
    A_m  = softmax(Q_m·K'_mᵀ·scale + [0_l | B_m] + [0_l | M])·V'_m

``B_m`` is the module's own position bias over text keys (T5's relative bias; none on BERT/Llama) and ``M`` the
model's attention mask (padding, causality); the prefix columns get bias 0 and are never masked, so every query
(padded or not, causal or not) may attend to them. Queries, the text keys and values, and everything outside
attention are the frozen model's.

Parameters: PEFT's ``PrefixEncoder`` (``peft.tuners.prefix_tuning.model``), built from a ``PrefixTuningConfig``
with ``num_layers = M`` (the number of prefixed attention modules) and ``token_dim = H_kv·d_h``, so the counts
are PEFT's. Its output ``[l, M·2·H_kv·d_h]`` is read as PEFT reads it (``view(l, M·2, H_kv, d_h)``: module ``m``
takes key row ``2m`` and value row ``2m+1``). With ``projection=True`` (the paper's reparameterisation during
training, ``P = MLP(P')``; PEFT's ``prefix_projection``):

    P' ∈ ℝ^{l×k} (nn.Embedding),  P = W₂·tanh(W₁·P' + c₁) + c₂ ∈ ℝ^{l×M·2k},  W₁ ∈ ℝ^{h×k}, W₂ ∈ ℝ^{M·2k×h}

with ``k = H_kv·d_h``. Trainable: ``l·k + k·h + h + h·M·2k + M·2k``; without projection ``l·M·2k`` (the prefixes
themselves). Saved in both cases: the computed prefixes, ``l·M·2k`` (the MLP is dropped after training, as the
paper does and as Residual PT's saved prompt).

T5-Base (k = d = 768, encoder + decoder self-attention, M = 24), l=20: saved 20·24·1,536 = 737,280; trainable
with projection (h=512) 15,360 + 393,216 + 512 + 18,874,368 + 36,864 = 19,320,320, without 737,280.

Where PEFT is and is not used. PEFT injects prefixes as ``past_key_values`` through ``PeftModel.forward``, which
our backbones bypass (they call T5's encoder, BERT, and the causal LM's decoder stack with ``inputs_embeds``), and
transformers 5.x drops ``past_key_values`` for T5's encoder, so only the parameterisation is PEFT's. The injection
is ours: every prefixed attention module gets its own shallow copy of the model config whose
``_attn_implementation`` names :func:`prefix_attention` (registered in transformers' ``AttentionInterface``).
That function receives exactly what the module's attention kernel would (queries, keys and values after
projection, RoPE and any KV cache; the 4-D mask; T5's ``position_bias``), prepends the prefix, extends mask and
bias, and calls the module's original kernel (``eager`` or ``sdpa``). No weight, buffer or forward of the model
changes; the stacks still build their masks with the original implementation.

Which modules [dec, ``cross_attention``]: every self-attention module: T5 encoder and decoder
(``SelfAttention``), BERT's ``attention.self``, a causal LM's ``self_attn``. T5's decoder cross-attention gets
no prefix by default (``cross_attention=True`` adds one; PEFT's seq2seq path also leaves it without, since it
resets the cross-attention cache). Li & Liang prefix both encoder and decoder of BART; PEFT on seq2seq models
reaches only the decoder ("which does not correspond to the paper specification", PEFT docs,
package_reference/prefix_tuning), which is why the encoder path here is our own.

Positions [dec]. T5: prefix columns get a zero relative-position bias (no bucket, no learned bias), so prefix
attention depends only on the learned keys. Llama (RoPE): prefix keys are not rotated, as PEFT's cached prefix
(the cache stores keys already in the rotated space); text positions stay those the backbone gives (0 at the
first real token), whereas PEFT's text would start at ``l``; the prefix keys are learned either way.

Defaults: ``num_tokens`` l=20 [dec] (the example in PEFT's ``PrefixEncoder`` docstring; the paper used 10 for table-to-text and 200
for summarisation), ``projection=True`` with ``hidden_size`` h=512 (the paper trains through an MLP; 512 is the
``mid_dim`` of Li & Liang's released code [unv]), lr 1e-3 [dec] (the paper's rate, 5e-5 [unv], belongs to
epoch-long GPT-2/BART schedules; the quick presets use 3e-3, not swept), weight decay 0. The paper's
initialisation from the activations of real words is not implemented (PEFT's N(0, 1) embedding init).
"""

from __future__ import annotations

import copy
import re
import sys
from dataclasses import dataclass

import torch
from torch import nn

from methods.base import BackboneDims, Method, ParamCounts, ParamGroup, PromptConfig
from methods.registry import register_method

ATTN_NAME = "ptbench_prefix"

# Self-attention modules by family (full module names), and T5's cross-attention.
_SELF = [
    re.compile(r"^(encoder|decoder)\.block\.\d+\.layer\.0\.SelfAttention$"),  # T5
    re.compile(r"(^|\.)encoder\.layer\.\d+\.attention\.self$"),  # BERT family
    re.compile(r"(^|\.)layers\.\d+\.self_attn$"),  # Llama-style causal LMs
]
_CROSS = re.compile(r"^decoder\.block\.\d+\.layer\.1\.EncDecAttention$")


@dataclass
class PrefixConfig(PromptConfig):
    prompt_on_input = False  # keys/values at every layer, not input tokens
    num_tokens: int = 20  # l
    projection: bool = True  # train through the MLP reparameterisation (PEFT's prefix_projection)
    hidden_size: int = 512  # h of the MLP
    cross_attention: bool = False  # also prefix T5's decoder cross-attention
    lr: float = 1e-3
    weight_decay: float = 0.0

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.hidden_size < 1:
            raise ValueError(f"hidden_size={self.hidden_size} must be >= 1")


@dataclass
class _Slot:
    """What :func:`prefix_attention` needs about one prefixed module (a plain object, not a submodule)."""

    method: PrefixTuning
    index: int  # m: which rows of the prefix encoder's output
    kernel: str  # the module's original attention implementation ("eager" | "sdpa")


def attention_modules(model: nn.Module, cross_attention: bool = False) -> list[tuple[str, nn.Module]]:
    """The attention modules that get prefixes, in module order (see the module docstring)."""
    found = []
    for name, module in model.named_modules():
        if any(p.search(name) for p in _SELF) or (cross_attention and _CROSS.search(name)):
            found.append((name, module))
    if not found:
        raise ValueError(
            f"no self-attention modules recognised in {type(model).__name__} (T5, BERT or Llama-style layout)"
        )
    return found


def kv_shape(module: nn.Module) -> tuple[int, int]:
    """``(H_kv, d_h)`` of an attention module's keys: T5Attention, BertSelfAttention, LlamaAttention."""
    for proj, head in (("k", "key_value_proj_dim"), ("key", "attention_head_size"), ("k_proj", "head_dim")):
        if isinstance(getattr(module, proj, None), nn.Linear) and hasattr(module, head):
            d_h = int(getattr(module, head))
            return getattr(module, proj).out_features // d_h, d_h
    raise ValueError(f"cannot read key heads of attention module {type(module).__name__}")


@register_method
class PrefixTuning(Method):
    name = "prefix"
    paper = (
        "Li & Liang, Prefix-Tuning: Optimizing Continuous Prompts for Generation, ACL 2021 (arXiv 2101.00190)"
    )
    attach = "wrap"
    formula = "projection: l·k + k·h + h + h·M·2k + M·2k; else l·M·2k (saved: l·M·2k), k = H_kv·d_h"
    config_class = PrefixConfig

    @classmethod
    def peft_equivalent(cls, config: PrefixConfig, model: nn.Module, task_type):
        """PEFT's prefix tuning with the same prefix length."""
        from peft import PrefixTuningConfig  # noqa: PLC0415 - peft takes seconds to import: only when its module is built

        return PrefixTuningConfig(task_type=task_type, num_virtual_tokens=config.num_tokens)

    def __init__(self, config: PrefixConfig, dims: BackboneDims) -> None:
        super().__init__(config, dims)
        self.encoder: nn.Module | None = None  # PEFT PrefixEncoder, built in wrap() from the model's shapes
        self.num_modules = 0  # M
        self.heads = 0  # H_kv
        self.head_dim = 0  # d_h
        self.module_names: list[str] = []
        self.saved_prefix: torch.Tensor | None = None  # set by load_saved_state: [l, M·2k], no MLP

    # ---- attaching --------------------------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        from peft import PrefixEncoder, PrefixTuningConfig  # noqa: PLC0415 - peft takes seconds to import: only when its module is built

        _register_kernel()
        modules = attention_modules(model, self.config.cross_attention)
        shapes = {kv_shape(m) for _, m in modules}
        if len(shapes) != 1:
            raise ValueError(f"prefixed attention modules differ in key shape {sorted(shapes)}")
        (self.heads, self.head_dim), self.num_modules = shapes.pop(), len(modules)
        self.module_names = [n for n, _ in modules]
        peft_config = PrefixTuningConfig(
            task_type=None,
            num_virtual_tokens=self.config.num_tokens,
            token_dim=self.heads * self.head_dim,
            num_layers=self.num_modules,
            num_attention_heads=self.heads,
            num_transformer_submodules=1,
            encoder_hidden_size=self.config.hidden_size,
            prefix_projection=self.config.projection,
        )
        device = next(model.parameters()).device
        with torch.device(device):
            self.encoder = PrefixEncoder(peft_config)
        self.register_buffer("indices", torch.arange(self.config.num_tokens, device=device), persistent=False)
        for index, (_, module) in enumerate(modules):
            kernel = module.config._attn_implementation or "eager"
            if kernel not in ("eager", "sdpa"):
                raise ValueError(
                    f"prefix tuning supports the 'eager' and 'sdpa' attention implementations, not {kernel!r}"
                )
            config = copy.copy(module.config)  # shallow: only this module dispatches to prefix_attention
            config._attn_implementation_internal = ATTN_NAME
            module.config = config
            module.ptbench_prefix = _Slot(self, index, kernel)
        return model

    # ---- the prefixes -----------------------------------------------------------------------------------
    def all_prefixes(self) -> torch.Tensor:
        """PEFT's ``PrefixEncoder`` output ``[l, M·2·H_kv·d_h]`` (or the saved prefixes after loading)."""
        if self.saved_prefix is not None:
            return self.saved_prefix
        return self.encoder(self.indices)

    def prefix_kv(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Key and value prefix ``[H_kv, l, d_h]`` of module ``index``: columns ``[2m·k, (2m+2)·k)`` of
        :meth:`all_prefixes`, computed alone (with projection, only that slice of the MLP's last layer)."""
        k = self.heads * self.head_dim
        cols = slice(2 * index * k, (2 * index + 2) * k)
        if self.saved_prefix is not None:
            flat = self.saved_prefix[:, cols]
        elif self.config.projection:
            hidden = self.encoder.transform[1](
                self.encoder.transform[0](self.encoder.embedding(self.indices))
            )
            last = self.encoder.transform[2]
            flat = nn.functional.linear(hidden, last.weight[cols], last.bias[cols])
        else:
            flat = self.encoder.embedding.weight[:, cols]
        kv = flat.view(-1, 2, self.heads, self.head_dim).permute(1, 2, 0, 3)  # [2, H_kv, l, d_h]
        return kv[0], kv[1]

    # ---- training and saving ----------------------------------------------------------------------------
    def param_groups(self) -> list[ParamGroup]:
        params = [] if self.encoder is None else list(self.encoder.parameters())
        return [ParamGroup("method", params, self.config.lr, self.config.weight_decay)]

    def counts(self) -> ParamCounts:
        if self.encoder is None:
            raise RuntimeError("method 'prefix' is not attached to a model yet")
        trainable = sum(p.numel() for p in self.encoder.parameters())
        saved = self.config.num_tokens * self.num_modules * 2 * self.heads * self.head_dim
        return ParamCounts(trainable_params=trainable, saved_params=saved)

    def saved_state(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {"prefix": self.all_prefixes().detach().clone()}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        expected = (self.config.num_tokens, self.num_modules * 2 * self.heads * self.head_dim)
        if tuple(state["prefix"].shape) != expected:
            raise KeyError(f"saved prefix has shape {tuple(state['prefix'].shape)}, expected {expected}")
        device = self.indices.device if hasattr(self, "indices") else None
        self.saved_prefix = state["prefix"].detach().clone().to(device)

    def record(self) -> dict:
        return {
            "prefix_modules": self.num_modules,
            "prefix_projection": self.config.projection,
            "prefix_backend": "peft PrefixEncoder; injection in attention (methods/prefix.py)",
        }


# ---- the attention kernel -----------------------------------------------------------------------------------
def _register_kernel() -> None:
    from transformers import AttentionInterface  # noqa: PLC0415 - transformers' attention registry only when prefix tuning attaches

    AttentionInterface.register(ATTN_NAME, prefix_attention)


def _original_kernel(module: nn.Module, name: str):
    """The module's own attention function: transformers' sdpa, or its model file's ``eager_attention_forward``."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS  # noqa: PLC0415 - transformers' attention registry only when prefix tuning attaches

    eager = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if name == "eager":
        if eager is None:
            raise ValueError(f"no eager attention function found for {type(module).__name__}")
        return eager
    return ALL_ATTENTION_FUNCTIONS[name]


def extend_mask(
    mask: torch.Tensor | None, n: int, query: torch.Tensor, key: torch.Tensor, causal: bool, kernel: str
) -> torch.Tensor | None:
    """The module's 4-D mask with ``n`` always-visible prefix columns in front.

    ``mask`` is additive float (eager), boolean (sdpa, True = attend) or None (no padding). None stays None for
    bidirectional attention; for causal attention it becomes an explicit mask, since SDPA's ``is_causal`` aligns
    top-left and would hide text keys once the prefix makes keys longer than queries. Text key ``j`` is visible
    to query ``i`` iff ``j <= (K − Q) + i`` (bottom-right: a KV cache holds ``K − Q`` earlier tokens).
    """
    if mask is None:
        if not causal:
            return None
        q, k = query.shape[2], key.shape[2]
        rows = torch.arange(q, device=query.device)[:, None] + (k - q)
        mask = (torch.arange(k, device=query.device)[None, :] <= rows).view(1, 1, q, k)
        if kernel == "eager":
            zero = torch.zeros((), dtype=query.dtype, device=query.device)
            mask = torch.where(mask, zero, torch.finfo(query.dtype).min)
    if mask.shape[-1] != key.shape[2]:
        raise ValueError(f"attention mask covers {mask.shape[-1]} keys, the module has {key.shape[2]}")
    visible = mask.new_ones(()) if mask.dtype == torch.bool else mask.new_zeros(())
    return torch.cat([visible.expand(*mask.shape[:-1], n), mask], dim=-1)


def prefix_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *args,
    **kwargs,
):
    """Attention with the module's key/value prefix prepended, then the module's original kernel.

    ``query`` ``[B, H, Q, d_h]``, ``key``/``value`` ``[B, H_kv, K, d_h]`` (after RoPE and cache); returns what the
    original kernel returns. T5's ``position_bias`` ``[1|B, H, Q, K]`` gets ``n`` zero columns in front.
    """
    slot: _Slot = module.ptbench_prefix
    pk, pv = slot.method.prefix_kv(slot.index)  # [H_kv, n, d_h]
    batch, n = key.shape[0], pk.shape[1]
    pk = pk.to(key.dtype).unsqueeze(0).expand(batch, -1, -1, -1)
    pv = pv.to(value.dtype).unsqueeze(0).expand(batch, -1, -1, -1)
    causal = bool(getattr(module, "is_causal", False))
    attention_mask = extend_mask(attention_mask, n, query, key, causal, slot.kernel)
    bias = kwargs.get("position_bias")
    if bias is not None:
        kwargs["position_bias"] = torch.cat([bias.new_zeros(*bias.shape[:-1], n), bias], dim=-1)
    key, value = torch.cat([pk, key], dim=2), torch.cat([pv, value], dim=2)
    return _original_kernel(module, slot.kernel)(module, query, key, value, attention_mask, *args, **kwargs)
