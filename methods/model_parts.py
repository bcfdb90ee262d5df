"""Find the transformer's linear layers by role, the same way on T5, BERT and Llama, for wrap methods.

A role names one projection of one block: ``q``, ``k``, ``v``, ``o`` (attention) and ``wi``, ``wo`` (feed-forward;
gated T5 v1.1 has ``wi_0``/``wi_1`` and gated Llama ``gate_proj``/``up_proj``, each pair reported as ``wi``). The
sub-layer is ``self_attn``, ``cross_attn`` or ``ffn`` and the stack ``encoder`` or ``decoder`` (BERT: ``encoder``;
decoder-only Llama-style models: ``decoder``). The LM head, BERT's pooler and the task head have no role.

======  ==========================================  ======================================  ==========================
role    T5 module (``{stack}.block.i.layer.j.…``)     BERT module (``…encoder.layer.i.…``)    Llama (``…layers.i.…``)
======  ==========================================  ======================================  ==========================
q, k, v ``SelfAttention.q`` / ``EncDecAttention.q``  ``attention.self.query`` / ``key`` …    ``self_attn.q_proj`` …
o       ``SelfAttention.o`` / ``EncDecAttention.o``  ``attention.output.dense``              ``self_attn.o_proj``
wi      ``DenseReluDense.wi`` (``wi_0``, ``wi_1``)   ``intermediate.dense``                  ``mlp.gate_proj``, ``up_proj``
wo      ``DenseReluDense.wo``                        ``output.dense``                        ``mlp.down_proj``
======  ==========================================  ======================================  ==========================

The Llama layout (``model.layers.i.self_attn.{q,k,v,o}_proj``, ``model.layers.i.mlp.{gate,up,down}_proj``) is
shared by SmolLM2, Mistral, Qwen2 and most current decoder-only checkpoints. With grouped-query attention ``k``
and ``v`` are narrower than ``d`` (``num_key_value_heads · head_dim`` outputs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

ROLES = ["q", "k", "v", "o", "wi", "wo"]

_T5_ATTN = re.compile(
    r"^(encoder|decoder)\.block\.\d+\.layer\.\d+\.(SelfAttention|EncDecAttention)\.([qkvo])$"
)
_T5_FFN = re.compile(r"^(encoder|decoder)\.block\.\d+\.layer\.\d+\.DenseReluDense\.(wi|wi_0|wi_1|wo)$")
_BERT = [
    (re.compile(r"(^|\.)encoder\.layer\.\d+\.attention\.self\.query$"), "self_attn", "q"),
    (re.compile(r"(^|\.)encoder\.layer\.\d+\.attention\.self\.key$"), "self_attn", "k"),
    (re.compile(r"(^|\.)encoder\.layer\.\d+\.attention\.self\.value$"), "self_attn", "v"),
    (re.compile(r"(^|\.)encoder\.layer\.\d+\.attention\.output\.dense$"), "self_attn", "o"),
    (re.compile(r"(^|\.)encoder\.layer\.\d+\.intermediate\.dense$"), "ffn", "wi"),
    (re.compile(r"(^|\.)encoder\.layer\.\d+\.output\.dense$"), "ffn", "wo"),
]
_LLAMA_ATTN = re.compile(r"(^|\.)layers\.\d+\.self_attn\.([qkvo])_proj$")
_LLAMA_FFN = re.compile(r"(^|\.)layers\.\d+\.mlp\.(gate|up|down)_proj$")


@dataclass(frozen=True)
class LinearPart:
    name: str  # full module name in the model
    module: nn.Linear
    stack: str  # "encoder" | "decoder"
    sublayer: str  # "self_attn" | "cross_attn" | "ffn"
    role: str  # one of ROLES


def linear_parts(model: nn.Module) -> list[LinearPart]:
    """Every attention/feed-forward linear of the model's transformer blocks, in module order."""
    parts = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        if m := _T5_ATTN.match(name):
            sub = "self_attn" if m.group(2) == "SelfAttention" else "cross_attn"
            parts.append(LinearPart(name, module, m.group(1), sub, m.group(3)))
        elif m := _T5_FFN.match(name):
            parts.append(LinearPart(name, module, m.group(1), "ffn", m.group(2)[:2]))
        elif m := _LLAMA_ATTN.search(name):
            parts.append(LinearPart(name, module, "decoder", "self_attn", m.group(2)))
        elif m := _LLAMA_FFN.search(name):
            parts.append(LinearPart(name, module, "decoder", "ffn", "wo" if m.group(2) == "down" else "wi"))
        else:
            for pattern, sub, role in _BERT:
                if pattern.search(name):
                    parts.append(LinearPart(name, module, "encoder", sub, role))
                    break
    if not parts:
        raise ValueError(
            f"no transformer linear layers recognised in {type(model).__name__} (T5, BERT or Llama layout)"
        )
    return parts


def layer_norms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every LayerNorm of the model: ``nn.LayerNorm``/``nn.RMSNorm`` or a class named ``*LayerNorm`` or
    ``*RMSNorm`` (``T5LayerNorm``, ``LlamaRMSNorm``: scale only, no bias)."""
    return [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, (nn.LayerNorm, nn.RMSNorm)) or type(m).__name__.endswith(("LayerNorm", "RMSNorm"))
    ]


_IN_BLOCK = re.compile(r"(^|\.)(block|layers|layer)\.\d+\.")


def block_layer_norms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The LayerNorms inside the transformer blocks: :func:`layer_norms` without the stacks' final norms
    (T5 ``encoder.final_layer_norm``/``decoder.final_layer_norm``, Llama ``model.norm``). T5-Base: 60 of 62."""
    return [(n, m) for n, m in layer_norms(model) if _IN_BLOCK.search(n)]
